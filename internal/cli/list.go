package cli

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kanadehq/kanade-cli/internal/results"
	"github.com/kanadehq/kanade-cli/internal/secret"
)

// ListOptions is what `results list` runs with.
type ListOptions struct {
	Env
	List results.ListOptions
	// Next builds the command line of the page after this one from its
	// cursor.
	Next func(after string) string
}

type listFlags struct {
	opts         results.ListOptions
	since, until string
}

func newListCmd(g *Globals, runF func(context.Context, *ListOptions) error) *cobra.Command {
	var f listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List recent executions and ad-hoc requests, newest first, with their counts",
		Example: `  kanade results list
  kanade results list --failed --since 24h
  kanade results list --manifest inventory-hw --pc PC-0042 -o json
  kanade results list --limit 20 --after <cursor printed by the previous page>`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var err error
			if f.opts.Filter.Since, f.opts.Filter.Until, err = parseWindow(f.since, f.until, now); err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			if f.opts.Filter.Limit < 1 || f.opts.Filter.Limit > 10000 {
				return usageErrorf(cmd, "--limit %d: give 1 to 10000", f.opts.Filter.Limit)
			}
			if f.opts.Status != "" && !slices.Contains(results.ListStatuses, f.opts.Status) {
				return usageErrorf(cmd, "--status %q: use one of %s", f.opts.Status, strings.Join(results.ListStatuses, ", "))
			}
			if f.opts.After != "" {
				if _, err := results.DecodeCursor(f.opts.After); err != nil {
					return usageErrorf(cmd, "%v", err)
				}
			}
			opts := &ListOptions{Env: g.env(), List: f.opts, Next: func(after string) string { return nextListCommand(cmd, f, after) }}
			return pick(runF, runList)(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.opts.Filter.PCs, "pc", nil, "only runs on this PC (repeat for several; the name is taken as written)")
	fl.StringVar(&f.opts.Filter.Manifest, "manifest", "", "only this manifest id")
	fl.StringVar(&f.since, "since", "", "only those with a result recorded at or after this (RFC 3339, a date in UTC or a duration, 24h); their counts cover all their results")
	fl.StringVar(&f.until, "until", "", "only those with a result recorded before this (RFC 3339, a date in UTC or a duration); counts cover all their results")
	fl.StringVar(&f.opts.Status, "status", "", "only this status: "+strings.Join(results.ListStatuses, ", "))
	fl.BoolVar(&f.opts.Filter.Failed, "failed", false, "only those with at least one failed run")
	fl.IntVar(&f.opts.Filter.Limit, "limit", 50, "rows per page")
	fl.StringVar(&f.opts.After, "after", "", "continue after this cursor (printed at the end of a page)")
	return cmd
}

func runList(ctx context.Context, opts *ListOptions) error {
	st, err := opts.Deps.open(ctx, readOnly)
	if err != nil {
		return err
	}
	defer st.Close()
	page, err := results.List(ctx, st, opts.List)
	if err != nil {
		return err
	}
	if page.NextAfter != "" && opts.Next != nil {
		page.NextCommand = opts.Next(page.NextAfter)
	}
	return results.RenderList(opts.IO, page, opts.Format)
}

// nextListCommand is the command for the page after this one: every flag
// this one was given, with --since and --until pinned to the instants this
// page used (so "24h" does not move between pages), and the new --after.
func nextListCommand(cmd *cobra.Command, f listFlags, after string) string {
	args := []string{"kanade"}
	var local []*pflag.Flag
	inherited := cmd.InheritedFlags()
	cmd.Flags().Visit(func(fl *pflag.Flag) {
		if inherited.Lookup(fl.Name) == nil {
			local = append(local, fl)
			return
		}
		switch fl.Name {
		case "password", "token", "nkey", "creds":
			return // secrets are not printed; the environment or config supplies them
		case "db", "nats-url", "server":
			args = append(args, "--"+fl.Name, shellQuote(secret.URL(fl.Value.String())))
		default:
			args = append(args, "--"+fl.Name, shellQuote(fl.Value.String()))
		}
	})
	args = append(args, "results", "list")
	for _, fl := range local {
		switch fl.Name {
		case "after":
		case "since":
			args = append(args, "--since", f.opts.Filter.Since.UTC().Format(time.RFC3339Nano))
		case "until":
			args = append(args, "--until", f.opts.Filter.Until.UTC().Format(time.RFC3339Nano))
		case "pc":
			for _, pc := range f.opts.Filter.PCs {
				args = append(args, "--pc", shellQuote(pc))
			}
		default:
			if fl.Value.Type() == "bool" {
				args = append(args, "--"+fl.Name)
			} else {
				args = append(args, "--"+fl.Name, shellQuote(fl.Value.String()))
			}
		}
	}
	return strings.Join(append(args, "--after", after), " ")
}

// shellQuote quotes v for a POSIX shell when it needs quoting.
func shellQuote(v string) string {
	if v != "" && strings.IndexFunc(v, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r == '/' || r == ':' || r == '=' || r == '@' || r == ',' || r == '+' ||
			(r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'))
	}) < 0 {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
