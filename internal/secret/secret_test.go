package secret

import (
	"strings"
	"testing"
)

// The DSNs and URLs that printed their passwords (issue F5), and the usual
// ones: nothing secret survives URL, and Scrub cleans an error that
// echoes them.
func TestNoSecretSurvives(t *testing.T) {
	for _, c := range []struct{ in, secret string }{
		{"postgres://u:pw-1@host:55x40/db", "pw-1"},
		{"postgres://u:p%zzw@host/db", "p%zzw"},
		{"postgres://u:p@ss@host/db", "p@ss"},
		{"postgres://u:pa/ss?x@host:5432/db", "pa/ss?x"},
		{"postgres://u:s3cret@host/db?sslmode=disable", "s3cret"},
		{"postgres://u@host/db?password=qwerty&sslmode=disable", "qwerty"},
		{"host=db user=u password=hunter2 dbname=k", "hunter2"},
		{"host=db user=u password='two words' dbname=k", "two words"},
		{"nats://u:natspw@host:43x8", "natspw"},
		{"nats://tok3n@host:4222", "tok3n"},
		{"nats://a:one@h1:4222,nats://b:two@h2:4222", "one"},
		{"nats://a:one@h1:4222,nats://b:two@h2:4222", "two"},
	} {
		got := URL(c.in)
		if strings.Contains(got, c.secret) {
			t.Errorf("URL(%q) = %q still holds %q", c.in, got, c.secret)
		}
		err := "cannot parse " + c.in + `: invalid URL escape "` + c.secret + `"`
		if s := Scrub(err, c.in); strings.Contains(s, c.secret) {
			t.Errorf("Scrub kept %q: %s", c.secret, s)
		}
	}
	// What is not secret stays readable.
	if got := URL("postgres://kanade@db.internal:5432/kanade"); got != "postgres://kanade@db.internal:5432/kanade" {
		t.Errorf("a DSN without a password changed: %s", got)
	}
	if got := URL("/var/lib/kanade/backend.db"); got != "/var/lib/kanade/backend.db" {
		t.Errorf("a path changed: %s", got)
	}
}
