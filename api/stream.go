package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Event is one line of a JSON-lines progress stream: lines with progress
// while the work runs, then one last line with the result or the error.
// The three streams fill it in as they always have:
//
//   - POST /api/v1/mirror/sync: {"progress": Progress}…, then {"done":
//     true, "results": [SyncResult…], "error": "…"} (SyncEvent)
//   - POST /api/v1/bundle/import: {"progress": ImportProgress}…, then
//     {"done": true, "result": BundleImportResult} or {"done": true,
//     "error": "…"} (BundleImportEvent)
//   - POST /api/v1/registry/import: {"complete": N, "total": M}…, then
//     {"result": RegistryImportResult} or {"error": "…"}
//     (RegistryImportEvent)
type Event[P, R any] struct {
	Progress *P `json:"progress,omitempty"`
	// Complete and Total are a registry import's bytes stored so far and
	// in all (that stream carries them flat, not under "progress").
	Complete int64 `json:"complete,omitempty"`
	Total    int64 `json:"total,omitempty"`
	// Done marks the last line of a mirror sync or bundle import.
	Done bool `json:"done,omitempty"`
	// Result ends an import; Results a mirror sync, one per repo.
	Result  *R     `json:"result,omitempty"`
	Results []R    `json:"results,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Last reports whether the event ends its stream.
func (e Event[P, R]) Last() bool { return e.Done || e.Result != nil || e.Error != "" }

// Err is the event's error, or nil.
func (e Event[P, R]) Err() error {
	if e.Error == "" {
		return nil
	}
	return errors.New(e.Error)
}

// The events of each stream.
type (
	SyncEvent           = Event[Progress, SyncResult]
	BundleImportEvent   = Event[ImportProgress, BundleImportResult]
	RegistryImportEvent = Event[struct{}, RegistryImportResult]
)

// ErrStreamEnded: the stream stopped before its last line (the server
// stopped, or the connection broke).
var ErrStreamEnded = errors.New("the stream ended without a result")

// maxEventLine bounds one line of a stream (a sync's results list every
// repo).
const maxEventLine = 16 << 20

// DecodeStream reads a progress stream, calling progress (when not nil)
// with each event before the last, and returns the last. An error wrapping
// ErrStreamEnded means the stream stopped early; a last event's own error
// is in Event.Error, not in the returned error.
func DecodeStream[P, R any](r io.Reader, progress func(Event[P, R])) (Event[P, R], error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	for sc.Scan() {
		var ev Event[P, R]
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return ev, fmt.Errorf("decode progress: %w", err)
		}
		if ev.Last() {
			return ev, nil
		}
		if progress != nil {
			progress(ev)
		}
	}
	if err := sc.Err(); err != nil {
		return Event[P, R]{}, fmt.Errorf("%w: %w", ErrStreamEnded, err)
	}
	return Event[P, R]{}, ErrStreamEnded
}

// StreamWriter writes a progress stream's lines, flushing each so the
// reader sees it at once. It is safe for concurrent use.
type StreamWriter[P, R any] struct {
	mu      sync.Mutex
	enc     *json.Encoder
	start   func()
	flush   func()
	started bool
}

// NewStreamWriter writes lines to w. start (may be nil) runs once, before
// the first line (to send the headers only when there is a stream);
// flush (may be nil) after each line.
func NewStreamWriter[P, R any](w io.Writer, start, flush func()) *StreamWriter[P, R] {
	return &StreamWriter[P, R]{enc: json.NewEncoder(w), start: start, flush: flush}
}

// Send writes one event.
func (s *StreamWriter[P, R]) Send(ev Event[P, R]) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started = true
		if s.start != nil {
			s.start()
		}
	}
	err := s.enc.Encode(ev)
	if s.flush != nil {
		s.flush()
	}
	return err
}

// Started reports whether a line was sent.
func (s *StreamWriter[P, R]) Started() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started
}
