package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/kanadehq/kanade-cli/internal/output"
)

// TestCommittedDocsAreCurrent fails when the command reference or the man
// pages in docs/ no longer match the commands: run `make docs`.
func TestCommittedDocsAreCurrent(t *testing.T) {
	tmp := t.TempDir()
	md, man := filepath.Join(tmp, "reference"), filepath.Join(tmp, "man")
	root := NewRoot(&output.Streams{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, BuildInfo{})
	if err := GenerateDocs(root, md, man); err != nil {
		t.Fatal(err)
	}
	for gen, committed := range map[string]string{md: "../../docs/reference", man: "../../docs/man"} {
		want, _ := filepath.Glob(filepath.Join(gen, "*"))
		have, _ := filepath.Glob(filepath.Join(committed, "kanade*"))
		if len(want) != len(have) {
			t.Fatalf("%s holds %d files, the commands make %d: run `make docs`", committed, len(have), len(want))
		}
		for _, f := range want {
			a, _ := os.ReadFile(f)
			b, err := os.ReadFile(filepath.Join(committed, filepath.Base(f)))
			if err != nil || !bytes.Equal(a, b) {
				t.Errorf("%s is out of date: run `make docs`", filepath.Join(committed, filepath.Base(f)))
			}
		}
	}
}
