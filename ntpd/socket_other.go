//go:build !linux

package ntpd

import "net"

// setDontFragment leaves the IP identification to the kernel here.
func setDontFragment(*net.UDPConn) error { return nil }
