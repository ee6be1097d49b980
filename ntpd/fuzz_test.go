package ntpd

import (
	"net/netip"
	"testing"
	"time"

	ntpproto "github.com/facebook/time/ntp/protocol"
	"github.com/facebook/time/ntp/protocol/nts"
	"github.com/prometheus/client_golang/prometheus"
)

// FuzzRequest drives the whole packet path after the read (ACL, rate
// limit, parse, reply) with arbitrary bytes from an allowed or a denied
// address. Invariants: no panic; a reply only to a client-mode request of
// version 1–4 from an allowed address; every reply is 48 bytes in server
// mode with the request's transmit timestamp as its origin. The seed
// corpus in testdata/fuzz/FuzzRequest runs with every `go test`.
func FuzzRequest(f *testing.F) {
	f.Add(request(0x23, time.Unix(1e9, 0)), uint8(1))
	f.Add(request(0x1b, time.Unix(2e9, 5)), uint8(9))
	f.Add(request(0x17, time.Time{}), uint8(1))
	f.Add([]byte{0x16, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(1))
	f.Add(append(request(0xe3, time.Unix(3e9, 0)), make([]byte, 72)...), uint8(2))
	f.Fuzz(func(t *testing.T, req []byte, last uint8) {
		cfg := testConfig() // allows 127.0.0.0/29
		cfg.RateLimit = RateLimit{Enabled: true, Interval: -2, Burst: 2}
		r, _, clk := testResponder(t, cfg)
		from := netip.AddrFrom4([4]byte{127, 0, 0, last})
		out := make([]byte, 48)
		for range 4 { // past the burst: the KoD path too
			n, res := r.respond(req, clk.Now(), from, out)
			if n == 0 {
				continue
			}
			if n != 48 || (res != resAnswered && res != resKoD) {
				t.Fatalf("%d-byte reply with result %s", n, resultNames[res])
			}
			if !(last < 8) {
				t.Fatalf("reply to %s, outside allow", from)
			}
			if req[0]&7 != modeClient || vnOf(req) < 1 || vnOf(req) > 4 {
				t.Fatalf("reply to mode %d version %d", req[0]&7, vnOf(req))
			}
			var a ntpproto.Packet
			if err := a.UnmarshalBinary(out); err != nil {
				t.Fatal(err)
			}
			var q ntpproto.Packet
			q.UnmarshalBinary(req[:48])
			if a.Settings&7 != modeServer || a.OrigTimeSec != q.TxTimeSec || a.OrigTimeFrac != q.TxTimeFrac {
				t.Fatalf("reply settings %#x origin %d.%d, request tx %d.%d", a.Settings, a.OrigTimeSec, a.OrigTimeFrac, q.TxTimeSec, q.TxTimeFrac)
			}
		}
	})
}

func vnOf(req []byte) uint8 { return req[0] >> 3 & 7 }

// FuzzNTSRequest drives the packet path with NTS on: a valid NTS request
// (cookie from the server's ring) and variations of it. Invariants: no
// panic; a reply is a server-mode packet; an authenticated reply echoes
// the unique identifier first.
func FuzzNTSRequest(f *testing.F) {
	ring, err := openKeyRing("", time.Now)
	if err != nil {
		f.Fatal(err)
	}
	key := make([]byte, 32)
	cookie, _ := ring.SealCookie(ntpproto.AEADAESSIVCMAC256, key, key)
	uid := make([]byte, 32)
	valid, err := nts.BuildNTSRequest(ntpproto.Packet{Settings: 0x23}, nts.RequestParams{AEAD: ntpproto.AEADAESSIVCMAC256, C2S: key, Cookie: cookie, UniqueID: uid, Placeholders: 2})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-8])
	f.Add(append(request(0x23, time.Unix(1e9, 0)), 0x01, 0x04, 0x00, 0x04))
	f.Add(append(request(0x23, time.Unix(1e9, 0)), 0x04, 0x04, 0xff, 0xfc))
	f.Fuzz(func(t *testing.T, req []byte) {
		r, _, clk := testResponder(t, testConfig())
		r.nts = &ntsState{keys: ring, failures: map[string]uint64{}, failMetric: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"reason"})}
		out := make([]byte, 1500)
		n, _ := r.respond(req, clk.Now(), netip.MustParseAddr("127.0.0.1"), out)
		if n == 0 {
			return
		}
		var a ntpproto.Packet
		if err := a.UnmarshalBinary(out[:n]); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		if a.Settings&7 != modeServer {
			t.Fatalf("reply mode %d", a.Settings&7)
		}
		if len(a.ExtensionFields) > 0 && a.ExtensionFields[0].Type != ntpproto.UniqueIdentifier {
			t.Fatalf("NTS reply starts with %v", a.ExtensionFields[0].Type)
		}
	})
}
