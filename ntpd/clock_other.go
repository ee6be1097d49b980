//go:build !linux

package ntpd

import (
	"errors"
	"time"
)

// Step is not supported off Linux.
func (SystemClock) Step(time.Duration) error { return errors.ErrUnsupported }

// Slew is not supported off Linux.
func (SystemClock) Slew(time.Duration) error { return errors.ErrUnsupported }

// SetFrequency is not supported off Linux.
func (SystemClock) SetFrequency(float64) error { return errors.ErrUnsupported }

// KernelClock is what the kernel reports about the host clock.
type KernelClock struct {
	FrequencyPPM float64
	Synced       bool
	MaxError     time.Duration
}

// ReadKernelClock is not supported off Linux.
func ReadKernelClock() (KernelClock, error) { return KernelClock{}, errors.ErrUnsupported }
