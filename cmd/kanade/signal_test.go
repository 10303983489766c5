package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// `demo --keep` ended by SIGTERM or SIGHUP (a closed terminal) removes its
// files, as Ctrl-C does. testscript can only send SIGINT, so this runs the
// binary itself: the test binary answers to the name kanade (TestMain).
func TestDemoKeepCleansUpOnTermAndHangup(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "kanade")
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		tmp := t.TempDir()
		cmd := exec.Command(bin, "demo", "--pcs", "5", "--keep")
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "XDG_CONFIG_HOME="+tmp, "XDG_DATA_HOME="+tmp, "KANADE_DB=")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if left, _ := filepath.Glob(filepath.Join(tmp, "kanade-demo-*", "kanade.db")); len(left) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the demo did not start")
			}
		}
		time.Sleep(time.Second) // let it reach its wait
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		cmd.Wait() //nolint:errcheck
		if left, _ := filepath.Glob(filepath.Join(tmp, "kanade-demo-*")); len(left) > 0 {
			t.Errorf("after %s the demo left %v behind", sig, left)
		}
	}
}
