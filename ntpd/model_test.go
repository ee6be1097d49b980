package ntpd

import (
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/airgapd/airgapd/internal/conf"
)

func testModel(t *testing.T, cfg modelConfig, startup time.Duration) (*model, *fakeClock) {
	clk := newFakeClock(t)
	return newModel(clk, slog.New(slog.DiscardHandler), cfg, clk.Now().Add(startup)), clk
}

func upd(clk *fakeClock, off time.Duration) update {
	return update{offset: off, at: clk.Now(), source: "192.0.2.1:123", addr: netip.MustParseAddr("192.0.2.1"), stratum: 2}
}

// TestModelStates walks the states as time passes.
func TestModelStates(t *testing.T) {
	type step struct {
		advance time.Duration
		sample  bool
		want    syncState
	}
	tests := []struct {
		name  string
		local int
		steps []step
	}{
		{name: "iburst, sync, lose upstream, fall back, recover", local: 10, steps: []step{
			{0, false, stateStarting},
			{2 * time.Second, true, stateSynced},
			{14 * time.Second, false, stateSynced},
			{2 * time.Second, false, stateLocal}, // 16 s > fallback_after 15 s
			{time.Second, true, stateSynced},
		}},
		{name: "air-gapped from day one: local after the iburst", local: 10, steps: []step{
			{5 * time.Second, false, stateStarting},
			{6 * time.Second, false, stateLocal},
		}},
		{name: "local_stratum 0, never synced: unsynchronised", local: 0, steps: []step{
			{5 * time.Second, false, stateStarting},
			{6 * time.Second, false, stateUnsynced},
		}},
		{name: "local_stratum 0, synced then lost: holdover", local: 0, steps: []step{
			{time.Second, true, stateSynced},
			{20 * time.Second, false, stateHoldover},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, clk := testModel(t, modelConfig{localStratum: tt.local, fallbackAfter: 15 * time.Second}, 10*time.Second)
			for i, s := range tt.steps {
				clk.advance(s.advance)
				if s.sample {
					m.apply(upd(clk, time.Millisecond))
				}
				m.refresh()
				if got := m.params().state; got != s.want {
					t.Fatalf("step %d: state %s, want %s", i, got, s.want)
				}
			}
		})
	}
}

// TestServedTime: the served time is the system clock plus the estimated
// offset, extrapolated with the frequency.
func TestServedTime(t *testing.T) {
	m, clk := testModel(t, modelConfig{localStratum: 10, fallbackAfter: time.Hour}, 0)
	// The system clock runs 10 ppm slow: the offset grows 10 µs per second.
	base := 3 * time.Millisecond
	var first time.Time
	for i := range 20 {
		now := clk.Now()
		if i == 0 {
			first = now
		}
		off := base + time.Duration(10e-6*float64(now.Sub(first)))
		m.apply(update{offset: off, at: now, addr: netip.MustParseAddr("192.0.2.1"), stratum: 1})
		clk.advance(4 * time.Second)
	}
	ppm, _, ok := m.drift()
	if !ok || math.Abs(ppm-10) > 0.01 {
		t.Fatalf("frequency %.4f ppm (ok %v), want 10", ppm, ok)
	}
	// 1000 s later, with no new sample, the served time has moved 10 ms more.
	clk.advance(1000 * time.Second)
	now := clk.Now()
	want := base + time.Duration(10e-6*float64(now.Sub(first)))
	if got := m.params().served(now).Sub(now); (got - want).Abs() > 10*time.Microsecond {
		t.Errorf("served offset %s, want %s", got, want)
	}
}

