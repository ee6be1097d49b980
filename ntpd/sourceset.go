package ntpd

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/beevik/ntp"

	"github.com/airgapd/airgapd/api"
)

// sourceSet polls the upstream servers, keeps each source's reach and
// clock filter, runs selection after every sample and feeds the result to
// the clock model.
type sourceSet struct {
	clock     Clock
	log       *slog.Logger
	query     Querier
	resolve   Resolver
	model     *model
	precision time.Duration
	onSample  func(src string, ok bool) // metrics hook; may be nil

	mu      sync.Mutex
	minpoll int
	maxpoll int           // effective: also below maxAge/4
	maxAge  time.Duration // fallback_after: older samples are not selectable
	entries []*entry
	ctx     context.Context // set by run; nil before
	wg      sync.WaitGroup
}

// entry is one `servers:` line: a host or address, expanding to one or
// (for a name with several addresses, a pool) more sources.
type entry struct {
	name       string
	literal    bool // an IP address: never re-resolved
	cancel     context.CancelFunc
	sources    []*source
	resolveErr string
	reresolves int
}

func (ss *sourceSet) configure(servers []string, minpoll, maxpoll int, maxAge time.Duration) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.minpoll, ss.maxpoll, ss.maxAge = minpoll, effectiveMaxPoll(minpoll, maxpoll, maxAge), maxAge
	minpoll, maxpoll = ss.minpoll, ss.maxpoll
	keep := ss.entries[:0:0]
	for _, e := range ss.entries {
		if slices.Contains(servers, e.name) {
			keep = append(keep, e)
		} else if e.cancel != nil {
			e.cancel()
		}
	}
	for _, name := range servers {
		if !slices.ContainsFunc(keep, func(e *entry) bool { return e.name == name }) {
			host, _ := splitServer(name)
			_, err := netip.ParseAddr(host)
			e := &entry{name: name, literal: err == nil}
			keep = append(keep, e)
			if ss.ctx != nil {
				ss.startLocked(e)
			}
		}
	}
	// Keep the configured order, for the sources view.
	slices.SortStableFunc(keep, func(a, b *entry) int {
		return slices.Index(servers, a.name) - slices.Index(servers, b.name)
	})
	ss.entries = keep
	for _, e := range ss.entries {
		for _, s := range e.sources {
			s.poll = max(minpoll, min(maxpoll, s.poll))
		}
	}
}

// run polls until ctx ends.
func (ss *sourceSet) run(ctx context.Context) {
	ss.mu.Lock()
	ss.ctx = ctx
	for _, e := range ss.entries {
		ss.startLocked(e)
	}
	ss.mu.Unlock()
	<-ctx.Done()
	ss.wg.Wait()
}

func (ss *sourceSet) startLocked(e *entry) {
	ctx, cancel := context.WithCancel(ss.ctx)
	e.cancel = cancel
	ss.wg.Add(1)
	go func() {
		defer ss.wg.Done()
		ss.runEntry(ctx, e)
	}()
}

// runEntry resolves an entry, polls its addresses, and resolves it again
// when none of them has answered for eight polls.
func (ss *sourceSet) runEntry(ctx context.Context, e *entry) {
	backoff := 2 * time.Second
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		addrs, err := resolveEntry(rctx, ss.resolve, e.name)
		cancel()
		if err != nil {
			ss.mu.Lock()
			first := e.resolveErr == ""
			e.resolveErr = err.Error()
			ss.mu.Unlock()
			if first {
				ss.log.Warn("cannot resolve NTP server; retrying", "server", e.name, "err", err)
			}
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 5*time.Minute)
			continue
		}
		backoff = 2 * time.Second
		pctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		ss.mu.Lock()
		e.resolveErr = ""
		e.sources = nil
		for _, a := range addrs {
			s := &source{name: e.name, addr: a, pool: len(addrs) > 1, poll: ss.minpoll, burst: iburstCount, mark: markUnusable}
			e.sources = append(e.sources, s)
			wg.Add(1)
			go func() {
				defer wg.Done()
				ss.pollLoop(pctx, e, s, stop)
			}()
		}
		ss.mu.Unlock()
		ss.log.Debug("polling NTP server", "server", e.name, "addresses", fmt.Sprint(addrs))
		<-pctx.Done()
		stop()
		wg.Wait()
		if ctx.Err() == nil {
			ss.mu.Lock()
			e.reresolves++
			ss.mu.Unlock()
			ss.log.Info("no address of this NTP server answers; resolving it again", "server", e.name)
		}
	}
}

