package ups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Protocol-level errors. A client that returns one of them has closed its
// connection: the stream can no longer be trusted.
var (
	// ErrLineTooLong means the server sent a line longer than
	// Options.MaxLineBytes; a hostile or broken server cannot make us buffer
	// an endless line.
	ErrLineTooLong = errors.New("reply line too long")
	// ErrResponseTooLarge means one reply (a whole LIST) exceeded
	// Options.MaxResponseBytes.
	ErrResponseTooLarge = errors.New("reply too large")
	// ErrProtocol means the server sent something the NUT protocol does not
	// allow at this point.
	ErrProtocol = errors.New("protocol violation")
)

// lineReader reads newline-terminated lines with a bound on the length of
// each line and on the total bytes of one reply. Memory use is the size of
// its buffer, whatever the peer sends.
type lineReader struct {
	br     *bufio.Reader
	budget int // bytes left for the current reply
}

func newLineReader(r io.Reader, maxLine int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, maxLine)}
}

// startReply resets the byte budget for one reply.
func (r *lineReader) startReply(max int) { r.budget = max }

// readLine returns the next line without its "\n" (and a "\r" before it).
func (r *lineReader) readLine() (string, error) {
	b, err := r.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", fmt.Errorf("%w (more than %d bytes)", ErrLineTooLong, r.br.Size())
	case errors.Is(err, io.EOF) && len(b) > 0:
		return "", fmt.Errorf("connection closed in the middle of a line: %w", io.ErrUnexpectedEOF)
	case errors.Is(err, io.EOF):
		return "", fmt.Errorf("connection closed before the reply was complete: %w", io.ErrUnexpectedEOF)
	case err != nil:
		return "", err
	}
	r.budget -= len(b)
	if r.budget < 0 {
		return "", ErrResponseTooLarge
	}
	b = b[:len(b)-1]
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return string(b), nil
}

// splitWords splits one protocol line into words the way upsd's parser
// does: words are separated by spaces or tabs, double quotes group words,
// and a backslash takes the next character literally (`\"`, `\\`), inside or
// outside quotes.
func splitWords(line string) ([]string, error) {
	var (
		words   []string
		b       strings.Builder
		inWord  bool
		quoted  bool
		escaped bool
	)
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case escaped:
			b.WriteByte(ch)
			escaped = false
		case ch == '\\':
			escaped, inWord = true, true
		case ch == '"':
			quoted, inWord = !quoted, true
		case !quoted && (ch == ' ' || ch == '\t'):
			if inWord {
				words = append(words, b.String())
				b.Reset()
				inWord = false
			}
		default:
			b.WriteByte(ch)
			inWord = true
		}
	}
	if escaped {
		return words, fmt.Errorf("%w: line ends in a backslash", ErrProtocol)
	}
	if quoted {
		return words, fmt.Errorf("%w: unterminated quote", ErrProtocol)
	}
	if inWord {
		words = append(words, b.String())
	}
	return words, nil
}

