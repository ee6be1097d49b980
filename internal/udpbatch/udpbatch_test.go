package udpbatch

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// TestEchoBatch: datagrams from several clients come back, each to its own
// sender, through Read, Packet, Queue and Flush, on IPv4 and IPv6.
func TestEchoBatch(t *testing.T) {
	for _, c := range []struct{ network, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}} {
		t.Run(c.network, func(t *testing.T) {
			srv, err := net.ListenPacket(c.network, c.addr)
			if err != nil {
				t.Skipf("no %s loopback: %v", c.network, err)
			}
			defer srv.Close()
			bc, err := New(srv.(*net.UDPConn), 8, 64, 64)
			if err != nil {
				t.Fatal(err)
			}
			const clients = 5
			conns := make([]net.Conn, clients)
			for i := range conns {
				if conns[i], err = net.Dial(c.network, srv.LocalAddr().String()); err != nil {
					t.Fatal(err)
				}
				defer conns[i].Close()
				fmt.Fprintf(conns[i], "hello %d", i)
			}
			srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			for seen := 0; seen < clients; {
				n, err := bc.Read()
				if err != nil {
					t.Fatalf("read after %d: %v", seen, err)
				}
				for i := range n {
					p, _, from := bc.Packet(i)
					if !from.IsValid() {
						t.Fatalf("datagram %d: no sender", i)
					}
					bc.Queue(i, append([]byte("echo "), p...), nil)
				}
				if err := bc.Flush(); err != nil {
					t.Fatal(err)
				}
				seen += n
			}
			for i, conn := range conns {
				conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 100)
				n, err := conn.Read(buf)
				if err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
				if want := fmt.Sprintf("echo hello %d", i); !bytes.Equal(buf[:n], []byte(want)) {
					t.Errorf("client %d got %q, want %q", i, buf[:n], want)
				}
			}
		})
	}
}

// TestSingleDatagrams: a query goes out with Send on a connected socket,
// the server answers with SendTo to the address the kernel reported, and
// the answer is read with a Receiver; a read deadline still ends a wait.
func TestSingleDatagrams(t *testing.T) {
	for _, c := range []struct{ name, network, listen, dial string }{
		{"ipv4", "udp4", "127.0.0.1:0", "127.0.0.1"},
		{"ipv6", "udp6", "[::1]:0", "::1"},
		{"ipv4 client of a dual-stack socket", "udp", "[::]:0", "127.0.0.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, err := net.ListenPacket(c.network, c.listen)
			if err != nil {
				t.Skipf("no %s: %v", c.listen, err)
			}
			defer srv.Close()
			bc, err := New(srv.(*net.UDPConn), 4, 64, 64)
			if err != nil {
				t.Fatal(err)
			}
			srvRaw, err := srv.(*net.UDPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			port := srv.LocalAddr().(*net.UDPAddr).Port
			conn, err := net.Dial("udp", net.JoinHostPort(c.dial, fmt.Sprint(port)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			uc := conn.(*net.UDPConn)
			rc, err := uc.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			recv, err := NewReceiver(uc, 64)
			if err != nil {
				t.Fatal(err)
			}
			if err := Send(rc, []byte("query")); err != nil {
				t.Fatal(err)
			}
			srv.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := bc.Read(); err != nil {
				t.Fatal(err)
			}
			p, _, from := bc.Packet(0)
			if string(p) != "query" {
				t.Fatalf("server read %q", p)
			}
			if err := SendTo(srvRaw, []byte("answer"), nil, from); err != nil {
				t.Fatalf("SendTo %v: %v", from, err)
			}
			uc.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := recv.Read()
			if err != nil || string(got) != "answer" {
				t.Fatalf("client read %q, %v", got, err)
			}
			uc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := recv.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read past the deadline: %v, want a deadline error", err)
			}
		})
	}
}
