package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/felixge/httpsnoop"

	"github.com/airgapd/airgapd/api"
)

// Per-address counters for the Nodes page. The mirror's and the
// registry's HTTP listeners are web's own routers, so web counts their
// requests itself (countClients); DNS and NTP say who asked in their
// status (the recent-queries log and top clients; the clients table),
// which the sampler folds into dnsSeen so that a node stays listed after
// it drops out of the log.

// clientCount is what one address did on one service.
type clientCount struct {
	Requests int64
	Bytes    int64
	Last     time.Time
}

// clientCounter is a bounded address → count map: past max addresses the
// one seen longest ago goes.
type clientCounter struct {
	mu  sync.Mutex
	max int
	m   map[string]*clientCount
}

func newClientCounter(max int) *clientCounter {
	return &clientCounter{max: max, m: map[string]*clientCount{}}
}

// add counts n requests and bytes for addr, seen at when.
func (c *clientCounter) add(addr string, n, bytes int64, when time.Time) {
	if addr == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[addr]
	if e == nil {
		if len(c.m) >= c.max {
			var oldest string
			for k, v := range c.m {
				if oldest == "" || v.Last.Before(c.m[oldest].Last) {
					oldest = k
				}
			}
			delete(c.m, oldest)
		}
		e = &clientCount{}
		c.m[addr] = e
	}
	e.Requests += n
	e.Bytes += bytes
	if when.After(e.Last) {
		e.Last = when
	}
}

// seen records that addr was seen at when, counting nothing.
func (c *clientCounter) seen(addr string, when time.Time) { c.add(addr, 0, 0, when) }

func (c *clientCounter) snapshot() map[string]clientCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]clientCount, len(c.m))
	for k, v := range c.m {
		out[k] = *v
	}
	return out
}

// maxClients bounds each service's per-address table.
const maxClients = 1024

// nodeCounters are the per-address tables the Nodes page joins.
type nodeCounters struct {
	mirror, registry, dns *clientCounter

	mu      sync.Mutex
	dnsMark time.Time // the newest recent-log entry folded in
}

func newNodeCounters() *nodeCounters {
	return &nodeCounters{mirror: newClientCounter(maxClients), registry: newClientCounter(maxClients), dns: newClientCounter(maxClients)}
}

// countClients counts each request of the handler for the client's
// address when counts(r) holds (the downloads, the pulls), with the
// bytes sent. httpsnoop keeps the writer's Flusher and friends.
func countClients(c *clientCounter, counts func(*http.Request) bool, now func() time.Time) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !counts(r) {
				next.ServeHTTP(w, r)
				return
			}
			m := httpsnoop.CaptureMetrics(next, w, r)
			if m.Code < 400 {
				c.add(remoteIP(r), 1, m.Written, now())
			}
		})
	}
}

// remoteIP is the request's client address without the port.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return host
}

// isDownload: a GET of a file under /repos/, /files/ or a format's mount
// (not the .repo files and metadata a node reads first: those count too,
// as a node's use of the mirror).
func isDownload(r *http.Request) bool {
	return r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/bootstrap/") && r.URL.Path != "/healthz" && r.URL.Path != "/readyz"
}

// isPull: a manifest fetched from the registry (docker pull, crictl pull).
func isPull(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/")
}

// foldDNS records who asked DNS in a status snapshot: each recent query
// not folded before (counted, at its time), each top client of the last
// minute (seen now).
func (n *nodeCounters) foldDNS(st api.StatusReport, now time.Time) {
	sv := st.Service(api.ServiceDNS)
	if sv.DNS == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	mark := n.dnsMark
	for _, e := range sv.DNS.Recent {
		if e.Time.After(n.dnsMark) {
			n.dns.add(e.Client, 1, 0, e.Time)
			if e.Time.After(mark) {
				mark = e.Time
			}
		}
	}
	n.dnsMark = mark
	for _, c := range sv.DNS.TopClients {
		n.dns.seen(c.Key, now)
	}
}
