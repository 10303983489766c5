package cli

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/kanadehq/kanade-cli/internal/output"
)

// versionInfo is `kanade version -o json`.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func (b BuildInfo) resolved() versionInfo {
	v := versionInfo{Version: b.Version, Commit: b.Commit, Date: b.Date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.time":
				if v.Date == "" {
					v.Date = s.Value
				}
			}
		}
	}
	for _, f := range []*string{&v.Version, &v.Commit, &v.Date} {
		if *f == "" {
			*f = "unknown"
		}
	}
	if v.Version == "unknown" {
		v.Version = "dev"
	}
	return v
}

func newVersionCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Args:  cobra.NoArgs,
		// version needs no database or config: skip the global resolution.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(cmd, g.streams, g.Output, g.build.resolved())
		},
	}
}

func printVersion(cmd *cobra.Command, s *output.Streams, format string, v versionInfo) error {
	// version skips the global resolution, so -o is checked here.
	f := output.Table
	if format != "" {
		var err error
		if f, err = output.ParseFormat(format); err != nil {
			return usageErrorf(cmd, "%v", err)
		}
	}
	return output.PrintDocument(s, f, output.Document{
		Title: "KANADE",
		Doc:   v,
		Fields: []output.Field{
			{Name: "version", Title: "version", Value: v.Version},
			{Name: "commit", Title: "commit", Value: v.Commit},
			{Name: "date", Title: "built", Value: v.Date},
			{Name: "go_version", Title: "go", Value: v.GoVersion},
			{Name: "platform", Title: "platform", Value: v.Platform},
		},
	})
}
