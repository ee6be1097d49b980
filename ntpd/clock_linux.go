package ntpd

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Step implements Clock with settimeofday.
func (SystemClock) Step(d time.Duration) error {
	tv := unix.NsecToTimeval(time.Now().Add(d).UnixNano())
	if err := unix.Settimeofday(&tv); err != nil {
		return fmt.Errorf("step the clock by %s: %w", d, err)
	}
	return nil
}

// Slew implements Clock with adjtimex's single-shot offset (the kernel
// slews at up to 500 ppm, as adjtime(3) does).
func (SystemClock) Slew(d time.Duration) error {
	tx := unix.Timex{Modes: unix.ADJ_OFFSET_SINGLESHOT, Offset: d.Microseconds()}
	if _, err := unix.Adjtimex(&tx); err != nil {
		return fmt.Errorf("slew the clock by %s: %w", d, err)
	}
	return nil
}

// SetFrequency implements Clock with adjtimex ADJ_FREQUENCY (ppm scaled by
// 2^16), clamped to the kernel's ±500 ppm.
func (SystemClock) SetFrequency(ppm float64) error {
	ppm = max(-500, min(500, ppm))
	tx := unix.Timex{Modes: unix.ADJ_FREQUENCY, Freq: int64(ppm * 65536)}
	if _, err := unix.Adjtimex(&tx); err != nil {
		return fmt.Errorf("set the clock frequency to %.3f ppm: %w", ppm, err)
	}
	return nil
}

// KernelClock is what adjtimex reports about the host clock.
type KernelClock struct {
	FrequencyPPM float64 // the kernel's frequency correction
	Synced       bool    // STA_UNSYNC is clear
	MaxError     time.Duration
}

// ReadKernelClock asks the kernel about its clock without changing
// anything (adjtimex with modes = 0).
func ReadKernelClock() (KernelClock, error) {
	var tx unix.Timex // Modes == 0: read only
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return KernelClock{}, fmt.Errorf("adjtimex: %w", err)
	}
	return KernelClock{
		FrequencyPPM: float64(tx.Freq) / 65536,
		Synced:       tx.Status&unix.STA_UNSYNC == 0 && state != unix.TIME_ERROR,
		MaxError:     time.Duration(tx.Maxerror) * time.Microsecond,
	}, nil
}
