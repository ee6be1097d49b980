package web

import (
	"sync"
	"time"

	"github.com/airgapd/airgapd/api"
)

// The status web shows is Instance.Status(): the api package's typed
// report, the same /api/v1/status sends. web reads each service's detail
// from its typed field (ServiceStatus.DNS, .NTP, …) and imports no service
// package.

func (s *Server) status() api.StatusReport { return s.deps.Instance.Status() }

// valueOf is *p, or T's zero value for a service that reports no detail.
func valueOf[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// point is one sample of a plotted figure.
type point struct {
	At time.Time
	V  float64
	// Mark is a step by the operator (ntp settime), drawn as a marked
	// vertical line so a jump in the plot has its cause beside it.
	Mark bool
}

// history keeps a short in-memory record of the figures plotted where a
// service's status has no history of its own (DNS queries per second, the
// cache hit ratio): one sample per historyEvery, for historyLen samples.
type history struct {
	mu       sync.Mutex
	qps, hit []point
}

const (
	historyEvery = 5 * time.Second
	historyLen   = 360 // 30 minutes
)

func (h *history) add(now time.Time, st api.StatusReport) {
	d := st.Service(api.ServiceDNS)
	if !d.Running() {
		return
	}
	dv := valueOf(d.DNS)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.qps = appendBounded(h.qps, point{At: now, V: dv.QPS})
	h.hit = appendBounded(h.hit, point{At: now, V: dv.Cache.HitRatio * 100})
}

func appendBounded(ps []point, p point) []point {
	ps = append(ps, p)
	if len(ps) > historyLen {
		ps = append(ps[:0:0], ps[len(ps)-historyLen:]...)
	}
	return ps
}

func (h *history) dns() (qps, hit []point) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]point(nil), h.qps...), append([]point(nil), h.hit...)
}
