package wire

import (
	"time"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as serde_json writes it: only '"', '\\' and
// U+0000..U+001F are escaped (with the short forms \b \f \n \r \t where they
// exist, lower-case \u00XX otherwise); everything else, including '<', '>',
// '&', U+2028 and U+2029, is written raw. Invalid UTF-8 cannot come from a
// Rust String, so it is replaced by U+FFFD as serde would never see it.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, "\ufffd"...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendKey(b []byte, first *bool, key string) []byte {
	if !*first {
		b = append(b, ',')
	}
	*first = false
	b = AppendJSONString(b, key)
	return append(b, ':')
}

func appendKeyString(b []byte, first *bool, key, v string) []byte {
	return AppendJSONString(appendKey(b, first, key), v)
}

func appendOptString(b []byte, first *bool, key string, v *string) []byte {
	if v == nil {
		return b
	}
	return appendKeyString(b, first, key, *v)
}

func appendKeyTime(b []byte, first *bool, key string, t time.Time) []byte {
	b = append(appendKey(b, first, key), '"')
	return append(AppendTimestamp(b, t), '"')
}
