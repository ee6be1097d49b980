package ntpd

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when told (plus 1 µs per reading, so
// that readings are distinct). Steering calls fail the test unless steer is
// set: no test may reach a real clock by accident, and an unexpected
// steering call is a bug.
type fakeClock struct {
	t     *testing.T
	mu    sync.Mutex
	now   time.Time
	steer bool
	steps []time.Duration
	slews []time.Duration
	freqs []float64
}

var _ Clock = (*fakeClock)(nil)

func newFakeClock(t *testing.T) *fakeClock {
	return &fakeClock{t: t, now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Microsecond)
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Step(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.steer {
		c.t.Errorf("unexpected Step(%s)", d)
	}
	c.steps = append(c.steps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) Slew(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.steer {
		c.t.Errorf("unexpected Slew(%s)", d)
	}
	c.slews = append(c.slews, d)
	return nil
}

func (c *fakeClock) SetFrequency(ppm float64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.steer {
		c.t.Errorf("unexpected SetFrequency(%v)", ppm)
	}
	c.freqs = append(c.freqs, ppm)
	return nil
}
