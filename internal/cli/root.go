// Package cli is the kanade command tree (cobra). Each command parses its
// flags into an options struct and calls a plain function with its
// dependencies, so tests call the logic directly.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kanadehq/kanade-cli/internal/natsconn"
	"github.com/kanadehq/kanade-cli/internal/output"
	"github.com/kanadehq/kanade-cli/internal/store"
	"github.com/kanadehq/kanade-cli/internal/store/dial"
)

// Exit codes (kanade help exit-codes).
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitFindings    = 3
	ExitInterrupted = 130
)

// ExitErr carries a specific exit code up to main.
type ExitErr struct {
	Code int
	Err  error
}

func (e *ExitErr) Error() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Error()
}
func (e *ExitErr) Unwrap() error { return e.Err }

// usageError marks a mistake in how the command was called.
type usageError struct {
	err   error
	usage string
}

func (e *usageError) Error() string { return e.err.Error() }

func usageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...), usage: cmd.UseLine()}
}

// BuildInfo is injected at release time.
type BuildInfo struct{ Version, Commit, Date string }

// Globals are the resolved global settings (flag > env > config file).
type Globals struct {
	DB      string
	NATS    natsconn.Options
	Output  string
	NoColor bool
	Config  string
	// dbExplicit is set when --db, KANADE_DB or the config file chose the
	// database (the demo then uses it instead of a temporary file).
	dbExplicit bool
	// dbFlag is set only when --db was given on the command line.
	dbFlag bool

	streams *output.Streams
	build   BuildInfo
}

// fileConfig is config.toml.
type fileConfig struct {
	DB       string `toml:"db"`
	NATSURL  string `toml:"nats_url"`
	Creds    string `toml:"creds"`
	NKey     string `toml:"nkey"`
	User     string `toml:"user"`
	Password string `toml:"password"`
	Token    string `toml:"token"`
	TLSCA    string `toml:"tls_ca"`
	TLSCert  string `toml:"tls_cert"`
	TLSKey   string `toml:"tls_key"`
	Context  string `toml:"context"`
	Output   string `toml:"output"`
	NoColor  bool   `toml:"no_color"`
}

// configKeys are config.toml's settings, as fileConfig names them.
func configKeys() []string {
	t := reflect.TypeFor[fileConfig]()
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i] = t.Field(i).Tag.Get("toml")
	}
	return keys
}

// DefaultDBPath is the embedded store's file: $XDG_DATA_HOME/kanade/kanade.db
// or the OS equivalent.
func DefaultDBPath() (string, error) {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		switch runtime.GOOS {
		case "windows":
			dir = os.Getenv("LOCALAPPDATA")
		case "darwin":
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			dir = filepath.Join(home, "Library", "Application Support")
		default:
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			dir = filepath.Join(home, ".local", "share")
		}
	}
	return filepath.Join(dir, "kanade", "kanade.db"), nil
}

func defaultConfigPath() string {
	dir, err := os.UserConfigDir()
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		dir, err = x, nil
	}
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "kanade", "config.toml")
}

