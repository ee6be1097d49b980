package udpbatch

import (
	"bytes"
	"fmt"
	"net"
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
