// Package natsconn connects to NATS the ways operators already do: a URL,
// credentials, an nkey, user/password, a token, TLS files, or a natscli
// context (~/.config/nats/context/NAME.json).
package natsconn

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kanadehq/kanade-cli/internal/secret"
)

// Options are the connection settings; empty fields are unset.
type Options struct {
	URL      string
	Creds    string
	NKey     string
	User     string
	Password string
	Token    string
	TLSCA    string
	TLSCert  string
	TLSKey   string
	Context  string
	// Notify, when set, hears when the connection is lost and comes back
	// (a command's stderr): a command waiting on NATS says so.
	Notify io.Writer
}

// natsContext is the part of a natscli context file we use.
type natsContext struct {
	URL      string `json:"url"`
	User     string `json:"user"`
	Password string `json:"password"`
	Creds    string `json:"creds"`
	NKey     string `json:"nkey"`
	Token    string `json:"token"`
	Cert     string `json:"cert"`
	Key      string `json:"key"`
	CA       string `json:"ca"`
}

// ApplyContext fills unset fields from the named natscli context.
func (o *Options) ApplyContext() error {
	if o.Context == "" {
		return nil
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("nats context %q: %w", o.Context, err)
		}
		dir = filepath.Join(home, ".config")
	}
	path := filepath.Join(dir, "nats", "context", o.Context+".json")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("nats context %q: %w (natscli keeps contexts in %s)", o.Context, err, filepath.Dir(path))
	}
	var c natsContext
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("nats context %s: not valid JSON: %w", path, err)
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	fill(&o.URL, c.URL)
	fill(&o.User, c.User)
	fill(&o.Password, c.Password)
	fill(&o.Creds, c.Creds)
	fill(&o.NKey, c.NKey)
	fill(&o.Token, c.Token)
	fill(&o.TLSCert, c.Cert)
	fill(&o.TLSKey, c.Key)
	fill(&o.TLSCA, c.CA)
	return nil
}

// CheckURL says what is wrong with a server list that cannot name NATS
// servers: each entry is host[:port] or a nats://, tls://, ws:// or wss://
// URL. The error never repeats a password.
func CheckURL(list string) error {
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return fmt.Errorf("--nats-url %s has an empty entry", secret.URL(list))
		}
		i := strings.Index(s, "://")
		if i < 0 {
			continue // host[:port]
		}
		if err := secret.CheckUserinfo("--nats-url", s); err != nil {
			return err
		}
		switch strings.ToLower(s[:i]) {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("--nats-url %s: scheme %q is not NATS; use nats://, tls://, ws:// or wss://", secret.URL(s), s[:i])
		}
		if _, err := url.Parse(s); err != nil {
			return fmt.Errorf("--nats-url %s is not a valid URL: %s", secret.URL(s), secret.Scrub(err.Error(), s))
		}
	}
	return nil
}

// asyncErrors reports the errors NATS raises outside any call, in the
// command's words instead of the client library's default line on stderr
// (which names an inbox and a connection number).
func asyncErrors(w io.Writer, redacted string, scrub func(error) string) nats.ErrHandler {
	return func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrSlowConsumer) {
			// The replay's ordered consumer sees the gap and fetches again
			// from the first message dropped: nothing is lost, only time.
			fmt.Fprintf(w, "%s  NATS dropped messages that came faster than this command took them (slow consumer); a replay reads them again\n", stamp())
			return
		}
		fmt.Fprintf(w, "%s  NATS at %s reported: %s\n", stamp(), redacted, scrub(err))
	}
}

// stamp is the time at the head of a connection event's line.
func stamp() string { return time.Now().UTC().Format(time.RFC3339) }

// Connect dials NATS. name identifies the connection in server monitoring.
func Connect(o Options, name string) (*nats.Conn, error) {
	if err := o.ApplyContext(); err != nil {
		return nil, err
	}
	if o.URL == "" {
		o.URL = nats.DefaultURL
	}
	// Reconnect without limit: a replay bounds its own wait (it knows what
	// it has committed), --follow and --watch wait as long as it takes.
	opts := []nats.Option{nats.Name(name), nats.Timeout(5 * time.Second), nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second), nats.ReconnectJitter(500*time.Millisecond, time.Second)}
	if w := o.Notify; w != nil {
		redacted := secret.URL(o.URL)
		scrub := func(err error) string { return secret.Scrub(err.Error(), o.URL, o.Password, o.Token) }
		opts = append(opts,
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err == nil {
					return // the command closed it
				}
				fmt.Fprintf(w, "%s  lost the connection to NATS at %s (%s); reconnecting...\n", stamp(), redacted, scrub(err))
			}),
			nats.ReconnectHandler(func(*nats.Conn) {
				fmt.Fprintf(w, "%s  reconnected to NATS at %s\n", stamp(), redacted)
			}),
			nats.ErrorHandler(asyncErrors(w, redacted, scrub)))
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if o.NKey != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKey)
		if err != nil {
			return nil, fmt.Errorf("--nkey %s: %w", o.NKey, err)
		}
		opts = append(opts, opt)
	}
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" || o.TLSKey != "" {
		if o.TLSCert == "" || o.TLSKey == "" {
			return nil, fmt.Errorf("--tls-cert and --tls-key go together")
		}
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %s%s", secret.URL(o.URL), secret.Scrub(err.Error(), o.URL, o.Password, o.Token), connectHint(err))
	}
	return nc, nil
}

// connectHint says what to check for the two failures an operator meets
// first: nats.go's own words name neither the flag nor the setting.
func connectHint(err error) string {
	switch {
	case errors.Is(err, nats.ErrNoServers):
		return " (is NATS running there? Give its address with --nats-url or KANADE_NATS_URL)"
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		return " (the server refused the credentials: check --user/--password, --token, --creds, --nkey or --context)"
	}
	return ""
}