// effectiveMaxPoll keeps the poll interval at most a quarter of
// fallback_after (but never below minpoll), so one or two lost replies do
// not make the server fall back to local_stratum.
func effectiveMaxPoll(minpoll, maxpoll int, fallbackAfter time.Duration) int {
	for maxpoll > minpoll && fallbackAfter > 0 && 4*pollDuration(maxpoll) > fallbackAfter {
		maxpoll--
	}
	return maxpoll
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// pollLoop polls one source on its schedule. unreachable is called when
// the whole entry should be resolved again.
func (ss *sourceSet) pollLoop(ctx context.Context, e *entry, s *source, unreachable func()) {
	for ctx.Err() == nil {
		ss.mu.Lock()
		iv := s.interval(ss.minpoll)
		ss.mu.Unlock()
		timeout := max(200*time.Millisecond, min(2*time.Second, iv*3/4))
		start := time.Now()
		resp, err := ss.query(ctx, s.addr, timeout)
		if ctx.Err() != nil {
			return
		}
		if ss.record(e, s, resp, err) && !e.literal {
			unreachable()
			return
		}
		if !sleep(ctx, iv-time.Since(start)) {
			return
		}
	}
}

// record takes one poll's outcome; it reports whether every address of
// the entry has been unreachable for eight polls.
func (ss *sourceSet) record(e *entry, s *source, resp *ntp.Response, qerr error) (allGone bool) {
	at := ss.clock.Now()
	ss.mu.Lock()
	s.polls++
	s.reach <<= 1
	good, kissed := false, false
	if qerr != nil {
		s.lastErr = shortErr(qerr)
	} else {
		sm, kod, err := sampleFrom(resp, at, ss.precision)
		switch {
		case kod != "":
			kissed = true
			s.burst = 0 // the server asks us to back off: no more iburst
			s.kod = kod
			s.lastErr = "kiss-o'-death " + kod
			if kod == "RATE" {
				s.poll = min(ss.maxpoll, s.poll+1)
			} else {
				s.poll = ss.maxpoll // DENY, RSTR: ask rarely
			}
		default:
			s.kod = ""
			s.reach |= 1
			s.lastRx = at
			if err != nil {
				s.lastErr = shortErr(err)
			} else {
				s.lastErr = ""
				s.add(sm)
				good = true
			}
		}
	}
	if !kissed {
		s.adapt(good, ss.minpoll, ss.maxpoll)
	}
	u, ok := ss.selectLocked(at)
	allGone = true
	for _, o := range e.sources {
		if o.reach != 0 || o.polls < 8 {
			allGone = false
		}
	}
	ss.mu.Unlock()
	if ss.onSample != nil {
		ss.onSample(s.addr.String(), good)
	}
	if ok {
		ss.model.apply(u)
	}
	return allGone
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.Contains(s, "i/o timeout") {
		return "no reply (timeout)"
	}
	return s
}

// selectLocked runs selection over every source and marks them. It
// returns an update for the model when a selected or combined source has
// a sample the model has not seen.
func (ss *sourceSet) selectLocked(now time.Time) (update, bool) {
	type cand struct {
		s      *source
		best   sample
		jitter time.Duration
	}
	var cands []cand
	var cs []candidate
	for _, e := range ss.entries {
		for _, s := range e.sources {
			s.mark = markUnusable
			if !s.usable() {
				continue
			}
			if l, _ := s.latest(); ss.maxAge > 0 && now.Sub(l.at) >= ss.maxAge {
				continue // stale: the model falls back on its own
			}
			best, jitter, ok := s.filtered()
			if !ok {
				continue
			}
			d := distance(best, jitter, now)
			if d > maxDistance {
				continue
			}
			cands = append(cands, cand{s, best, jitter})
			cs = append(cs, candidate{offset: best.offset, dist: d, stratum: best.stratum})
		}
	}
	ch := selectSources(cs)
	fresh := false
	var at time.Time
	for i, c := range cands {
		c.s.mark = ch.marks[i]
		if ch.marks[i] == markSelected || ch.marks[i] == markCombined {
			fresh = fresh || c.s.fresh
			if c.best.at.After(at) {
				at = c.best.at
			}
		}
	}
	for _, c := range cands {
		c.s.fresh = false
	}
	if ch.peer < 0 || !fresh {
		return update{}, false
	}
	p := cands[ch.peer]
	return update{
		offset:    ch.offset,
		at:        at,
		source:    p.s.addr.String(),
		addr:      p.s.addr.Addr(),
		stratum:   p.best.stratum,
		leap:      p.best.leap,
		rootDelay: p.best.rootDelay + max(p.best.delay, 0),
		rootDisp:  p.best.rootDisp + p.best.disp + time.Duration(phi*float64(max(0, now.Sub(p.best.at)))),
		jitter:    p.jitter,
	}, true
}

// SourceStatus is one line of the sources view, like `chronyc sources`.
type SourceStatus = api.NTPSourceStatus

func (ss *sourceSet) status() []SourceStatus {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.clock.Now()
	var out []SourceStatus
	for _, e := range ss.entries {
		if len(e.sources) == 0 {
			st := SourceStatus{Mark: string(markUnusable), Server: e.name, Address: e.name, Reach: "0", LastRx: -1, Poll: ss.minpoll, LastError: e.resolveErr}
			out = append(out, st)
			continue
		}
		for _, s := range e.sources {
			st := SourceStatus{Mark: string(s.mark), Server: e.name, Address: s.addr.String(), Poll: s.poll,
				Reach: fmt.Sprintf("%o", s.reach), LastRx: -1, LastError: s.lastErr}
			if !s.lastRx.IsZero() {
				st.LastRx = now.Sub(s.lastRx).Seconds()
			}
			if l, ok := s.latest(); ok {
				st.Stratum, st.Offset, st.Delay = int(l.stratum), l.offset.Seconds(), l.delay.Seconds()
			}
			if best, jitter, ok := s.filtered(); ok {
				st.Jitter = jitter.Seconds()
				st.Error = distance(best, jitter, now).Seconds()
			}
			out = append(out, st)
		}
	}
	return out
}

// SourcesView renders sources as `chronyc sources` does.
func SourcesView(sources []SourceStatus) string {
	var b strings.Builder
	b.WriteString("MS Name/IP address         Stratum Poll Reach LastRx Last sample\n")
	b.WriteString("===============================================================================\n")
	for _, s := range sources {
		name := s.Address
		if s.Server != s.Address && !strings.HasPrefix(s.Server, s.Address) {
			name = s.Address + " (" + s.Server + ")"
		}
		lastRx := "-"
		if s.LastRx >= 0 {
			lastRx = formatAgo(s.LastRx)
		}
		fmt.Fprintf(&b, "^%s %-27s %2d %4d %5s %6s %s[%s] +/- %s\n", s.Mark, name, s.Stratum, s.Poll, s.Reach, lastRx,
			formatOffset(s.Offset), formatOffset(s.Offset), formatOffset(s.Error)[1:])
	}
	return b.String()
}

// formatOffset prints seconds with chronyc's units: ns, us, ms, s.
func formatOffset(sec float64) string {
	sign := "+"
	if sec < 0 {
		sign, sec = "-", -sec
	}
	switch {
	case sec < 1e-6:
		return fmt.Sprintf("%s%.0fns", sign, sec*1e9)
	case sec < 1e-3:
		return fmt.Sprintf("%s%.0fus", sign, sec*1e6)
	case sec < 1:
		return fmt.Sprintf("%s%.0fms", sign, sec*1e3)
	}
	return fmt.Sprintf("%s%.1fs", sign, sec)
}

func formatAgo(sec float64) string {
	switch {
	case sec < 1024:
		return fmt.Sprintf("%.0f", sec)
	case sec < 3*3600:
		return fmt.Sprintf("%.0fm", sec/60)
	}
	return fmt.Sprintf("%.0fh", sec/3600)
}
