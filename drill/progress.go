package drill

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// IsTerminal reports whether fd is a terminal.
func IsTerminal(fd uintptr) bool {
	_, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
	return err == nil
}

// ProgressPrinter shows --wait progress: a bar redrawn in place on a
// terminal, plain lines otherwise (a log, the journal): one per step of
// 5%, and at least one a minute.
type ProgressPrinter struct {
	w        io.Writer
	terminal bool
	now      func() time.Time

	mu       sync.Mutex
	lastMsg  string
	lastPct  float64
	lastLine time.Time
	drawn    bool
}

// NewProgressPrinter writes progress to w (stderr), as a bar when
// terminal is true.
func NewProgressPrinter(w io.Writer, terminal bool) *ProgressPrinter {
	return &ProgressPrinter{w: w, terminal: terminal, now: time.Now, lastPct: -100}
}

// Progress is the Progress function to hand to a method.
func (p *ProgressPrinter) Progress(done, total float64, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pct := -1.0
	if total > 0 {
		pct = min(max(done/total*100, 0), 100)
	}
	if p.terminal {
		const width = 30
		bar := strings.Repeat(" ", width)
		pctText := "   ?%"
		if pct >= 0 {
			n := int(pct / 100 * width)
			bar = strings.Repeat("#", n) + strings.Repeat("-", width-n)
			pctText = fmt.Sprintf("%5.1f%%", pct)
		}
		// \r and erase to the end of the line: redraw in place.
		fmt.Fprintf(p.w, "\r[%s] %s %s\x1b[K", bar, pctText, msg)
		p.drawn = true
		return
	}
	t := p.now()
	due := p.lastLine.IsZero() || t.Sub(p.lastLine) >= time.Minute
	if pct >= 0 {
		due = due || pct-p.lastPct >= 5 || (pct == 100 && p.lastPct != 100)
	} else {
		// Unknown progress: a new message, but not more than one line
		// every 10 s for messages that change each poll.
		due = due || (msg != p.lastMsg && t.Sub(p.lastLine) >= 10*time.Second)
	}
	if !due {
		return
	}
	p.lastMsg, p.lastLine = msg, t
	if pct >= 0 {
		p.lastPct = pct
		fmt.Fprintf(p.w, "%s %5.1f%% %s\n", t.Format(time.TimeOnly), pct, msg)
		return
	}
	fmt.Fprintf(p.w, "%s %s\n", t.Format(time.TimeOnly), msg)
}

// Done ends the bar's line on a terminal.
func (p *ProgressPrinter) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.terminal && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
