// Package lockout counts failed logins per client and locks a client out
// after too many within a window, as fail2ban would: the web login and the
// registry's Basic auth both use it, so password guessing is as slow
// through either door.
package lockout

import (
	"sync"
	"time"
)

// maxClients bounds memory under a spray of source addresses: past it the
// counts start over.
const maxClients = 10000

// Lockout is safe for concurrent use.
type Lockout struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	fails map[string][]time.Time
}

// New locks a client out after max failures within window. now is the
// clock (time.Now when nil).
func New(max int, window time.Duration, now func() time.Time) *Lockout {
	if now == nil {
		now = time.Now
	}
	return &Lockout{max: max, window: window, now: now, fails: map[string][]time.Time{}}
}

// Allowed reports whether client may try a password now, and if not, how
// long until it may.
func (l *Lockout) Allowed(client string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	fs := l.fails[client]
	for len(fs) > 0 && now.Sub(fs[0]) > l.window {
		fs = fs[1:]
	}
	if len(fs) == 0 {
		delete(l.fails, client)
	} else {
		l.fails[client] = fs
	}
	if len(fs) >= l.max {
		return false, l.window - now.Sub(fs[0])
	}
	return true, 0
}

// Failed counts a failed attempt by client.
func (l *Lockout) Failed(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) > maxClients {
		clear(l.fails)
	}
	l.fails[client] = append(l.fails[client], l.now())
}

// Succeeded forgets client's failures.
func (l *Lockout) Succeeded(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, client)
}
