package ntpd

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/ntp"
)

// reply builds a valid server reply with the given offset and delay.
func reply(now time.Time, off, rtt time.Duration, stratum uint8) *ntp.Response {
	return &ntp.Response{ClockOffset: off, RTT: rtt, Stratum: stratum, Version: 4, Time: now,
		ReferenceTime: now.Add(-time.Second), RootDelay: time.Millisecond, RootDispersion: time.Millisecond,
		Precision: time.Microsecond}
}

func TestSourceFilter(t *testing.T) {
	var s source
	now := time.Now()
	for i, d := range []time.Duration{9, 3, 7, 5} { // ms delays
		s.add(sample{at: now, offset: time.Duration(i) * time.Millisecond, delay: d * time.Millisecond})
	}
	best, jitter, ok := s.filtered()
	if !ok || best.delay != 3*time.Millisecond || best.offset != time.Millisecond {
		t.Fatalf("best %+v", best)
	}
	// others' offsets 0, 2, 3 ms from 1 ms: RMS of (1, 1, 2) ms
	if want := 1414 * time.Microsecond; (jitter - want).Abs() > time.Microsecond {
		t.Errorf("jitter %s, want %s", jitter, want)
	}
	for i := range 20 { // the filter keeps 8
		s.add(sample{at: now, offset: time.Duration(100+i) * time.Millisecond, delay: 50 * time.Millisecond})
	}
	if best, _, _ := s.filtered(); best.offset < 100*time.Millisecond || s.n != filterLen {
		t.Errorf("old samples kept: %+v n=%d", best, s.n)
	}
}

func TestAdaptPoll(t *testing.T) {
	tests := []struct {
		name     string
		outcomes string // g good, l lost
		want     int
	}{
		{"iburst then stable climbs", "gggg" + "gggg" + "gggg", 2},
		{"a loss steps down", "gggg" + "gggg" + "gggg" + "l", 1},
		{"never above maxpoll", strings.Repeat("g", 100), 4},
		{"never below minpoll", "llllllll", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := source{poll: 0, burst: iburstCount}
			for _, o := range tt.outcomes {
				s.adapt(o == 'g', 0, 4)
			}
			if s.poll != tt.want {
				t.Errorf("poll %d, want %d", s.poll, tt.want)
			}
		})
	}
}

func TestEffectiveMaxPoll(t *testing.T) {
	for _, tt := range []struct {
		min, max int
		fallback time.Duration
		want     int
	}{
		{6, 10, 15 * time.Minute, 7}, // 128 s × 4 ≤ 15 min
		{6, 10, 24 * time.Hour, 10},
		{0, 1, 3 * time.Second, 0},
		{6, 10, 0, 10},
	} {
		if got := effectiveMaxPoll(tt.min, tt.max, tt.fallback); got != tt.want {
			t.Errorf("effectiveMaxPoll(%d, %d, %s) = %d, want %d", tt.min, tt.max, tt.fallback, got, tt.want)
		}
	}
}

func TestResolveEntry(t *testing.T) {
	res := func(ctx context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "pool.example":
			return []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
				netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("192.0.2.4"), netip.MustParseAddr("192.0.2.5")}, nil
		case "one.example":
			return []netip.Addr{netip.MustParseAddr("192.0.2.9")}, nil
		}
		return nil, errors.New("no such host")
	}
	tests := []struct {
		entry string
		want  string
	}{
		{"127.0.0.1:11123", "127.0.0.1:11123"},
		{"10.0.0.1", "10.0.0.1:123"},
		{"[::1]:123", "[::1]:123"},
		{"one.example:1123", "192.0.2.9:1123"},
		{"pool.example", "192.0.2.1:123 192.0.2.2:123 192.0.2.3:123 192.0.2.4:123"},
		{"nowhere.example", "error"},
	}
	for _, tt := range tests {
		got, err := resolveEntry(context.Background(), res, tt.entry)
		var s []string
		for _, a := range got {
			s = append(s, a.String())
		}
		if err != nil {
			s = []string{"error"}
		}
		if strings.Join(s, " ") != tt.want {
			t.Errorf("resolveEntry(%q) = %v, want %s", tt.entry, s, tt.want)
		}
	}
}

