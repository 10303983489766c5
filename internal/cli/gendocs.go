package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manDate is fixed so the generated pages only change when the commands do.
var manDate = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// GenerateDocs writes the Markdown command reference and the man pages of
// root into the two directories (make docs; a test checks the committed
// copies are current).
func GenerateDocs(root *cobra.Command, mdDir, manDir string) error {
	root.DisableAutoGenTag = true
	root.InitDefaultCompletionCmd() // cobra adds it lazily at Execute; the reference must list it either way
	for _, d := range []string{mdDir, manDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		old, _ := filepath.Glob(filepath.Join(d, "kanade*"))
		for _, f := range old {
			os.Remove(f)
		}
	}
	if err := doc.GenMarkdownTree(root, mdDir); err != nil {
		return fmt.Errorf("generate Markdown reference: %w", err)
	}
	header := &doc.GenManHeader{Title: "KANADE", Section: "1", Source: "kanade", Manual: "kanade manual", Date: &manDate}
	if err := doc.GenManTree(root, header, manDir); err != nil {
		return fmt.Errorf("generate man pages: %w", err)
	}
	return nil
}

func newDocsCmd(root *cobra.Command) *cobra.Command {
	var md, man string
	cmd := &cobra.Command{
		Use:    "gen-docs",
		Short:  "Generate the Markdown command reference and man pages",
		Hidden: true,
		Args:   cobra.NoArgs,
		// Generating documentation needs no database or configuration.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE:              func(*cobra.Command, []string) error { return GenerateDocs(root, md, man) },
	}
	cmd.Flags().StringVar(&md, "dir", "docs/reference", "Markdown output directory")
	cmd.Flags().StringVar(&man, "man-dir", "docs/man", "man page output directory")
	return cmd
}
