// Package placeholder is the honest stand-in for a service whose own issue
// has not landed yet: it holds the service's validated config, keeps the
// sockets server handed it open (so port clashes show up today), answers
// nothing on them, and says "not built yet" in its status. It pretends no
// behaviour.
package placeholder

import (
	"context"
	"sync"
)

// NotBuilt is the state every placeholder reports.
const NotBuilt = "not built yet"

// Service is embedded by a not-yet-built service to give it Run, Reload and
// the config it holds.
type Service[C any] struct {
	mu  sync.Mutex
	cfg C
}

// New returns a placeholder holding cfg.
func New[C any](cfg C) Service[C] { return Service[C]{cfg: cfg} }

// Run blocks until ctx ends, then returns nil: there is nothing to serve yet.
func (s *Service[C]) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Reload keeps the new config; nothing runs that could use it.
func (s *Service[C]) Reload(cfg C) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
	return nil
}

// Config returns the config held.
func (s *Service[C]) Config() C {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}
