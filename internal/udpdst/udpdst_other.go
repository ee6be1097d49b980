//go:build !linux

package udpdst

import "net"

// OOBSpace is zero where destination addresses are not read.
var OOBSpace = 0

// Enable does nothing here: only Linux is a supported server platform.
func Enable(uc *net.UDPConn) (bool, error) { return false, nil }

// Parse finds nothing here.
func Parse(oob []byte) (Dest, bool) { return Dest{}, false }

// AppendSource appends nothing here.
func AppendSource(b []byte, d Dest, v6 bool) []byte { return b }