// TestSourceSetMarks drives three sources through record: two agree, one
// is a falseticker; the sources view reads like chronyc's.
func TestSourceSetMarks(t *testing.T) {
	clk := newFakeClock(t)
	m := newModel(clk, slog.New(slog.DiscardHandler), modelConfig{localStratum: 10, fallbackAfter: time.Minute}, clk.Now())
	ss := &sourceSet{clock: clk, log: slog.New(slog.DiscardHandler), model: m}
	ss.configure([]string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}, 0, 4, time.Minute)
	offsets := []time.Duration{2 * time.Millisecond, 3 * time.Millisecond, 800 * time.Millisecond}
	for _, e := range ss.entries {
		e.sources = []*source{{name: e.name, addr: netip.AddrPortFrom(netip.MustParseAddr(e.name), 123), mark: markUnusable}}
	}
	for range 3 {
		for i, e := range ss.entries {
			if i < 3 {
				ss.record(e, e.sources[0], reply(clk.Now(), offsets[i], time.Duration(i+1)*time.Millisecond, 2), nil)
			} else {
				ss.record(e, e.sources[0], nil, errors.New("read udp: i/o timeout"))
			}
			clk.advance(time.Second)
		}
	}
	var marks string
	for _, st := range ss.status() {
		marks += st.Mark
	}
	if marks != "*+x?" {
		t.Errorf("marks %q, want *+x?\n%s", marks, SourcesView(ss.status()))
	}
	view := SourcesView(ss.status())
	for _, want := range []string{"MS Name/IP address", "^* 192.0.2.1:123", "^x 192.0.2.3:123", "^? 192.0.2.4:123"} {
		if !strings.Contains(view, want) {
			t.Errorf("sources view lacks %q:\n%s", want, view)
		}
	}
	if st := m.params(); st.state != stateSynced || st.stratum != 3 || st.refID != 0xc0000201 {
		t.Errorf("model: state %s stratum %d refid %08x", st.state, st.stratum, st.refID)
	}
	if off := m.params().off0; off < 2*time.Millisecond || off > 3*time.Millisecond {
		t.Errorf("combined offset %s, want between the two survivors", off)
	}
	st := ss.status()[0]
	if st.Reach != "7" || st.Stratum != 2 {
		t.Errorf("reach %s stratum %d", st.Reach, st.Stratum)
	}
}

// TestSourceKoD: an upstream's KoD RATE backs the poll off and gives no
// sample; DENY stops it being used.
func TestSourceKoD(t *testing.T) {
	clk := newFakeClock(t)
	m := newModel(clk, slog.New(slog.DiscardHandler), modelConfig{localStratum: 10, fallbackAfter: time.Hour}, clk.Now())
	ss := &sourceSet{clock: clk, log: slog.New(slog.DiscardHandler), model: m}
	ss.configure([]string{"192.0.2.1"}, 0, 6, time.Hour)
	e := ss.entries[0]
	s := &source{name: e.name, addr: netip.MustParseAddrPort("192.0.2.1:123"), poll: 2}
	e.sources = []*source{s}
	ss.record(e, s, &ntp.Response{Stratum: 0, KissCode: "RATE"}, nil)
	if s.poll != 3 || s.kod != "RATE" || s.n != 0 || s.reach != 0 {
		t.Errorf("after KoD RATE: poll %d (want 3) kod %q samples %d reach %o", s.poll, s.kod, s.n, s.reach)
	}
	ss.record(e, s, &ntp.Response{Stratum: 0, KissCode: "DENY"}, nil)
	if s.poll != 6 {
		t.Errorf("after KoD DENY: poll %d, want maxpoll", s.poll)
	}
}

// TestPoolReresolve runs the poll loop with a fake resolver and querier: a
// pool name whose addresses stop answering is resolved again.
func TestPoolReresolve(t *testing.T) {
	var mu sync.Mutex
	resolves := 0
	res := func(ctx context.Context, host string) ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		resolves++
		if resolves == 1 {
			return []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("192.0.2.7")}, nil
	}
	q := func(ctx context.Context, a netip.AddrPort, timeout time.Duration) (*ntp.Response, error) {
		if a.Addr() == netip.MustParseAddr("192.0.2.7") {
			return reply(time.Now(), time.Millisecond, time.Millisecond, 2), nil
		}
		return nil, errors.New("i/o timeout")
	}
	m := newModel(SystemClock{}, slog.New(slog.DiscardHandler), modelConfig{localStratum: 10, fallbackAfter: time.Hour}, time.Now())
	ss := &sourceSet{clock: SystemClock{}, log: slog.New(slog.DiscardHandler), model: m, query: q, resolve: res}
	ss.configure([]string{"pool.example"}, -6, -6, time.Hour) // polls every 1/64 s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		ss.run(ctx)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(15 * time.Second)
	for m.params().state != stateSynced {
		if time.Now().After(deadline) {
			t.Fatalf("not synced after re-resolving:\n%s", SourcesView(ss.status()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := ss.status(); len(st) != 1 || st[0].Address != "192.0.2.7:123" || st[0].Mark != "*" {
		t.Errorf("sources %+v", st)
	}
}
