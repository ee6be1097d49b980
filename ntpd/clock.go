package ntpd

import (
	"time"
)

// Clock is the host clock as ntpd sees it. Reading it is all the responder
// and the sources need; Step, Slew and SetFrequency are used only with
// `discipline: true`. Tests hand in a fake; the real implementation
// (SystemClock) is the only code that may change the host's time.
type Clock interface {
	Now() time.Time
	// Step jumps the clock by d at once (settimeofday).
	Step(d time.Duration) error
	// Slew corrects the clock by d gradually (adjtimex single-shot offset).
	Slew(d time.Duration) error
	// SetFrequency sets the clock's frequency correction in ppm
	// (positive: the clock runs faster).
	SetFrequency(ppm float64) error
}

// SystemClock is the host clock. Its Now is time.Now; the steering methods
// call adjtimex/settimeofday and need CAP_SYS_TIME. Only ntpd with
// `discipline: true` calls them.
type SystemClock struct{}

var _ Clock = SystemClock{}

// Now returns the host's wall clock.
func (SystemClock) Now() time.Time { return time.Now() }
