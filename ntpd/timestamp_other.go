//go:build !linux

package ntpd

import (
	"errors"
	"net"
	"time"
)

// enableRXTimestamps: kernel receive timestamps are Linux-only here; the
// responder reads the clock on receipt instead.
func enableRXTimestamps(*net.UDPConn) error { return errors.ErrUnsupported }

func rxTimestamp([]byte) (time.Time, bool) { return time.Time{}, false }

const oobSize = 128
