package agent

import (
	"net/http"
	"strings"
)

// negotiateEncoding picks the response encoding among the offers from the
// Accept-Encoding header exactly as promhttp does (its copy of
// golang/gddo's httputil.NegotiateContentEncoding, BSD licence): the first
// offer with the strictly highest quality wins, identity when nothing
// matches, and "" when the best match has quality 0.
func negotiateEncoding(h http.Header, offers ...string) string {
	best, bestQ := "identity", -1.0
	specs := parseAcceptEncoding(h)
	for _, offer := range offers {
		for _, s := range specs {
			if s.q > bestQ && (s.value == "*" || s.value == offer) {
				best, bestQ = offer, s.q
			}
		}
	}
	if bestQ == 0 {
		return ""
	}
	return best
}

type acceptSpec struct {
	value string
	q     float64
}

// parseAcceptEncoding follows gddo's header.ParseAccept, including that a
// malformed element ends the parsing of its header line.
func parseAcceptEncoding(h http.Header) []acceptSpec {
	var specs []acceptSpec
line:
	for _, s := range h["Accept-Encoding"] {
		for {
			var spec acceptSpec
			spec.value, s = expectTokenSlash(s)
			if spec.value == "" {
				continue line
			}
			spec.q = 1
			s = skipSpace(s)
			if strings.HasPrefix(s, ";") {
				s = skipSpace(s[1:])
				if !strings.HasPrefix(s, "q=") {
					continue line
				}
				spec.q, s = expectQuality(s[2:])
				if spec.q < 0 {
					continue line
				}
			}
			specs = append(specs, spec)
			s = skipSpace(s)
			if !strings.HasPrefix(s, ",") {
				continue line
			}
			s = skipSpace(s[1:])
		}
	}
	return specs
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

// isTokenOrSlash: RFC 2616 token characters, and '/'.
func isTokenOrSlash(b byte) bool {
	if b <= 31 || b >= 127 {
		return false
	}
	return b == '/' || !strings.ContainsRune(" \t\"(),/:;<=>?@[]\\{}", rune(b))
}

func skipSpace(s string) string {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return s[i:]
}

func expectTokenSlash(s string) (token, rest string) {
	i := 0
	for i < len(s) && isTokenOrSlash(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func expectQuality(s string) (q float64, rest string) {
	switch {
	case len(s) == 0:
		return -1, ""
	case s[0] == '0':
		q = 0
	case s[0] == '1':
		q = 1
	default:
		return -1, ""
	}
	s = s[1:]
	if !strings.HasPrefix(s, ".") {
		return q, s
	}
	s = s[1:]
	i, n, d := 0, 0, 1
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
		d *= 10
	}
	return q + float64(n)/float64(d), s[i:]
}
