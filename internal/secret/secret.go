// Package secret keeps passwords and tokens out of what the tool prints.
// It works on the text, not on a parsed URL, so a DSN or NATS URL that
// does not parse (a bad port, a stray % or @ in a password) is masked too;
// where the text is ambiguous it masks too much rather than too little.
package secret

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Mask is what a removed secret is printed as.
const Mask = "xxxxx"

var (
	kvPassword    = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('[^']*'|\S+)`)
	queryPassword = regexp.MustCompile(`(?i)([?&](?:password|token|pass)=)[^&#\s]*`)
)

// URL returns s (a DSN, a URL or a comma-separated list of NATS URLs)
// with every password removed: the one in the userinfo (for NATS schemes
// a bare userinfo, which is a token, too), a password= query parameter and
// a key=value DSN's password.
func URL(s string) string {
	if !strings.Contains(s, "://") {
		return kvPassword.ReplaceAllString(s, "${1}"+Mask)
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = maskOne(p)
	}
	return strings.Join(parts, ",")
}

func maskOne(p string) string {
	i := strings.Index(p, "://")
	if i < 0 {
		return kvPassword.ReplaceAllString(p, "${1}"+Mask)
	}
	scheme, rest := strings.ToLower(strings.TrimSpace(p[:i])), p[i+3:]
	// The userinfo ends at the last '@': an unescaped '@', '/' or '?' in a
	// password then still falls inside what is masked.
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user := rest[:at]
		switch c := strings.Index(user, ":"); {
		case c >= 0:
			user = user[:c+1] + Mask
		case isNATS(scheme):
			user = Mask // nats://token@host
		}
		rest = user + rest[at:]
	}
	rest = queryPassword.ReplaceAllString(rest, "${1}"+Mask)
	return p[:i+3] + rest
}

func isNATS(scheme string) bool {
	switch scheme {
	case "nats", "tls", "ws", "wss":
		return true
	}
	return false
}

// Values lists the secrets s holds, raw and unescaped, for Scrub.
func Values(s string) []string {
	var out []string
	add := func(v string) {
		if v == "" {
			return
		}
		out = append(out, v)
		if u, err := url.PathUnescape(v); err == nil && u != v {
			out = append(out, u)
		}
	}
	for _, p := range strings.Split(s, ",") {
		if i := strings.Index(p, "://"); i >= 0 {
			rest := p[i+3:]
			if at := strings.LastIndex(rest, "@"); at >= 0 {
				user := rest[:at]
				if c := strings.Index(user, ":"); c >= 0 {
					add(user[c+1:])
				} else if isNATS(strings.ToLower(strings.TrimSpace(p[:i]))) {
					add(user)
				}
			}
		}
		for _, m := range queryPassword.FindAllStringSubmatchIndex(p, -1) {
			add(p[m[3]:m[1]])
		}
		for _, m := range kvPassword.FindAllStringSubmatch(p, -1) {
			add(strings.Trim(m[2], "'"))
		}
	}
	return out
}

// Scrub removes from msg every secret that source holds (and source
// itself, printed masked), for errors that echo what they were given.
// Extra secrets (a password from a flag or a file) can be named too.
func Scrub(msg, source string, extra ...string) string {
	if source != "" {
		msg = strings.ReplaceAll(msg, source, URL(source))
	}
	for _, v := range append(Values(source), extra...) {
		// Shorter values would mangle every word they occur in, and
		// guarding them gains nothing.
		if len(v) >= 3 {
			msg = strings.ReplaceAll(msg, v, Mask)
		}
	}
	return msg
}

// CheckUserinfo refuses a URL with more than one '@' before its host:
// clients disagree on where such a userinfo ends (pgx splits at the first
// '@', Go's net/url at the last), so part of a password could be taken for
// the host and printed. The error shows the URL masked.
func CheckUserinfo(flag, s string) error {
	for _, p := range strings.Split(s, ",") {
		i := strings.Index(p, "://")
		if i < 0 {
			continue
		}
		rest := p[i+3:]
		if end := strings.IndexAny(rest, "/?#"); end >= 0 && strings.LastIndex(rest, "@") < end {
			rest = rest[:end]
		}
		if strings.Count(rest, "@") > 1 {
			return fmt.Errorf("%s %s has more than one '@' before the host: write an '@' in the user name or password as %%40", flag, URL(p))
		}
	}
	return nil
}
