package server

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A socket server holds must outlive every conn it hands out (reload builds
// the next instance on a new duplicate, then stops the old one), and must
// not sit in Go's poller itself.
func TestSocketSetHandsOutWorkingDuplicates(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		l    listenAddr
	}{
		{"udp", listenAddr{network: "udp", addr: "127.0.0.1:0", path: "dns.listen"}},
		{"tcp", listenAddr{network: "tcp", addr: "127.0.0.1:0", path: "web.listen"}},
		{"unix", listenAddr{network: "unix", addr: filepath.Join(dir, "t.sock"), path: "control"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSocketSet()
			defer s.closeAll()
			opened, err := s.open([]listenAddr{tt.l})
			if err != nil {
				t.Fatal(err)
			}
			k := opened[0]
			// Two instances in turn, as across a reload: the first one's
			// close must leave the socket serving for the second.
			for round := range 2 {
				var handed io.Closer
				if tt.l.network == "udp" {
					pc, err := s.packetConn(k)
					if err != nil {
						t.Fatal(err)
					}
					echoUDP(t, pc, s.boundAddr(k))
					handed = pc
				} else {
					ln, err := s.listener(k)
					if err != nil {
						t.Fatal(err)
					}
					echoStream(t, ln, tt.l.network, s.boundAddr(k))
					handed = ln
				}
				polled := polledFDs(t)
				if fd := connFD(t, handed.(syscall.Conn)); runtime.GOOS == "linux" && !polled[fd] {
					t.Fatalf("round %d: the handed-out descriptor %d is not seen in the poller: polledFDs is broken", round, fd)
				}
				if polled[int(s.files[k])] {
					t.Errorf("round %d: server's own descriptor %d is registered in Go's poller; every packet would wake it", round, s.files[k])
				}
				handed.Close()
			}
			s.close(opened)
			if tt.l.network == "unix" {
				if _, err := os.Stat(tt.l.addr); !os.IsNotExist(err) {
					t.Errorf("socket file left after close: %v", err)
				}
			}
		})
	}
}

func echoUDP(t *testing.T, pc net.PacketConn, addr string) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, from, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read on handed-out conn: %q, %v", buf[:n], err)
	}
	if _, err := pc.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("reply: %q, %v", buf[:n], err)
	}
}

func echoStream(t *testing.T, ln net.Listener, network, addr string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, err = c.Write([]byte("hello\n"))
			c.Close()
		}
		done <- err
	}()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "hello\n" {
		t.Fatalf("read from handed-out listener: %q, %v", line, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// polledFDs lists the descriptors this process's epoll sets watch, from
// /proc/self/fdinfo ("tfd:" lines); empty where there is no /proc.
func polledFDs(t *testing.T) map[int]bool {
	t.Helper()
	polled := map[int]bool{}
	infos, _ := filepath.Glob("/proc/self/fdinfo/*")
	for _, p := range infos {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "tfd:" {
				if fd, err := strconv.Atoi(f[1]); err == nil {
					polled[fd] = true
				}
			}
		}
	}
	return polled
}

func connFD(t *testing.T, c syscall.Conn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	rc.Control(func(u uintptr) { fd = int(u) })
	return fd
}
