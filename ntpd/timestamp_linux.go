package ntpd

import (
	"net"
	"time"

	"github.com/facebook/time/timestamp"
)

// enableRXTimestamps asks the kernel to timestamp every packet the socket
// receives (SO_TIMESTAMPING with software RX stamps, via facebook/time's
// timestamp helpers). It is a socket option, so it holds for every
// duplicate of the descriptor.
func enableRXTimestamps(conn *net.UDPConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = timestamp.EnableSWTimestampsRx(int(fd)) }); err != nil {
		return err
	}
	return serr
}

// rxTimestamp returns the kernel's receive timestamp from a read's control
// messages.
func rxTimestamp(oob []byte) (time.Time, bool) {
	t, err := timestamp.ReadRXTimestamp(oob, len(oob))
	return t, err == nil
}

// oobSize is the control-message buffer a read needs for the timestamp.
const oobSize = timestamp.ControlSizeBytes
