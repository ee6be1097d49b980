package server

import (
	"fmt"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// systemdNotifier speaks sd_notify over NOTIFY_SOCKET; without it (not
// under systemd) every call is a no-op.
type systemdNotifier struct{}

func (systemdNotifier) Notify(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}

func (systemdNotifier) WatchdogInterval() time.Duration {
	iv, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return iv
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants
// with RELOADING=1 (Type=notify-reload) to tell reloads apart.
func monotonicUsec() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "0"
	}
	return fmt.Sprint(ts.Nano() / 1000)
}