// quoteWord renders s as one protocol word. Plain names go out as they are;
// anything else is quoted with `\`, `"` and `#` escaped (an unescaped # in
// quotes makes upsd 2.8.0 drop the command without a reply). Line breaks
// and NUL cannot be sent at all.
func quoteWord(s string) (string, error) {
	if strings.ContainsAny(s, "\n\r\x00") {
		return "", fmt.Errorf("argument %q contains a line break or NUL", s)
	}
	plain := s != ""
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		if c <= ' ' || c == '"' || c == '\\' || c == '#' || c >= 0x7f {
			plain = false
		}
	}
	if plain {
		return s, nil
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', '#':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// checkErr turns an "ERR <CODE> [extra]" line into a *ServerError, and
// returns nil for any other line.
func checkErr(line string) error {
	if line != "ERR" && !strings.HasPrefix(line, "ERR ") {
		return nil
	}
	words, _ := splitWords(line)
	e := &ServerError{}
	if len(words) > 1 {
		e.Code = ErrorCode(words[1])
	}
	if len(words) > 2 {
		e.Detail = strings.Join(words[2:], " ")
	}
	return e
}

// expectOK reads a one-line reply that must start with OK.
func expectOK(lr *lineReader, max int) (string, error) {
	lr.startReply(max)
	line, err := lr.readLine()
	if err != nil {
		return "", err
	}
	if err := checkErr(line); err != nil {
		return "", err
	}
	if line != "OK" && !strings.HasPrefix(line, "OK ") {
		return "", fmt.Errorf("%w: want OK, got %q", ErrProtocol, clip(line))
	}
	return line, nil
}

// Var is one variable of a UPS, as upsd lists it.
type Var struct {
	Name  string
	Value string
}

// VarList is the reply to LIST VAR: every variable that parsed, and the
// lines that did not (kept so the caller can say what was unreadable).
type VarList struct {
	Vars      map[string]string
	Malformed []string
	// Dropped counts variables beyond the limit on variables kept: a
	// server listing thousands cannot make us hold and export them all.
	Dropped int
}

// maxMalformed bounds how many unreadable lines one reply keeps.
const maxMalformed = 8

// readListVar reads the reply to "LIST VAR <ups>", keeping every variable:
//
//	BEGIN LIST VAR <ups>
//	VAR <ups> <name> "<value>"
//	END LIST VAR <ups>
func readListVar(lr *lineReader, ups string, max int) (VarList, error) {
	return readListVarLimit(lr, ups, max, 0)
}

// readListVarLimit is readListVar keeping at most maxVars variables
// (maxVars <= 0: no limit) and counting the rest in Dropped.
func readListVarLimit(lr *lineReader, ups string, max, maxVars int) (VarList, error) {
	out := VarList{Vars: map[string]string{}}
	err := readList(lr, max, []string{"VAR", ups}, func(words []string, line string) {
		// words: VAR <ups> <name> <value>
		if len(words) != 4 || words[0] != "VAR" || words[1] != ups || words[2] == "" {
			if len(out.Malformed) < maxMalformed {
				out.Malformed = append(out.Malformed, clip(line))
			}
			return
		}
		if _, seen := out.Vars[words[2]]; !seen && maxVars > 0 && len(out.Vars) >= maxVars {
			out.Dropped++
			return
		}
		out.Vars[words[2]] = words[3]
	})
	return out, err
}

// Device is one UPS that upsd serves.
type Device struct {
	Name        string
	Description string
}

// readListUPS reads the reply to "LIST UPS":
//
//	BEGIN LIST UPS
//	UPS <name> "<description>"
//	END LIST UPS
func readListUPS(lr *lineReader, max int) ([]Device, error) {
	var out []Device
	err := readList(lr, max, []string{"UPS"}, func(words []string, line string) {
		if len(words) < 2 || words[0] != "UPS" || words[1] == "" {
			return
		}
		d := Device{Name: words[1]}
		if len(words) > 2 {
			d.Description = words[2]
		}
		out = append(out, d)
	})
	return out, err
}

// readList reads BEGIN LIST <what...>, item lines and END LIST <what...>,
// calling item for every line in between. An ERR in place of BEGIN is
// returned as a *ServerError.
func readList(lr *lineReader, max int, what []string, item func(words []string, line string)) error {
	lr.startReply(max)
	first, err := lr.readLine()
	if err != nil {
		return err
	}
	if err := checkErr(first); err != nil {
		return err
	}
	header := strings.Join(what, " ")
	if first != "BEGIN LIST "+header {
		return fmt.Errorf("%w: want %q, got %q", ErrProtocol, "BEGIN LIST "+header, clip(first))
	}
	for {
		line, err := lr.readLine()
		if err != nil {
			return err
		}
		if line == "END LIST "+header {
			return nil
		}
		if err := checkErr(line); err != nil {
			return fmt.Errorf("%w: error inside a list: %w", ErrProtocol, err)
		}
		words, werr := splitWords(line)
		if werr != nil {
			item(nil, line)
			continue
		}
		item(words, line)
	}
}

// readGetVar reads the reply to "GET VAR <ups> <name>": VAR <ups> <name> "<value>".
func readGetVar(lr *lineReader, ups, name string, max int) (string, error) {
	lr.startReply(max)
	line, err := lr.readLine()
	if err != nil {
		return "", err
	}
	if err := checkErr(line); err != nil {
		return "", err
	}
	words, err := splitWords(line)
	if err != nil {
		return "", err
	}
	if len(words) != 4 || words[0] != "VAR" || words[1] != ups || words[2] != name {
		return "", fmt.Errorf("%w: want VAR %s %s, got %q", ErrProtocol, ups, name, clip(line))
	}
	return words[3], nil
}

// clip shortens peer text quoted in errors and logs.
func clip(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// readListCmd reads the reply to "LIST CMD <ups>", keeping at most
// maxCmds command names (maxCmds <= 0: no limit):
//
//	BEGIN LIST CMD <ups>
//	CMD <ups> <cmdname>
//	END LIST CMD <ups>
//
// Lines that are not "CMD <ups> <name>" are skipped: a command we cannot
// read is a command we will not send.
func readListCmd(lr *lineReader, ups string, max, maxCmds int) ([]string, error) {
	var out []string
	err := readList(lr, max, []string{"CMD", ups}, func(words []string, _ string) {
		if len(words) != 3 || words[0] != "CMD" || words[1] != ups || words[2] == "" {
			return
		}
		if maxCmds > 0 && len(out) >= maxCmds {
			return
		}
		out = append(out, words[2])
	})
	return out, err
}

// readInstCmdReply reads the reply to INSTCMD: "OK", or "OK TRACKING <id>"
// when tracking is on. It returns the tracking id, "" without one.
func readInstCmdReply(lr *lineReader, max int) (string, error) {
	line, err := expectOK(lr, max)
	if err != nil {
		return "", err
	}
	if line == "OK" {
		return "", nil
	}
	words, err := splitWords(line)
	if err != nil {
		return "", err
	}
	if len(words) != 3 || words[1] != "TRACKING" || words[2] == "" {
		return "", fmt.Errorf("%w: want OK or OK TRACKING <id>, got %q", ErrProtocol, clip(line))
	}
	return words[2], nil
}

// TrackingStatus is upsd's answer to GET TRACKING <id>, when it is not an
// ERR (a command the driver failed comes back as a *ServerError: ERR
// UNKNOWN, ERR INVALID-ARGUMENT, ERR FAILED).
type TrackingStatus string

const (
	TrackingPending TrackingStatus = "PENDING"
	TrackingSuccess TrackingStatus = "SUCCESS"
)

// readTracking reads the reply to "GET TRACKING <id>": PENDING, SUCCESS or
// ERR <code>.
func readTracking(lr *lineReader, max int) (TrackingStatus, error) {
	lr.startReply(max)
	line, err := lr.readLine()
	if err != nil {
		return "", err
	}
	if err := checkErr(line); err != nil {
		return "", err
	}
	switch s := TrackingStatus(line); s {
	case TrackingPending, TrackingSuccess:
		return s, nil
	}
	return "", fmt.Errorf("%w: want PENDING, SUCCESS or ERR, got %q", ErrProtocol, clip(line))
}
