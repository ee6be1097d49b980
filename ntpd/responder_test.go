package ntpd

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	ntpproto "github.com/facebook/time/ntp/protocol"

	"github.com/airgapd/airgapd/internal/conf"
)

// testResponder builds a responder over a fresh model with cfg.
func testResponder(t *testing.T, cfg Config) (*responder, *model, *fakeClock) {
	t.Helper()
	clk := newFakeClock(t)
	m := newModel(clk, slog.New(slog.DiscardHandler), modelConfigOf(cfg), clk.Now())
	pol := policyOf(cfg)
	r := &responder{clock: clk, model: m, clients: newClientTable(1024, nil), precision: -20, policy: func() *policy { return pol }}
	return r, m, clk
}

// request builds a client request: settings byte, poll, transmit time.
func request(settings byte, tx time.Time) []byte {
	p := ntpproto.Packet{Settings: settings, Poll: 6}
	p.TxTimeSec, p.TxTimeFrac = ntpproto.Time(tx)
	b, _ := p.Bytes()
	return b
}

func testConfig() Config {
	c := DefaultConfig()
	c.Allow = []string{"127.0.0.0/29", "192.168.10.0/24"}
	c.Listen = []string{"127.0.0.1:0"}
	return c
}

func TestRespond(t *testing.T) {
	client := netip.MustParseAddr("192.168.10.21")
	tests := []struct {
		name     string
		req      func(time.Time) []byte
		from     netip.Addr
		want     result
		wantVN   uint8
		wantSize int
	}{
		{name: "v4 client", req: func(t time.Time) []byte { return request(0x23, t) }, from: client, want: resAnswered, wantVN: 4, wantSize: 48},
		{name: "v3 client", req: func(t time.Time) []byte { return request(0x1b, t) }, from: client, want: resAnswered, wantVN: 3, wantSize: 48},
		{name: "v1 client", req: func(t time.Time) []byte { return request(0x0b, t) }, from: client, want: resAnswered, wantVN: 1, wantSize: 48},
		{name: "with a MAC", req: func(t time.Time) []byte { return append(request(0x23, t), make([]byte, 20)...) }, from: client, want: resAnswered, wantVN: 4, wantSize: 48},
		{name: "v4-mapped address", req: func(t time.Time) []byte { return request(0x23, t) }, from: netip.MustParseAddr("::ffff:192.168.10.21"), want: resAnswered, wantVN: 4, wantSize: 48},
		{name: "outside allow", req: func(t time.Time) []byte { return request(0x23, t) }, from: netip.MustParseAddr("127.0.0.9"), want: resDenied},
		{name: "short", req: func(t time.Time) []byte { return request(0x23, t)[:47] }, from: client, want: resInvalid},
		{name: "version 0", req: func(t time.Time) []byte { return request(0x03, t) }, from: client, want: resInvalid},
		{name: "version 5", req: func(t time.Time) []byte { return request(0x2b, t) }, from: client, want: resInvalid},
		{name: "symmetric active", req: func(t time.Time) []byte { return request(0x21, t) }, from: client, want: resMode},
		{name: "symmetric passive", req: func(t time.Time) []byte { return request(0x22, t) }, from: client, want: resMode},
		{name: "server reply", req: func(t time.Time) []byte { return request(0x24, t) }, from: client, want: resMode},
		{name: "broadcast", req: func(t time.Time) []byte { return request(0x25, t) }, from: client, want: resMode},
		{name: "mode 6 control", req: func(t time.Time) []byte { return request(0x16, t) }, from: client, want: resMode},
		{name: "mode 7 monlist", req: func(t time.Time) []byte { return request(0x17, t) }, from: client, want: resMode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, clk := testResponder(t, testConfig())
			clientTx := clk.Now().Add(-5 * time.Millisecond)
			rx := clk.Now()
			out := make([]byte, 48)
			n, res := r.respond(tt.req(clientTx), rx, tt.from, out)
			if res != tt.want || n != tt.wantSize {
				t.Fatalf("respond = %d bytes, %s; want %d bytes, %s", n, resultNames[res], tt.wantSize, resultNames[tt.want])
			}
			if n == 0 {
				return
			}
			var a ntpproto.Packet
			if err := a.UnmarshalBinary(out[:n]); err != nil {
				t.Fatal(err)
			}
			if mode, vn := a.Settings&7, a.Settings>>3&7; mode != modeServer || vn != tt.wantVN {
				t.Errorf("mode %d version %d; want 4 and %d", mode, vn, tt.wantVN)
			}
			if s, f := ntpproto.Time(clientTx); a.OrigTimeSec != s || a.OrigTimeFrac != f {
				t.Errorf("origin timestamp not echoed")
			}
			gotRx := ntpproto.Unix(a.RxTimeSec, a.RxTimeFrac)
			gotTx := ntpproto.Unix(a.TxTimeSec, a.TxTimeFrac)
			if d := gotRx.Sub(rx); d.Abs() > time.Microsecond {
				t.Errorf("receive timestamp %v, want the kernel's %v", gotRx, rx)
			}
			if !gotTx.After(gotRx) {
				t.Errorf("transmit %v not after receive %v: it must be read last", gotTx, gotRx)
			}
		})
	}
}

