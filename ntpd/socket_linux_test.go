package ntpd

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRepliesDontFragment: once serving, the IPv4 socket sends with DF
// and the interface MTU (so the kernel skips the IP ID hash per reply).
func TestRepliesDontFragment(t *testing.T) {
	s := startServer(t, loopbackConfig(), Deps{})
	if _, err := query(s.addr, ""); err != nil { // answered: the readers are set up
		t.Fatal(err)
	}
	rc, err := s.deps.UDP[0].(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var mode int
	var serr error
	rc.Control(func(fd uintptr) { mode, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER) })
	if serr != nil || mode != unix.IP_PMTUDISC_PROBE {
		t.Errorf("IP_MTU_DISCOVER %d (%v), want IP_PMTUDISC_PROBE (%d)", mode, serr, unix.IP_PMTUDISC_PROBE)
	}
}