// TestSetTime: `ntp settime` with a fake clock moves the served time, and
// the status says so.
func TestSetTime(t *testing.T) {
	cfg := testConfig()
	clk := newFakeClock(t)
	s, err := New(cfg, Deps{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	s.model.mu.Lock()
	s.model.startupUntil = clk.Now()
	s.model.mu.Unlock()
	target := clk.Now().Add(90 * time.Minute)
	if off, err := s.SetTime(target, false); err != nil || (off-90*time.Minute).Abs() > time.Millisecond {
		t.Fatalf("offset %s (%v)", off, err)
	}
	clk.advance(10 * time.Minute)
	now := clk.Now()
	if got := s.model.params().served(now).Sub(now); (got - 90*time.Minute).Abs() > time.Millisecond {
		t.Errorf("served time is %s ahead of the clock, want 1h30m", got)
	}
	st := s.Status()
	if st.ManualSetAt == nil || st.State == "" || st.Stratum != 10 || st.RefID != "LOCL" {
		t.Fatalf("status %+v", st)
	}
	if st.ManualError < 1 || st.ManualError > 1.1 {
		t.Errorf("manual error %.3f s, want ≈1 s plus 15 ppm of 10 min", st.ManualError)
	}
	for _, want := range []string{"serving local stratum 10", "time set by operator 10m0s ago"} {
		if !strings.Contains(st.Summary, want) {
			t.Errorf("summary %q lacks %q", st.Summary, want)
		}
	}
}

// TestSetTimeBesideASource: while a source is selected, settime is refused
// unless forced; forced, the state leaves "synced", the history marks the
// step, and the next upstream sample takes over and clears the operator's
// status.
func TestSetTimeBesideASource(t *testing.T) {
	m, clk := testModel(t, modelConfig{localStratum: 10, fallbackAfter: time.Minute}, 0)
	sample := func() {
		m.apply(update{offset: 0, at: clk.Now(), source: "192.0.2.1:123", addr: netip.MustParseAddr("192.0.2.1"), stratum: 1})
	}
	sample()
	if _, err := m.setTime(clk.Now().Add(time.Hour), clk.Now(), false); !errors.Is(err, ErrSourceSelected) || !strings.Contains(err.Error(), "192.0.2.1:123") {
		t.Fatalf("settime beside a selected source: %v, want ErrSourceSelected naming it", err)
	}
	if got := m.params().served(clk.Now()).Sub(clk.Now()); got.Abs() > time.Millisecond {
		t.Fatalf("a refused settime moved the served time by %s", got)
	}
	if _, err := m.setTime(clk.Now().Add(time.Hour), clk.Now(), true); err != nil {
		t.Fatalf("forced settime: %v", err)
	}
	ms := m.status()
	if ms.state == stateSynced || ms.manualAt.IsZero() {
		t.Errorf("after a forced settime: state %v, manual at %v; want not synced, set by the operator", ms.state, ms.manualAt)
	}
	if last := ms.history[len(ms.history)-1]; !last.Operator || math.Abs(last.Offset-3600) > 0.01 {
		t.Errorf("history's last point %+v, want the operator's +3600 s step", last)
	}
	clk.advance(time.Second)
	sample()
	if ms := m.status(); ms.state != stateSynced || !ms.manualAt.IsZero() {
		t.Errorf("after the next sample: state %v, manual at %v; want synced, operator's time cleared", ms.state, ms.manualAt)
	}
}

// TestDiscipline: with discipline the clock is stepped for a large offset
// during the first makestep.limit updates and slewed otherwise, and the
// served time is the system clock.
func TestDiscipline(t *testing.T) {
	m, clk := testModel(t, modelConfig{localStratum: 10, fallbackAfter: time.Minute, discipline: true,
		makeStep: MakeStep{Threshold: conf.Duration(time.Second), Limit: 3}}, 0)
	clk.steer = true
	m.apply(upd(clk, 5*time.Second))      // 1st update, large: step
	m.apply(upd(clk, 2*time.Millisecond)) // small: slew
	m.apply(upd(clk, time.Millisecond))
	m.apply(upd(clk, 3*time.Second)) // 4th: past the limit, slew even if large
	if len(clk.steps) != 1 || clk.steps[0] != 5*time.Second {
		t.Errorf("steps %v, want [5s]", clk.steps)
	}
	if len(clk.slews) != 3 {
		t.Errorf("slews %v, want 3", clk.slews)
	}
	now := clk.Now()
	if got := m.params().served(now); !got.Equal(now) {
		t.Errorf("served %v, want the system clock %v", got, now)
	}
}

func TestRegress(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var pts []OffsetPoint
	for i := range 10 {
		pts = append(pts, OffsetPoint{At: t0.Add(time.Duration(i) * 10 * time.Second), Offset: 0.001 - 5e-6*float64(i*10)})
	}
	f, sk, ok := regress(pts)
	if !ok || math.Abs(f+5e-6) > 1e-12 || sk > 1e-9 {
		t.Errorf("regress = %g, %g, %v; want -5e-6", f, sk, ok)
	}
	if _, _, ok := regress(pts[:3]); ok {
		t.Error("3 points should not be enough")
	}
}

func TestRefID(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want uint32
	}{
		{"192.168.10.10", 0xc0a80a0a},
		{"::ffff:10.0.0.1", 0x0a000001},
		{"2001:db8::1", 0}, // a hash: only checked to be non-zero and stable
	} {
		got := refIDFor(netip.MustParseAddr(tt.addr))
		if tt.want != 0 && got != tt.want {
			t.Errorf("refIDFor(%s) = %08x, want %08x", tt.addr, got, tt.want)
		}
		if got == 0 || got != refIDFor(netip.MustParseAddr(tt.addr)) {
			t.Errorf("refIDFor(%s) = %08x", tt.addr, got)
		}
	}
}