// TestRespondFields checks what each model state serves: stratum, leap,
// reference ID, root delay and dispersion.
func TestRespondFields(t *testing.T) {
	src := netip.MustParseAddr("10.0.0.53")
	tests := []struct {
		name      string
		local     int
		sync      bool
		after     time.Duration // time passed after the sync (or start)
		wantLeap  uint8
		wantStrat uint8
		wantRefID uint32
		wantDelay bool
	}{
		{name: "synced", local: 10, sync: true, after: time.Second, wantLeap: 0, wantStrat: 3, wantRefID: 0x0a000035, wantDelay: true},
		{name: "upstream lost past fallback_after", local: 10, sync: true, after: 20 * time.Second, wantLeap: 0, wantStrat: 10, wantRefID: refidLOCL},
		{name: "never synced, local stratum", local: 10, after: time.Second, wantLeap: 0, wantStrat: 10, wantRefID: refidLOCL},
		{name: "never synced, local_stratum 0", local: 0, after: time.Second, wantLeap: 3, wantStrat: 16, wantRefID: 0},
		{name: "lost, local_stratum 0: holdover", local: 0, sync: true, after: 20 * time.Second, wantLeap: 0, wantStrat: 3, wantRefID: 0x0a000035, wantDelay: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.LocalStratum = tt.local
			cfg.FallbackAfter = conf.Duration(10 * time.Second)
			r, m, clk := testResponder(t, cfg)
			if tt.sync {
				m.apply(update{offset: time.Millisecond, at: clk.Now(), source: "10.0.0.53:123", addr: src, stratum: 2,
					rootDelay: 20 * time.Millisecond, rootDisp: 5 * time.Millisecond})
			}
			clk.advance(tt.after)
			m.refresh()
			out := make([]byte, 48)
			n, _ := r.respond(request(0x23, clk.Now()), clk.Now(), netip.MustParseAddr("127.0.0.1"), out)
			var a ntpproto.Packet
			if err := a.UnmarshalBinary(out[:n]); err != nil {
				t.Fatal(err)
			}
			if leap := a.Settings >> 6; leap != tt.wantLeap || a.Stratum != tt.wantStrat || a.ReferenceID != tt.wantRefID {
				t.Errorf("leap %d stratum %d refid %08x; want %d %d %08x", leap, a.Stratum, a.ReferenceID, tt.wantLeap, tt.wantStrat, tt.wantRefID)
			}
			if got := a.RootDelay != 0; got != tt.wantDelay {
				t.Errorf("root delay %d, want non-zero %v", a.RootDelay, tt.wantDelay)
			}
			if tt.wantDelay && a.RootDispersion < shortFormat(5*time.Millisecond) {
				t.Errorf("root dispersion %d below the source's", a.RootDispersion)
			}
			tx := ntpproto.Unix(a.TxTimeSec, a.TxTimeFrac)
			if tt.wantStrat < 16 {
				ref := ntpproto.Unix(a.RefTimeSec, a.RefTimeFrac)
				if ref.After(tx) || tx.Sub(ref) > time.Minute {
					t.Errorf("reference time %v not just before transmit %v", ref, tx)
				}
			}
		})
	}
}

