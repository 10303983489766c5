package streams

import (
	"fmt"
	"strings"
)

// CheckFilter refuses what NATS would refuse as a consumer's filter
// subject, in words that say what is wrong, before a stream is asked
// (nats.go's own error is "invalid subject name"): dot-separated tokens,
// none empty, no whitespace, and the wildcards * (one token) and > (all
// the rest, so only last) standing alone.
func CheckFilter(subject string) error {
	if subject == "" {
		return fmt.Errorf("the subject is empty")
	}
	if strings.ContainsAny(subject, " \t\r\n") {
		return fmt.Errorf("subject %q has whitespace in it", subject)
	}
	tokens := strings.Split(subject, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return fmt.Errorf("subject %q has an empty token (a leading, trailing or doubled dot)", subject)
		case t == ">" && i != len(tokens)-1:
			return fmt.Errorf("subject %q has > before its last token; > stands for all the tokens after it", subject)
		case t != "*" && t != ">" && strings.ContainsAny(t, "*>"):
			return fmt.Errorf("subject %q has a wildcard inside a token; * and > stand alone between dots", subject)
		}
	}
	return nil
}
