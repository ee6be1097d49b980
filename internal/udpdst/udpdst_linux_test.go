package udpdst

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// echoOnce reads one datagram on srv and answers it with the control
// message AppendSource makes, as dnsd and ntpd do.
func echoOnce(t *testing.T, srv *net.UDPConn, v6 bool) Dest {
	t.Helper()
	buf, oob := make([]byte, 512), make([]byte, OOBSpace)
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, oobn, _, from, err := srv.ReadMsgUDPAddrPort(buf, oob)
	if err != nil {
		t.Fatalf("server read: %v", err)
	}
	d, ok := Parse(oob[:oobn])
	if !ok {
		t.Fatalf("no destination in %d bytes of control messages", oobn)
	}
	if _, _, err := srv.WriteMsgUDPAddrPort(buf[:n], AppendSource(nil, d, v6), from); err != nil {
		t.Fatalf("server write: %v", err)
	}
	return d
}

// TestReplyFromAskedAddress: a client connected to a second loopback
// address (it accepts replies from that address only, as dig and chronyd
// do) gets its answer from a wildcard socket. Without the control message
// the reply would leave from the route's source and never arrive.
func TestReplyFromAskedAddress(t *testing.T) {
	tests := []struct {
		name   string
		listen string // the server's wildcard
		ask    string // the address the client sends to
		v6     bool
	}{
		{"ipv4 wildcard", "0.0.0.0:0", "127.0.0.2", false},
		{"dual-stack wildcard, ipv4 client", "[::]:0", "127.0.0.3", true},
		{"dual-stack wildcard, ipv6 client", "[::]:0", "::1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tt.listen)))
			if err != nil {
				t.Skipf("no %s here: %v", tt.listen, err)
			}
			defer srv.Close()
			on, err := Enable(srv)
			if err != nil || !on {
				t.Fatalf("Enable = %v, %v on a wildcard socket", on, err)
			}
			port := srv.LocalAddr().(*net.UDPAddr).Port
			to := netip.AddrPortFrom(netip.MustParseAddr(tt.ask), uint16(port))
			cl, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
			if err != nil {
				t.Skipf("cannot reach %s: %v", to, err)
			}
			defer cl.Close()
			if _, err := cl.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			d := echoOnce(t, srv, tt.v6)
			if d.Addr.Unmap() != to.Addr() {
				t.Errorf("destination %v, want %v", d.Addr, to.Addr())
			}
			cl.SetReadDeadline(time.Now().Add(5 * time.Second))
			b := make([]byte, 16)
			n, err := cl.Read(b)
			if err != nil || string(b[:n]) != "ping" {
				t.Fatalf("client got %q, %v: the reply did not come from %s", b[:n], err, tt.ask)
			}
		})
	}
}

func TestEnableLeavesBoundSocketsAlone(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if on, err := Enable(srv); on || err != nil {
		t.Errorf("Enable on 127.0.0.1 = %v, %v; want false, nil", on, err)
	}
}

func TestParseAndAppendRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		d    Dest
		v6   bool
		want netip.Addr // what Parse reads back from the control message
	}{
		{"ipv4", Dest{netip.MustParseAddr("10.201.0.2"), 3}, false, netip.MustParseAddr("10.201.0.2")},
		{"ipv6", Dest{netip.MustParseAddr("fd00::2"), 3}, true, netip.MustParseAddr("fd00::2")},
		{"v4-mapped on ipv6", Dest{netip.MustParseAddr("::ffff:10.201.0.2"), 3}, true, netip.MustParseAddr("::ffff:10.201.0.2")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oob := AppendSource([]byte{}, tt.d, tt.v6)
			if len(oob) == 0 {
				t.Fatal("no control message")
			}
			got, ok := Parse(oob)
			// On send the IPv4 form carries the source in Spec_dst, which
			// Parse (made for reads) does not look at; check the IPv6
			// form only, and the IPv4 one by its length.
			if tt.v6 {
				if !ok || got.Addr != tt.want {
					t.Errorf("Parse = %v, %v; want %v", got, ok, tt.want)
				}
			} else if len(oob) > OOBSpace {
				t.Errorf("control message of %d bytes is larger than OOBSpace %d", len(oob), OOBSpace)
			}
		})
	}
	for _, d := range []Dest{{}, {Addr: netip.MustParseAddr("224.0.0.1")}, {Addr: netip.MustParseAddr("255.255.255.255")}} {
		if b := AppendSource(nil, d, false); len(b) != 0 {
			t.Errorf("AppendSource(%v) = %d bytes, want none", d, len(b))
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(AppendSource(nil, Dest{netip.MustParseAddr("fd00::2"), 1}, true))
	f.Add(AppendSource(nil, Dest{netip.MustParseAddr("10.0.0.1"), 1}, false))
	f.Add([]byte{})
	f.Add(make([]byte, 17))
	f.Fuzz(func(t *testing.T, oob []byte) {
		Parse(oob) // never panics, never reads past oob
	})
}
