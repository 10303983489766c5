package cli

import "github.com/spf13/cobra"

func helpTopic(name, short, long string) *cobra.Command {
	return &cobra.Command{Use: name, Short: short, Long: long, Run: func(cmd *cobra.Command, _ []string) {
		cmd.Println(long)
	}, DisableFlagsInUseLine: true, Annotations: map[string]string{"topic": "true"}}
}

const environmentHelp = `Settings come from, in order of precedence:

  1. command-line flags
  2. environment variables
  3. the config file ($XDG_CONFIG_HOME/kanade/config.toml, or --config / KANADE_CONFIG)

  Setting      Flag          Environment                         config.toml
  database     --db          KANADE_DB                           db
  NATS URL     --nats-url    KANADE_NATS_URL, then NATS_URL      nats_url
  credentials  --creds       KANADE_NATS_CREDS, NATS_CREDS       creds
  nkey seed    --nkey        KANADE_NATS_NKEY, NATS_NKEY         nkey
  user         --user        KANADE_NATS_USER, NATS_USER         user
  password     --password    KANADE_NATS_PASSWORD, NATS_PASSWORD password
  token        --token       KANADE_NATS_TOKEN                   token
  TLS          --tls-ca/--tls-cert/--tls-key  KANADE_NATS_TLS_*  tls_ca, tls_cert, tls_key
  nats context --context     KANADE_NATS_CONTEXT, NATS_CONTEXT   context
  output       -o            KANADE_OUTPUT                       output
  colour       --no-color    NO_COLOR (any value)                no_color = true

--db takes postgres:// or postgresql:// URLs (the standard PG* variables fill
in what the URL leaves out), sqlite:///path/backend.db (percent-encoded, as
upstream's sqlx reads it; no ?options), or a plain file path, taken as it is.
Without it kanade uses the embedded SQLite file $XDG_DATA_HOME/kanade/kanade.db
(~/.local/share/kanade/kanade.db), created on first use.

Passwords and tokens are never printed; DSNs are shown with the password
replaced by xxxxx.

A replay into SQLite peaks at about 61 MB: the engine and its 14 MiB page
cache live in the process, so kanade runs it with Go's garbage collector
target at 40 unless GOGC is set. GOGC=100 (Go's default) is up to a tenth
faster for about 10 MB more; --batch 2500 lowers the peak further at some
of the rate, more on explode-heavy streams (docs/performance.md). A replay
into PostgreSQL writes two batches at once, on two connections, and runs
with the target at 50 unless GOGC is set (about 55 MB; 62 MB at 100).
Results with inventory explode hints need more: 140-375 MB for a replay of
2.5 KB inventories at the default --batch; --batch 1000 bounds it near
100 MB, at about the same rate when each PC scans at most once a batch.

Example config.toml (a setting not listed above is an error, not skipped):

  db = "postgres://kanade@db.internal/kanade"
  nats_url = "nats://nats.internal:4222"
  creds = "/etc/kanade/ops.creds"
  output = "table"`

const exitCodesHelp = `kanade exits with:

  0    success
  1    an error (connection, database, stream, bad data); the message says what and what to do
  2    usage error: a bad flag, argument or --db value; the message names it and the usage line follows
  3    findings: a --fail-on category was non-empty, or an audit found something
  130  interrupted (Ctrl-C); work already committed stays, replays resume with --resume`
