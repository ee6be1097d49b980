package server

import (
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// freebind lets a socket bind an address that is not on the host (yet):
// IP_FREEBIND on IPv4 sockets, IPV6_FREEBIND (Linux 4.15) on IPv6 ones. It
// is best effort: a kernel without it still binds what exists.
func freebind(network, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		if strings.HasSuffix(network, "6") {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, 1)
			return
		}
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_FREEBIND, 1)
	})
}
