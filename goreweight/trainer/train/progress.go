package train

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// progress reports a run on a terminal as a bar redrawn in place, and
// elsewhere (a file, a pipe, a notebook) as plain lines at evaluation
// steps and about every 5% of the run.
type progress struct {
	w        io.Writer
	tty      bool
	label    string
	steps    int
	tokens   int // tokens per step
	start    time.Time
	startAt  int // step the session started at
	lastDraw time.Time
	lastLine int // step of the last plain line
	width    int // of the last bar, to blank it
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newProgress(w io.Writer, label string, steps, tokensPerStep, startAt int) *progress {
	if w == nil {
		return nil
	}
	return &progress{w: w, tty: isTerminal(w), label: label, steps: steps, tokens: tokensPerStep,
		start: time.Now(), startAt: startAt, lastLine: startAt}
}

// printf writes a line, first clearing a bar.
func (p *progress) printf(format string, args ...any) {
	if p == nil {
		return
	}
	p.clear()
	fmt.Fprintf(p.w, format, args...)
}

func (p *progress) clear() {
	if p.tty && p.width > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
		p.width = 0
	}
}

// update reports step (steps done) with the latest record's values; eval
// marks an evaluation step (printed as a line in both modes).
func (p *progress) update(step int, loss, r, maxWM Float, uniform bool, val *Float) {
	if p == nil {
		return
	}
	if step == 0 {
		if val != nil {
			p.printf("%s step %*d/%d | val %.4f (initial model)\n", p.label, digits(p.steps), 0, p.steps, float64(*val))
		}
		return
	}
	now := time.Now()
	elapsed := now.Sub(p.start).Seconds()
	done := step - p.startAt
	tps := math.NaN()
	eta := "?"
	if done > 0 && elapsed > 0 {
		tps = float64(done*p.tokens) / elapsed
		eta = fmtDuration(time.Duration(float64(p.steps-step) * elapsed / float64(done) * float64(time.Second)))
	}
	rs := "uniform"
	if r.Valid() && !uniform {
		rs = fmt.Sprintf("%.3g", float64(r))
	}
	stats := fmt.Sprintf("%s tok/s | loss %.4f | r %s | max wM %.2f | ETA %s", fmtCount(tps), float64(loss), rs, float64(maxWM), eta)
	if val != nil {
		p.clear()
		fmt.Fprintf(p.w, "%s step %*d/%d | %s | val %.4f\n", p.label, digits(p.steps), step, p.steps, stats, float64(*val))
		p.lastLine = step
	}
	if p.tty {
		if val == nil && now.Sub(p.lastDraw) < 100*time.Millisecond && step != p.steps {
			return
		}
		p.lastDraw = now
		const barW = 6
		fill := barW * step / max(p.steps, 1)
		rshort := rs
		if rshort == "uniform" {
			rshort = "-"
		}
		line := fmt.Sprintf("%s %d/%d [%s%s] ETA %s %s tok/s loss %.3f r %s max wM %.2f", strings.Trim(p.label, "[]"), step, p.steps,
			strings.Repeat("#", fill), strings.Repeat(".", barW-fill), eta, fmtCount(tps), float64(loss), rshort, float64(maxWM))
		if len(line) > 79 { // one terminal line, or \r cannot redraw it
			line = line[:79]
		}
		pad := max(p.width-len(line), 0)
		fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
		p.width = len(line)
		if step == p.steps {
			fmt.Fprintln(p.w)
			p.width = 0
		}
		return
	}
	if val == nil && (step-p.lastLine >= max(p.steps/20, 1) || step == p.steps) {
		fmt.Fprintf(p.w, "%s step %*d/%d | %s\n", p.label, digits(p.steps), step, p.steps, stats)
		p.lastLine = step
	}
}

func digits(n int) int { return len(fmt.Sprint(n)) }

// fmtCount formats a rate like 12.3k.
func fmtCount(v float64) string {
	switch {
	case math.IsNaN(v):
		return "?"
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// fmtDuration formats a duration like 1m05s.
func fmtDuration(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	switch {
	case s >= 3600:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	case s >= 60:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%ds", s)
}
