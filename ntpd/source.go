package ntpd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/beevik/ntp"
)

// filterLen is the clock filter's depth: the last 8 samples, as NTP's.
const filterLen = 8

// iburstCount is how many quick polls a new source gets (chrony: 4–8).
const iburstCount = 4

// maxPoolAddrs bounds the sources one name expands to (chrony's pool
// maxsources default is 4).
const maxPoolAddrs = 4

// sample is one measurement of a source.
type sample struct {
	at        time.Time     // system clock when it arrived
	offset    time.Duration // source − system clock
	delay     time.Duration // round trip
	disp      time.Duration // measurement error: the precisions involved
	stratum   uint8
	leap      uint8
	rootDelay time.Duration
	rootDisp  time.Duration
}

// source is one upstream address. Its fields are guarded by sourceSet.mu.
type source struct {
	name  string // the servers: entry it came from
	addr  netip.AddrPort
	pool  bool // one of several addresses of a name
	reach uint8
	poll  int // log2 seconds, current
	polls int // polls sent
	burst int // iburst polls left
	good  int // consecutive good samples at this poll

	samples [filterLen]sample
	n       int // samples held (≤ filterLen)
	next    int // ring position

	lastRx  time.Time
	lastErr string
	kod     string
	mark    byte
	fresh   bool // a sample arrived since the last selection
}

func (s *source) add(sm sample) {
	s.samples[s.next] = sm
	s.next = (s.next + 1) % filterLen
	s.n = min(s.n+1, filterLen)
	s.fresh = true
}

// latest returns the most recent sample.
func (s *source) latest() (sample, bool) {
	if s.n == 0 {
		return sample{}, false
	}
	return s.samples[(s.next+filterLen-1)%filterLen], true
}

// filtered is NTP's clock filter: of the samples held, the one with the
// least delay (the least disturbed by queueing), and the jitter as the
// RMS difference of the others' offsets from it.
func (s *source) filtered() (best sample, jitter time.Duration, ok bool) {
	if s.n == 0 {
		return sample{}, 0, false
	}
	bi := -1
	for i := range s.n {
		if bi < 0 || s.samples[i].delay < s.samples[bi].delay {
			bi = i
		}
	}
	best = s.samples[bi]
	if s.n > 1 {
		var sum float64
		for i := range s.n {
			if i != bi {
				d := (s.samples[i].offset - best.offset).Seconds()
				sum += d * d
			}
		}
		jitter = time.Duration(math.Sqrt(sum/float64(s.n-1)) * float64(time.Second))
	}
	return best, jitter, true
}

// distance is the root distance of the filtered sample at now: half the
// round trips to the primary reference plus every dispersion on the way,
// grown by phi since the sample.
func distance(best sample, jitter time.Duration, now time.Time) time.Duration {
	age := max(0, now.Sub(best.at))
	return (best.rootDelay+max(best.delay, 0))/2 + best.rootDisp + best.disp + jitter + time.Duration(phi*float64(age))
}

// maxDistance is chrony's maxdistance: sources farther than this are not
// selectable.
const maxDistance = 3 * time.Second

// usable reports whether the source may take part in selection.
func (s *source) usable() bool {
	if s.reach == 0 || s.kod != "" {
		return false
	}
	l, ok := s.latest()
	return ok && l.leap != leapUnknown && l.stratum > 0 && l.stratum < maxStratum
}

// interval is the time to wait before the next poll.
func (s *source) interval(minpoll int) time.Duration {
	if s.burst > 0 {
		return min(2*time.Second, pollDuration(minpoll))
	}
	return pollDuration(s.poll)
}

func pollDuration(p int) time.Duration { return time.Duration(pow2(p) * float64(time.Second)) }

// adapt moves the poll interval after a poll: up by one after four good
// samples in a row (the source is stable), down by one after a loss.
func (s *source) adapt(good bool, minpoll, maxpoll int) {
	if s.burst > 0 {
		s.burst--
	}
	switch {
	case !good:
		s.good = 0
		s.poll = max(minpoll, s.poll-1)
	case s.burst == 0:
		if s.good++; s.good >= 4 && s.poll < maxpoll {
			s.poll++
			s.good = 0
		}
	}
	s.poll = max(minpoll, min(maxpoll, s.poll))
}

// Querier sends one NTP client request to addr and returns the reply;
// tests replace it. The default uses github.com/beevik/ntp.
type Querier func(ctx context.Context, addr netip.AddrPort, timeout time.Duration) (*ntp.Response, error)

// Resolver turns a servers: host into addresses; tests replace it.
type Resolver func(ctx context.Context, host string) ([]netip.Addr, error)

func defaultQuerier(c Clock) Querier {
	return func(ctx context.Context, addr netip.AddrPort, timeout time.Duration) (*ntp.Response, error) {
		opt := ntp.QueryOptions{Timeout: timeout}
		if _, sys := c.(SystemClock); !sys {
			opt.GetSystemTime = c.Now // measure against the clock we serve from
		}
		// beevik/ntp has no context; the query is bounded by timeout and
		// abandoned (not waited for) when ctx ends first.
		type reply struct {
			r   *ntp.Response
			err error
		}
		ch := make(chan reply, 1)
		go func() {
			r, err := ntp.QueryWithOptions(addr.String(), opt)
			ch <- reply{r, err}
		}()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case r := <-ch:
			return r.r, r.err
		}
	}
}

func defaultResolver(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// splitServer splits a servers: entry into host and port (default 123).
func splitServer(s string) (string, uint16) {
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, _ := strconv.Atoi(p)
		return h, uint16(n)
	}
	return s, 123
}

// resolveEntry returns the addresses of one servers: entry, at most
// maxPoolAddrs, IPv4 first.
func resolveEntry(ctx context.Context, r Resolver, entry string) ([]netip.AddrPort, error) {
	host, port := splitServer(entry)
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(a, port)}, nil
	}
	addrs, err := r(ctx, host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%s: no addresses", host)
	}
	var out []netip.AddrPort
	for _, want4 := range []bool{true, false} {
		for _, a := range addrs {
			if a.Unmap().Is4() == want4 && len(out) < maxPoolAddrs {
				out = append(out, netip.AddrPortFrom(a.Unmap(), port))
			}
		}
	}
	return out, nil
}

// sampleFrom turns a reply into a sample. A KoD returns its code; an
// unsynchronised or otherwise invalid server is reachable but gives no
// usable sample (err says why).
func sampleFrom(r *ntp.Response, at time.Time, ourPrecision time.Duration) (sample, string, error) {
	if r.IsKissOfDeath() {
		return sample{}, r.KissCode, nil
	}
	sm := sample{
		at: at, offset: r.ClockOffset, delay: r.RTT,
		disp:    r.Precision + ourPrecision,
		stratum: r.Stratum, leap: uint8(r.Leap),
		rootDelay: r.RootDelay, rootDisp: r.RootDispersion,
	}
	if err := r.Validate(); err != nil {
		if errors.Is(err, ntp.ErrInvalidLeapSecond) {
			sm.leap = leapUnknown
		}
		return sm, "", err
	}
	return sm, "", nil
}
