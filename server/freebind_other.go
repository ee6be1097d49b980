//go:build !linux

package server

import "syscall"

// freebind does nothing where IP_FREEBIND does not exist.
func freebind(string, string, syscall.RawConn) error { return nil }
