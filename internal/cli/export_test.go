package cli

import (
	"path/filepath"
	"testing"
)

// Isolate is isolate, for the package's external tests.
var Isolate = isolate

// isolate keeps a test from the machine's settings: no config file, no
// KANADE_* or NATS_* variables, a database under the test's own directory.
func isolate(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	for _, v := range []string{"KANADE_DB", "KANADE_NATS_URL", "NATS_URL", "KANADE_OUTPUT", "KANADE_CONFIG", "KANADE_NATS_CONTEXT", "NATS_CONTEXT"} {
		t.Setenv(v, "")
	}
	return dir
}
