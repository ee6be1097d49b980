package mirror

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
)

// Book is what every format service keeps about itself the same way: its
// config, whether Run is up, each repo's last recorded run (its store's
// state.json, read once and then kept) and the runs under way. S is the
// format's state.json type. The format services embed a *Book so the
// lock, the maps and their rules are written once.
type Book[C any, S any] struct {
	mu       sync.Mutex
	cfg      C
	running  bool
	states   map[string]S
	progress map[string]Progress
	store    func(name string) Store
}

// NewBook returns a book holding cfg; store names each repo's folder,
// where State reads state.json from.
func NewBook[C any, S any](cfg C, store func(name string) Store) *Book[C, S] {
	return &Book[C, S]{cfg: cfg, states: map[string]S{}, progress: map[string]Progress{}, store: store}
}

// Config is the config in effect.
func (b *Book[C, S]) Config() C {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg
}

// SetConfig makes cfg the config for the next request and the next run.
func (b *Book[C, S]) SetConfig(cfg C) {
	b.mu.Lock()
	b.cfg = cfg
	b.mu.Unlock()
}

// SetRunning records whether the service's Run is under way.
func (b *Book[C, S]) SetRunning(up bool) {
	b.mu.Lock()
	b.running = up
	b.mu.Unlock()
}

// ServiceState is "up" while Run is under way, "down" otherwise.
func (b *Book[C, S]) ServiceState() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running {
		return "up"
	}
	return "down"
}

// State is repo name's last recorded run: state.json, read the first time
// and kept after (runs record theirs with SetState).
func (b *Book[C, S]) State(name string) S {
	b.mu.Lock()
	st, ok := b.states[name]
	b.mu.Unlock()
	if ok {
		return st
	}
	b.store(name).ReadState(&st) // missing or damaged: the zero state
	b.mu.Lock()
	b.states[name] = st
	b.mu.Unlock()
	return st
}

// SetState records repo name's run (the caller has written state.json).
func (b *Book[C, S]) SetState(name string, st S) {
	b.mu.Lock()
	b.states[name] = st
	b.mu.Unlock()
}

// SetProgress records the run under way for repo name; nil: it ended.
func (b *Book[C, S]) SetProgress(name string, p *Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p == nil {
		delete(b.progress, name)
		return
	}
	b.progress[name] = *p
}

// Progress is a copy of the run under way for repo name, or nil.
func (b *Book[C, S]) Progress(name string) *Progress {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.progress[name]
	if !ok {
		return nil
	}
	return &p
}

// RunSummary is the tail of a status summary: ", 2 syncing, 1 last sync
// failed", or "" when nothing is under way or failed.
func RunSummary(syncing, failed int) string {
	s := ""
	if syncing > 0 {
		s += fmt.Sprintf(", %d syncing", syncing)
	}
	if failed > 0 {
		s += fmt.Sprintf(", %d last sync failed", failed)
	}
	return s
}

// Advertised is how nodes reach a service's listener, for the URLs it
// writes into .repo and .sources files.
type Advertised struct {
	Name      string   // advertise.name
	Addresses []string // advertise.addresses
	Listen    string   // the listener's address (its real port when the config said 0)
}

// BaseURL is how nodes reach the listener: the advertised name, else the
// first advertised address, else the host the client asked for; with the
// listen port (the client's when the listener's is unknown) unless it is 80.
func (a Advertised) BaseURL(r *http.Request) string {
	host := a.Name
	if host == "" && len(a.Addresses) > 0 {
		host = a.Addresses[0]
	}
	reqHost, reqPort, err := net.SplitHostPort(r.Host)
	if err != nil {
		reqHost, reqPort = r.Host, ""
	}
	if host == "" {
		host = reqHost
	}
	port := reqPort
	if _, p, err := net.SplitHostPort(a.Listen); err == nil && p != "0" {
		port = p
	}
	if n, err := strconv.Atoi(port); err == nil && n > 0 && port != "80" {
		return "http://" + net.JoinHostPort(host, port)
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = "[" + host + "]"
	}
	return "http://" + host
}
