package mirror

import (
	"fmt"
	"sync"
	"time"
)

// Progress is one repo's sync (or index) as it goes, for the progress bar,
// the UI and the status. Its JSON is what the control socket streams.
type Progress struct {
	Repo  string `json:"repo"`
	Phase string `json:"phase"` // metadata | packages | verify (gpgcheck) | publish | done | failed; an index: scan | headers | …
	// Packages is how many packages the upstream lists (after the format's
	// filters); ToFetch of them were missing here, Fetched have arrived.
	Packages int `json:"packages"`
	ToFetch  int `json:"to_fetch"`
	Fetched  int `json:"fetched"`
	// Bytes is the size of what is to be fetched; BytesDone has arrived
	// (including what an interrupted run left).
	Bytes     int64     `json:"bytes"`
	BytesDone int64     `json:"bytes_done"`
	Started   time.Time `json:"started"`
	// Rate is bytes per second over the sync so far.
	Rate float64 `json:"rate"`
}

// ImportProgress is an import into the store (a bundle) as it goes, for
// the progress bar, the UI and the status. The last one stays in the
// status after the import ends.
type ImportProgress struct {
	Bundle string `json:"bundle"` // the bundle's id
	Path   string `json:"path"`   // as given to the import
	Phase  string `json:"phase"`  // verify | publish | done | failed
	// Bytes is the size of the bundle (all parts); BytesDone of it has
	// been read and checked.
	Bytes     int64 `json:"bytes"`
	BytesDone int64 `json:"bytes_done"`
	// Blobs is how many blobs the bundle carries; BlobsDone have been
	// verified (or were verified by an interrupted run).
	Blobs     int `json:"blobs"`
	BlobsDone int `json:"blobs_done"`
	// Item is what is being published: "repo NAME", "files", "images".
	Item    string    `json:"item,omitempty"`
	Started time.Time `json:"started"`
	// Rate is bytes read per second over the import so far.
	Rate  float64 `json:"rate"`
	Error string  `json:"error,omitempty"`
}

// Summary is the import's part of a one-line summary (airgapd status):
// only while it runs.
func (p *ImportProgress) Summary() string {
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

// bytesPerSecond is done bytes over the time since started.
func bytesPerSecond(done int64, started time.Time) float64 {
	if s := time.Since(started).Seconds(); s > 0 {
		return float64(done) / s
	}
	return 0
}

// SetRate sets Rate from the bytes done so far.
func (p *Progress) SetRate() { p.Rate = bytesPerSecond(p.BytesDone, p.Started) }

// SetRate sets Rate from the bytes read so far.
func (p *ImportProgress) SetRate() { p.Rate = bytesPerSecond(p.BytesDone, p.Started) }