func TestRateLimitKoD(t *testing.T) {
	cfg := testConfig()
	cfg.RateLimit = RateLimit{Enabled: true, Interval: 0, Burst: 4} // 1/s, bursts of 4
	r, _, clk := testResponder(t, cfg)
	flood := netip.MustParseAddr("127.0.0.2")
	quiet := netip.MustParseAddr("127.0.0.3")
	out := make([]byte, 48)
	counts := map[result]int{}
	for range 100 { // 100 requests within ~1 ms
		_, res := r.respond(request(0x23, clk.Now()), clk.Now(), flood, out)
		counts[res]++
	}
	if counts[resAnswered] != 4 || counts[resKoD] != 1 || counts[resRateDropped] != 95 {
		t.Errorf("flood: %v; want 4 answered, 1 KoD, 95 dropped", counts)
	}
	// The KoD: stratum 0, leap 3, RATE.
	_, _ = r.respond(request(0x23, clk.Now()), clk.Now().Add(2*time.Second), flood, out)
	clk.advance(3 * time.Second)
	n, res := r.respond(request(0x23, clk.Now()), clk.Now(), flood, out)
	if res != resAnswered || n != 48 {
		t.Errorf("after a pause: %s, want answered", resultNames[res])
	}
	for i := range 10 {
		if _, res := r.respond(request(0x23, clk.Now()), clk.Now(), quiet, out); res != resAnswered && i < 4 {
			t.Errorf("quiet client request %d: %s", i, resultNames[res])
		}
		clk.advance(time.Second)
	}
	rows, total := r.clients.snapshot(10)
	if total != 2 {
		t.Fatalf("%d clients, want 2", total)
	}
	for _, c := range rows {
		if c.Address == "127.0.0.2" && (c.KoDs < 1 || c.Drops < 90) {
			t.Errorf("flood row %+v", c)
		}
		if c.Address == "127.0.0.3" && (c.Drops != 0 || c.KoDs != 0 || c.Answered != 10) {
			t.Errorf("quiet row %+v", c)
		}
	}
}

func TestKoDPacket(t *testing.T) {
	cfg := testConfig()
	cfg.RateLimit = RateLimit{Enabled: true, Interval: 3, Burst: 1}
	r, _, clk := testResponder(t, cfg)
	from := netip.MustParseAddr("127.0.0.2")
	out := make([]byte, 48)
	r.respond(request(0x23, clk.Now()), clk.Now(), from, out)
	tx := clk.Now()
	n, res := r.respond(request(0x23, tx), clk.Now(), from, out)
	if res != resKoD || n != 48 {
		t.Fatalf("second request: %s", resultNames[res])
	}
	var a ntpproto.Packet
	a.UnmarshalBinary(out[:n])
	if a.Stratum != 0 || a.Settings>>6 != 3 || a.ReferenceID != binary.BigEndian.Uint32([]byte("RATE")) {
		t.Errorf("KoD stratum %d leap %d refid %08x", a.Stratum, a.Settings>>6, a.ReferenceID)
	}
	if s, f := ntpproto.Time(tx); a.OrigTimeSec != s || a.OrigTimeFrac != f {
		t.Errorf("KoD does not echo the origin")
	}
}

func TestShortFormat(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want uint32
	}{{0, 0}, {-time.Second, 0}, {time.Second, 65536}, {time.Second / 2, 32768}, {100000 * time.Hour, 0xffffffff}} {
		if got := shortFormat(tt.d); got != tt.want {
			t.Errorf("shortFormat(%s) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

// put lays the header out exactly as facebook/time's Packet.Bytes does.
func TestPutMatchesBytes(t *testing.T) {
	a := ntpproto.Packet{Settings: 0x24, Stratum: 3, Poll: -6, Precision: -23, RootDelay: 1, RootDispersion: 2,
		ReferenceID: 3, RefTimeSec: 4, RefTimeFrac: 5, OrigTimeSec: 6, OrigTimeFrac: 7, RxTimeSec: 8, RxTimeFrac: 9,
		TxTimeSec: 10, TxTimeFrac: 0xfffffff1}
	want, err := a.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 64)
	if n := put(&a, out); n != 48 || !bytes.Equal(out[:n], want) {
		t.Fatalf("put = %d % x, want % x", n, out[:n], want)
	}
}
