package mirror

import (
	"fmt"
	"sync"
	"time"

	"github.com/airgapd/airgapd/api"
)

// Progress is one repo's sync (or index) as it goes, and ImportProgress an
// import into the store (a bundle): the api package's types, so that what
// the store tracks is what the status and the control socket's streams
// carry, with no copy between them.
type (
	Progress       = api.Progress
	ImportProgress = api.ImportProgress
)

// ImportSummary is an import's part of a one-line summary (airgapd
// status): only while it runs.
func ImportSummary(p *ImportProgress) string {
	if p == nil || (p.Phase != "verify" && p.Phase != "publish") {
		return ""
	}
	if p.Phase == "publish" {
		return ", importing a bundle: publishing " + p.Item
	}
	return fmt.Sprintf(", importing a bundle: %d%% verified", p.BytesDone*100/max(p.Bytes, 1))
}

// notifyEvery is how often a tracker hands progress to its caller (a
// progress bar, the control socket's stream) at most; the status sees
// every change.
const notifyEvery = 200 * time.Millisecond

// Rated is a progress record whose rate a tracker keeps current.
type Rated[P any] interface {
	*P
	SetRate()
}

// Tracker keeps one job's progress (a sync's Progress, an import's
// ImportProgress): live publishes every change to the status, notify gets
// it at most every 200ms, and always when forced.
type Tracker[P any, PP Rated[P]] struct {
	mu     sync.Mutex
	sendMu sync.Mutex // notify is called by one goroutine at a time
	p      P
	last   time.Time
	notify func(P)
	live   func(*P)
}

// NewTracker starts tracking from start; notify and live may be nil.
func NewTracker[P any, PP Rated[P]](start P, notify func(P), live func(*P)) *Tracker[P, PP] {
	return &Tracker[P, PP]{p: start, notify: notify, live: live}
}

// Update changes the progress with f; force hands it to notify whatever
// the time since the last.
func (t *Tracker[P, PP]) Update(force bool, f func(*P)) {
	t.mu.Lock()
	f(&t.p)
	PP(&t.p).SetRate()
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
