package sqlitestore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanadehq/kanade-cli/internal/store/sqlitestore"
)

// A --db path is a file name, whatever it holds: characters that mean
// something in SQLite's URIs ('?', '#', '%') once made it name another
// file, which a replay then created and filled.
func TestOpenPathsWithURICharacters(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"fleet#2", "what?", "100%", "x%41y", "a b", "k=v&x;y"} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "kanade.db")
			st, err := sqlitestore.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			st.Close()
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("the database is not at %s: %v", path, err)
			}
			if entries, _ := os.ReadDir(root); len(entries) != 1 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Fatalf("files beside %q: %q; the store wrote another file", name, names)
			}
			ro, err := sqlitestore.OpenReadOnly(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			if err := ro.Ready(ctx); err != nil {
				t.Fatalf("read-only open of %s: %v; want the file the writer migrated", path, err)
			}
		})
	}
	// A NUL would end the name SQLite reads (a config file can hold one).
	nul := filepath.Join(t.TempDir(), "a\x00b.db")
	if st, err := sqlitestore.Open(ctx, nul); err == nil {
		st.Close()
		t.Fatalf("opened %q; want an error naming the NUL byte", nul)
	} else if !strings.Contains(err.Error(), "NUL byte") {
		t.Fatalf("open %q: %v; want an error naming the NUL byte", nul, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(nul)); len(entries) != 0 {
		t.Fatalf("opening %q wrote %d files", nul, len(entries))
	}

	// "//" would start an authority in a URI; on Unix it is the root.
	path := filepath.Join(t.TempDir(), "kanade.db")
	st, err := sqlitestore.Open(ctx, "/"+path)
	if err != nil {
		t.Fatalf("open //...: %v", err)
	}
	st.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at %s: %v", path, err)
	}
}

// A --db that names a directory, or a file that is not SQLite's, says so
// and what to give, where SQLite says "disk I/O error" or less; the file
// is left as it was.
func TestOpenSaysWhatTheFileIs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.db")
	if err := os.WriteFile(text, []byte("not a database\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, says string }{
		{dir, "is a directory: give the database file in it, such as " + filepath.Join(dir, "backend.db")},
		{text, "check --db: it must name an SQLite file"},
	} {
		for _, open := range []func(context.Context, string) (*sqlitestore.Store, error){sqlitestore.Open, sqlitestore.OpenReadOnly} {
			if st, err := open(ctx, c.path); err == nil {
				st.Close()
				t.Fatalf("opened %s", c.path)
			} else if !strings.Contains(err.Error(), c.says) {
				t.Errorf("open %s: %v; want it to say %q", c.path, err, c.says)
			}
		}
	}
	if b, _ := os.ReadFile(text); string(b) != "not a database\n" {
		t.Fatalf("the file was changed: %q", b)
	}
}