// resolve applies env and config file to every setting not given as a flag.
func (g *Globals) resolve(flags *pflag.FlagSet) error {
	var fc fileConfig
	path := g.Config
	explicit := flags.Changed("config")
	if !explicit {
		if env := os.Getenv("KANADE_CONFIG"); env != "" {
			path, explicit = env, true
		} else {
			path = defaultConfigPath()
		}
	}
	if path != "" {
		if _, err := os.Stat(path); err == nil {
			md, err := toml.DecodeFile(path, &fc)
			if err != nil {
				return fmt.Errorf("config file %s: %v", path, err)
			}
			// A misspelt key is refused, not skipped: "database" for "db"
			// would otherwise send a replay to the embedded default.
			if keys := md.Undecoded(); len(keys) > 0 {
				names := make([]string, len(keys))
				for i, k := range keys {
					names[i] = k.String()
				}
				return fmt.Errorf("config file %s: unknown setting(s) %s; the settings are %s", path, strings.Join(names, ", "), strings.Join(configKeys(), ", "))
			}
		} else if explicit {
			return fmt.Errorf("config file %s: %v", path, err)
		}
	}
	// pick returns where the value came from when not from the flag (the
	// variable, or the config file), so that an error about it can say
	// where to fix it: the errors name the flag.
	pick := func(dst *string, flag string, envs []string, file string) (from string) {
		if flags.Changed(flag) {
			return ""
		}
		for _, e := range envs {
			if v := os.Getenv(e); v != "" {
				*dst = v
				return e
			}
		}
		if file != "" {
			*dst = file
			return "config file " + path
		}
		return ""
	}
	setBy := func(err error, from string) error {
		if from == "" {
			return err
		}
		return fmt.Errorf("%w (set by %s)", err, from)
	}
	dbFrom := pick(&g.DB, "db", []string{"KANADE_DB"}, fc.DB)
	var natsFrom string
	if !flags.Changed("server") { // --server is --nats-url's alias: given, it wins too
		natsFrom = pick(&g.NATS.URL, "nats-url", []string{"KANADE_NATS_URL", "NATS_URL"}, fc.NATSURL)
	}
	pick(&g.NATS.Creds, "creds", []string{"KANADE_NATS_CREDS", "NATS_CREDS"}, fc.Creds)
	pick(&g.NATS.NKey, "nkey", []string{"KANADE_NATS_NKEY", "NATS_NKEY"}, fc.NKey)
	pick(&g.NATS.User, "user", []string{"KANADE_NATS_USER", "NATS_USER"}, fc.User)
	pick(&g.NATS.Password, "password", []string{"KANADE_NATS_PASSWORD", "NATS_PASSWORD"}, fc.Password)
	pick(&g.NATS.Token, "token", []string{"KANADE_NATS_TOKEN"}, fc.Token)
	pick(&g.NATS.TLSCA, "tls-ca", []string{"KANADE_NATS_TLS_CA"}, fc.TLSCA)
	pick(&g.NATS.TLSCert, "tls-cert", []string{"KANADE_NATS_TLS_CERT"}, fc.TLSCert)
	pick(&g.NATS.TLSKey, "tls-key", []string{"KANADE_NATS_TLS_KEY"}, fc.TLSKey)
	pick(&g.NATS.Context, "context", []string{"KANADE_NATS_CONTEXT", "NATS_CONTEXT"}, fc.Context)
	outputFrom := pick(&g.Output, "output", []string{"KANADE_OUTPUT"}, fc.Output)
	if !flags.Changed("no-color") && (os.Getenv("NO_COLOR") != "" || fc.NoColor) {
		g.NoColor = true
	}
	if g.NoColor {
		g.streams.NoColor = true
	}
	if g.NATS.URL == "" && g.NATS.Context == "" {
		g.NATS.URL = "nats://127.0.0.1:4222"
	}
	if g.NATS.URL != "" {
		if err := natsconn.CheckURL(g.NATS.URL); err != nil {
			return setBy(err, natsFrom)
		}
	}
	if g.DB != "" {
		if _, err := dial.Parse(g.DB); err != nil {
			return setBy(err, dbFrom)
		}
	}
	g.dbExplicit = g.DB != ""
	g.dbFlag = flags.Changed("db")
	if g.DB == "" {
		p, err := DefaultDBPath()
		if err != nil {
			return fmt.Errorf("find the default database location: %v (give --db)", err)
		}
		g.DB = p // its directory is made by the first command that writes
	}
	if g.Output != "" {
		if _, err := output.ParseFormat(g.Output); err != nil {
			return setBy(err, outputFrom)
		}
	}
	if _, err := dial.Parse(g.DB); err != nil {
		return err
	}
	return nil
}

