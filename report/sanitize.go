package report

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Peer text (a UPS alarm, a pool name, a collector error quoting a BMC)
// reaches a terminal in `check` and a monitoring system in Nagios output.
// There it must stay text: a control character is shown as an escape, not
// obeyed. JSON needs none of this: encoding/json escapes it exactly.

// Printable returns s with every control character, the C0 set (tab and
// newline included: one value is one cell of one line), DEL and the C1
// set, written as a visible Go-style escape: ESC becomes `\x1b` (the rest
// of an escape sequence is then harmless text), U+009B `\u009b`. Bytes
// that are not UTF-8 become U+FFFD.
func Printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || isControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		var r rune
		r, w = utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && w == 1:
			b.WriteRune(utf8.RuneError)
		case r < 0x80 && isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case isControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f)
}

// nagiosBar stands for `|` in Nagios plugin output, where the first `|` of
// a line starts the performance data: U+00A6 BROKEN BAR reads the same.
const nagiosBar = "¦"

// nagiosText is Printable with `|` replaced by nagiosBar.
func nagiosText(s string) string {
	return strings.ReplaceAll(Printable(s), "|", nagiosBar)
}
