package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/airgapd/airgapd/api"
)

// progressStep is one snapshot of a long-running command's work, in the
// terms every command shares; each command turns its own progress into it.
type progressStep struct {
	// Key names what a bar is for (a sync's repo): a new key starts a new
	// bar.
	Key  string
	Desc string
	// Done and Total are bytes; Total 0 is not known yet.
	Done, Total int64
	// Bar says bytes are counted in this step, so a bar is worth drawing
	// (a sync's metadata phase is not).
	Bar bool
	// Now prints the line at once even when one was printed just now (a
	// new phase, the last package); Skip prints none (a phase the result
	// line reports).
	Now, Skip bool
	// Rate is bytes per second as the worker measured it; 0: the view
	// measures it from its start.
	Rate float64
}

// progressView is the one progress display of every long-running command
// (mirror sync and index, bundle create and import, registry import): on a
// terminal a bar with bytes, rate and ETA; otherwise a line every few
// seconds; nothing with -q. It writes to stderr, so stdout keeps only the
// results.
type progressView struct {
	w     io.Writer
	quiet bool
	tty   bool
	bar   *progressbar.ProgressBar
	key   string
	last  time.Time
	began time.Time
	done  int64
}

// lineEvery is how often a line is printed when not on a terminal.
const lineEvery = 2 * time.Second

func newProgressView(w io.Writer, quiet bool) *progressView {
	v := &progressView{w: w, quiet: quiet, began: time.Now()}
	if f, ok := w.(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) {
		v.tty = true
	}
	return v
}

// show displays one step.
func (v *progressView) show(s progressStep) {
	v.done = s.Done
	if v.quiet {
		return
	}
	if s.Key != v.key {
		v.endBar()
		v.key = s.Key
	}
	if !v.tty {
		if s.Skip || (!s.Now && time.Since(v.last) < lineEvery) {
			return
		}
		v.last = time.Now()
		fmt.Fprintf(v.w, "%s, %s of %s, %s/s%s\n", s.Desc, humanBytes(s.Done), humanBytes(s.Total), humanBytes(v.rate(s)), v.eta(s))
		return
	}
	if v.bar == nil && s.Bar {
		v.bar = progressbar.NewOptions64(barMax(s.Total),
			progressbar.OptionSetWriter(v.w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionShowCount(), // done/total bytes
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetDescription(s.Desc),
		)
	}
	if v.bar == nil {
		return
	}
	if m := barMax(s.Total); m != v.bar.GetMax64() {
		v.bar.ChangeMax64(m)
	}
	v.bar.Describe(s.Desc)
	if s.Total > 0 {
		v.bar.Set64(min(s.Done, s.Total))
	} else {
		v.bar.Set64(s.Done)
	}
}

// barMax is a bar's length: the total, or -1 (a spinner) while unknown.
func barMax(total int64) int64 {
	if total > 0 {
		return total
	}
	return -1
}

func (v *progressView) rate(s progressStep) int64 {
	if s.Rate > 0 {
		return int64(s.Rate)
	}
	if took := time.Since(v.began).Seconds(); took > 0 {
		return int64(float64(s.Done) / took)
	}
	return 0
}

func (v *progressView) eta(s progressStep) string {
	r := v.rate(s)
	if r <= 0 || s.Total <= s.Done {
		return ""
	}
	return ", ETA " + time.Duration(float64(s.Total-s.Done)/float64(r)*float64(time.Second)).Round(time.Second).String()
}

func (v *progressView) endBar() {
	if v.bar != nil {
		v.bar.Finish()
		fmt.Fprintln(v.w)
		v.bar = nil
	}
}

// finish ends the display; summary, when not empty, is printed as its last
// line (not with -q).
func (v *progressView) finish(summary string) {
	v.endBar()
	if !v.quiet && summary != "" {
		fmt.Fprintln(v.w, summary)
	}
}

// totals is "BYTES, N blobs in TIME (RATE/s)": what a bundle command's
// last progress line says it did.
func (v *progressView) totals(items int) string {
	took := time.Since(v.began)
	return fmt.Sprintf("%s, %d blobs in %s (%s/s)", humanBytes(v.done), items, took.Round(100*time.Millisecond), humanBytes(v.rate(progressStep{Done: v.done})))
}

// serverAt is the one "is a server running" probe of every command that
// can go through the control socket: a client when a server answers on
// socket, nil when none runs (the command may do the work on data_dir
// itself), or an error when one may run but cannot be reached (the socket
// is root's), so that the command does not work beside a running server.
func serverAt(socket string) (*api.Client, error) {
	c, err := net.DialTimeout("unix", socket, 2*time.Second)
	switch {
	case err == nil:
		c.Close()
		return api.NewControlClient(socket), nil
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return nil, nil
	case errors.Is(err, os.ErrPermission):
		return nil, fmt.Errorf("permission denied on %s: a server may be running and its control socket is for root only; run as root (sudo)", socket)
	}
	return nil, fmt.Errorf("reach %s: %w", socket, err)
}