// format is -o, defaulting to a table.
func (g *Globals) format() output.Format {
	if g.Output == "" {
		return output.Table
	}
	return output.Format(g.Output)
}

// openMode says how a command opens --db.
type openMode int

const (
	// readOnly creates nothing, and nothing can be written through it;
	// the tables must exist.
	readOnly openMode = iota
	// inspect is readOnly on a database that may have no tables yet (db
	// status says so).
	inspect
	// existing writes to tables that must already exist (a dry run).
	existing
	// created creates or upgrades the tables first, as "created on first
	// use" promises.
	created
	// bare opens the database as it is (db migrate migrates it itself).
	bare
)

// open opens --db in mode m.
func (g *Globals) open(ctx context.Context, m openMode) (store.Store, error) {
	if m == readOnly || m == inspect {
		st, err := dial.OpenReadOnly(ctx, g.DB)
		if err != nil {
			return nil, err
		}
		if err := st.Ready(ctx); m == readOnly && err != nil {
			st.Close()
			return nil, err
		}
		return st, nil
	}
	if err := g.makeDefaultDir(); err != nil {
		return nil, err
	}
	st, err := dial.Open(ctx, g.DB)
	if err != nil {
		return nil, err
	}
	switch m {
	case created:
		if _, err := st.Migrate(ctx); err != nil {
			st.Close()
			return nil, fmt.Errorf("prepare database %s: %w", st.Location(), err)
		}
	case existing:
		if err := st.Ready(ctx); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// writeMode is the mode of a command that writes unless it is a dry run.
func writeMode(dryRun bool) openMode {
	if dryRun {
		return existing
	}
	return created
}

// makeDefaultDir creates the embedded default database's directory, for a
// command about to write to it; reading commands create nothing.
func (g *Globals) makeDefaultDir() error {
	if g.dbExplicit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(g.DB), 0o755); err != nil {
		return fmt.Errorf("create %s: %v (give --db)", filepath.Dir(g.DB), err)
	}
	return nil
}

// deps opens what a command works on, when the command needs it: parsing
// flags opens nothing, so a test of a command's flags needs no services.
// *Globals is the real one.
type deps interface {
	// open opens --db.
	open(ctx context.Context, m openMode) (store.Store, error)
	// jetStream connects to NATS; close ends the connection.
	jetStream() (js jetstream.JetStream, close func(), err error)
}

// Env is what every command's options carry: its IO streams, the -o
// format and its dependencies.
type Env struct {
	IO     *output.Streams
	Format output.Format
	Deps   deps
}

func (g *Globals) env() Env { return Env{IO: g.streams, Format: g.format(), Deps: g} }

// runners replace commands' run functions (gh's runF): a test builds the
// tree with one, runs a command line, and checks the options the flags
// parsed into, with no database or NATS. Nil runs the command.
type runners struct {
	replay   func(context.Context, *ReplayOptions) error
	verify   func(context.Context, *VerifyOptions) error
	show     func(context.Context, *ShowOptions) error
	list     func(context.Context, *ListOptions) error
	backfill func(context.Context, *BackfillOptions) error
	audit    func(context.Context, *AuditOptions) error
	migrate  func(context.Context, *DBOptions) error
	status   func(context.Context, *DBOptions) error
	dropOld  func(context.Context, *DropOldOptions) error
	demo     func(context.Context, *DemoOptions) error
}

// pick is runF when a test gave one, else the command's own run.
func pick[O any](runF, run func(context.Context, *O) error) func(context.Context, *O) error {
	if runF != nil {
		return runF
	}
	return run
}

// NewRoot builds the command tree writing to s.
func NewRoot(s *output.Streams, build BuildInfo) *cobra.Command {
	return newRoot(s, build, runners{})
}

func newRoot(s *output.Streams, build BuildInfo, r runners) *cobra.Command {
	g := &Globals{streams: s, build: build}
	root := &cobra.Command{
		Use:   "kanade",
		Short: "Query, repair and rebuild kanade fleet results",
		Long: `kanade is the operator's tool for a kanade fleet's results pipeline:
show what every PC did for a deployment or broadcast, give legacy rows their
stable result_id, and replay JetStream streams to rebuild the tables.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := g.resolve(cmd.Flags()); err != nil {
				return &usageError{err: err, usage: cmd.UseLine()}
			}
			return nil
		},
	}
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	pf := root.PersistentFlags()
	pf.StringVar(&g.DB, "db", "", "database: postgres://... URL, sqlite:///path or a file path (env KANADE_DB; default the embedded SQLite file)")
	pf.StringVar(&g.NATS.URL, "nats-url", "", "NATS server URL (env KANADE_NATS_URL, NATS_URL; default nats://127.0.0.1:4222)")
	pf.StringVar(&g.NATS.URL, "server", "", "alias of --nats-url, as upstream's CLI")
	pf.StringVar(&g.NATS.Creds, "creds", "", "NATS credentials file")
	pf.StringVar(&g.NATS.NKey, "nkey", "", "NATS nkey seed file")
	pf.StringVar(&g.NATS.User, "user", "", "NATS user")
	pf.StringVar(&g.NATS.Password, "password", "", "NATS password")
	pf.StringVar(&g.NATS.Token, "token", "", "NATS token (env KANADE_NATS_TOKEN)")
	pf.StringVar(&g.NATS.TLSCA, "tls-ca", "", "CA certificate for NATS TLS")
	pf.StringVar(&g.NATS.TLSCert, "tls-cert", "", "client certificate for NATS TLS")
	pf.StringVar(&g.NATS.TLSKey, "tls-key", "", "client key for NATS TLS")
	pf.StringVar(&g.NATS.Context, "context", "", "natscli context name (~/.config/nats/context/NAME.json)")
	pf.StringVarP(&g.Output, "output", "o", "", "output format: "+strings.Join(output.Formats, "|"))
	pf.BoolVar(&g.NoColor, "no-color", false, "no colours (also NO_COLOR)")
	pf.StringVar(&g.Config, "config", "", "config file (env KANADE_CONFIG; default $XDG_CONFIG_HOME/kanade/config.toml)")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(output.Formats, cobra.ShellCompDirectiveNoFileComp))
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{err: err, usage: cmd.UseLine()}
	})
	root.AddCommand(newDBCmd(g, r), newStreamCmd(g, r), newResultsCmd(g, r), newVersionCmd(g), newDemoCmd(g, r.demo))
	root.AddCommand(newDocsCmd(root))
	root.AddCommand(helpTopic("environment", "Environment variables and the config file", environmentHelp),
		helpTopic("exit-codes", "What kanade's exit codes mean", exitCodesHelp))
	return root
}

// Execute runs the command line and returns the process exit code,
// printing any error as one clear line.
func Execute(ctx context.Context, s *output.Streams, build BuildInfo, args []string) int {
	return execute(ctx, s, build, args, runners{})
}

func execute(ctx context.Context, s *output.Streams, build BuildInfo, args []string, r runners) int {
	root := newRoot(s, build, r)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ue *usageError
	var ee *ExitErr
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(s.Err, "Error: %v\nUsage: %s\nRun '%s --help' for more.\n", ue.err, ue.usage, strings.TrimSuffix(ue.usage, " [flags]"))
		return ExitUsage
	case ctx.Err() != nil:
		fmt.Fprintln(s.Err, "Interrupted.")
		return ExitInterrupted
	case errors.As(err, &ee):
		if ee.Err != nil {
			fmt.Fprintf(s.Err, "Error: %v\n", ee.Err)
		}
		return ee.Code
	case strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag"):
		fmt.Fprintf(s.Err, "Error: %v\nRun 'kanade --help' for usage.\n", err)
		return ExitUsage
	default:
		fmt.Fprintf(s.Err, "Error: %v\n", err)
		return ExitError
	}
}
