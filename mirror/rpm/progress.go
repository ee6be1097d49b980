package rpm

import (
	"sync"
	"time"
)

// notifyEvery is how often a tracker hands progress to its caller (a
// progress bar, the control socket's stream) at most; the status sees
// every change.
const notifyEvery = 200 * time.Millisecond

// rated is a progress record whose rate a tracker keeps current.
type rated[P any] interface {
	*P
	setRate()
}

// tracker keeps one job's progress (a sync's or index's Progress, a bundle
// import's ImportProgress): live publishes every change to the status,
// notify gets it at most every notifyEvery, and always when forced.
type tracker[P any, PP rated[P]] struct {
	mu     sync.Mutex
	sendMu sync.Mutex // notify is called by one goroutine at a time
	p      P
	last   time.Time
	notify func(P)
	live   func(*P)
}

type (
	syncTracker   = tracker[Progress, *Progress]
	importTracker = tracker[ImportProgress, *ImportProgress]
)

func (t *tracker[P, PP]) update(force bool, f func(*P)) {
	t.mu.Lock()
	f(&t.p)
	PP(&t.p).setRate()
	p := t.p
	send := force || time.Since(t.last) >= notifyEvery
	if send {
		t.last = time.Now()
	}
	t.mu.Unlock()
	if t.live != nil {
		t.live(&p)
	}
	if send && t.notify != nil {
		t.sendMu.Lock()
		t.notify(p)
		t.sendMu.Unlock()
	}
}

// bytesPerSecond is done bytes over the time since started.
func bytesPerSecond(done int64, started time.Time) float64 {
	if s := time.Since(started).Seconds(); s > 0 {
		return float64(done) / s
	}
	return 0
}

func (p *Progress) setRate()       { p.Rate = bytesPerSecond(p.BytesDone, p.Started) }
func (p *ImportProgress) setRate() { p.Rate = bytesPerSecond(p.BytesDone, p.Started) }
