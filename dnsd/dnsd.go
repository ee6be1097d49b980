// Package dnsd is airgapd's DNS server, the BIND replacement on the admin
// host. A query goes through a pipeline of small handlers:
//
//	ACL (REFUSED) → local zones (AA) → refuse non-recursive clients →
//	cache (fresh / prefetch / stale) → forward zones, forwarders
//	(health-ranked, failover) or iteration from root hints
//
// Sockets come from server. UDP is read by this package's own loop with a
// bound on in-flight queries; TCP goes through miekg/dns's server, which
// handles pipelining and timeouts. miekg/dns v1 stays behind dnsd's own
// types, so moving to another DNS library is this package's work alone.
package dnsd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/humanize"
)

// Deps is what server hands the DNS service.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	UDP     []net.PacketConn // one per listen address
	TCP     []net.Listener   // one per listen address
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NameServer is this host's name (advertise.name): the NS and SOA
	// made up for local zones that have none.
	NameServer string
}

// Server is the DNS service.
type Server struct {
	deps     Deps
	log      *slog.Logger
	now      func() time.Time
	cache    *cache
	stats    *stats
	inflight chan struct{}
	work     chan udpJob // to an idle worker (unbuffered)

	mu  sync.Mutex // serialises Reload
	cfg Config

	pipe    atomic.Pointer[pipeline]
	bg      atomic.Pointer[context.Context] // Run's context, for background work
	running atomic.Bool
}

// pipeline is one config's worth of handlers, swapped whole on reload so a
// query sees either the old config or the new one, never a mix.
type pipeline struct {
	acl     acl
	limiter *limiter // nil: no rate limiting
	handler Handler
	zones   *zoneSet
	fwd     *forwarder
}

// New validates cfg and returns a server for deps' sockets. It opens nothing.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Server{
		deps:     deps,
		log:      deps.Logger,
		now:      deps.Now,
		stats:    newStats(cfg.QueryLog),
		inflight: make(chan struct{}, maxInFlight),
		work:     make(chan udpJob),
		cfg:      cfg,
	}
	s.cache = newCache(limitsFrom(cfg.Cache), s.now)
	bg := context.Background()
	s.bg.Store(&bg)
	p, err := s.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	s.pipe.Store(p)
	if deps.Metrics != nil {
		if err := deps.Metrics.Register(newCollector(s)); err != nil {
			return nil, fmt.Errorf("dns metrics: %w", err)
		}
	}
	return s, nil
}

// build assembles the pipeline for cfg; prev lends zone serials and
// upstream health so a reload does not forget them.
func (s *Server) build(cfg Config, prev *pipeline) (*pipeline, error) {
	a, err := newACL(cfg)
	if err != nil {
		return nil, err
	}
	var prevZones *zoneSet
	var prevFwd *forwarder
	if prev != nil {
		prevZones, prevFwd = prev.zones, prev.fwd
	}
	zs, err := newZoneSet(cfg.Zones, prevZones, s.deps.NameServer)
	if err != nil {
		return nil, err
	}
	var iterate Handler
	if cfg.Forward == "first" {
		if iterate, err = newIterator(cfg.RootHints, s.log); err != nil {
			return nil, err
		}
	}
	fwd, err := newForwarder(cfg, s.log, iterate, prevFwd)
	if err != nil {
		return nil, err
	}
	lim, err := newLimiter(cfg.RateLimit, s.now)
	if err != nil {
		return nil, err
	}
	ch := cacheHandler{c: s.cache, bg: func() context.Context { return *s.bg.Load() }}
	sc := scrubber{zones: zs, fwd: fwd, maxTTL: uint32(min(cfg.Cache.MaxTTL.D()/time.Second, 1<<31-1))}
	h := chain(fwd, a.middleware, zs.middleware, refuseRecursion, ch.middleware, sc.middleware)
	return &pipeline{acl: a, limiter: lim, handler: h, zones: zs, fwd: fwd}, nil
}

// Run serves DNS on the sockets until ctx ends, then returns nil.
func (s *Server) Run(ctx context.Context) error {
	s.bg.Store(&ctx)
	s.running.Store(true)
	defer s.running.Store(false)

	var wg sync.WaitGroup
	for _, pc := range s.deps.UDP {
		sock := s.newUDPSocket(pc)
		for range udpReaders() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serveUDP(ctx, sock)
			}()
		}
	}
	var tcpServers []*dns.Server
	for _, ln := range s.deps.TCP {
		srv := &dns.Server{
			Listener: ln, Handler: s.tcpHandler(ctx),
			ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, MaxTCPQueries: -1,
		}
		tcpServers = append(tcpServers, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.ActivateAndServe(); err != nil && ctx.Err() == nil {
				s.log.Error("dns tcp listener stopped", "addr", ln.Addr(), "err", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.runProbes(ctx)
	}()
	s.log.Info("serving DNS", "udp", len(s.deps.UDP), "tcp", len(s.deps.TCP))
	// Like BIND at start: tell secondaries every zone may have changed.
	s.mu.Lock()
	s.notifyChangedZones(&zoneSet{}, s.pipe.Load().zones, s.cfg.AlsoNotify)
	s.mu.Unlock()

	<-ctx.Done()
	for _, pc := range s.deps.UDP {
		pc.Close()
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for i, srv := range tcpServers {
		// A server that has not got as far as serving yet would not notice
		// a shutdown; closing its listener stops it either way.
		s.deps.TCP[i].Close()
		srv.ShutdownContext(shutdown)
	}
	wg.Wait()
	return nil
}

// runProbes re-probes dead forwarders of whichever pipeline is current.
func (s *Server) runProbes(ctx context.Context) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, p := range s.pipe.Load().fwd.pools() {
				p.probe(ctx)
			}
		}
	}
}

// Reload applies a new config in place: zones, ACLs, forwarders and cache
// limits change without closing the sockets or dropping queries. (A new
// listen address makes server rebuild the service on new sockets.)
func (s *Server) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.build(cfg, s.pipe.Load())
	if err != nil {
		return err
	}
	s.cache.setLimits(limitsFrom(cfg.Cache))
	s.stats.mu.Lock()
	s.stats.logOn = cfg.QueryLog
	s.stats.mu.Unlock()
	old := s.pipe.Swap(p)
	s.cfg = cfg
	s.notifyChangedZones(old.zones, p.zones, cfg.AlsoNotify)
	return nil
}

// FlushCache removes name (all types) from the cache, or everything when
// name is empty; it returns how many entries went.
func (s *Server) FlushCache(name string) int { return s.cache.flush(name) }

// Status is the DNS service's state (the api package defines it).
type Status = api.DNSStatus

// CacheStatus summarises the cache.
type CacheStatus = api.DNSCacheStatus

// ZoneStatus is one local zone.
type ZoneStatus = api.DNSZoneStatus

// Status reports counters, cache, upstreams and zones.
func (s *Server) Status() Status {
	st := s.stats
	p := s.pipe.Load()
	out := Status{
		State:       "down",
		QPS:         st.qps(s.now()),
		Queries:     st.queries.Load(),
		Dropped:     st.dropped.Load(),
		RateLimited: st.rateLimited.Load(),
		Malformed:   st.malformed.Load(),
		Sources:     map[string]int64{},
		Rcodes:      map[string]int64{},
		Upstreams:   p.fwd.status(),
		Recent:      st.recent(50),
	}
	if s.running.Load() {
		out.State = "up"
	}
	for _, pc := range s.deps.UDP {
		out.Listen = append(out.Listen, "udp/"+pc.LocalAddr().String())
	}
	for _, ln := range s.deps.TCP {
		out.Listen = append(out.Listen, "tcp/"+ln.Addr().String())
	}
	if out.Queries > 0 {
		out.AvgMs = float64(st.latencyNs.Load()) / float64(out.Queries) / 1e6
	}
	for i, src := range sources {
		out.Sources[src] = st.bySource[i].Load()
	}
	for rc := range maxRcode {
		if v := st.byRcode[rc].Load(); v > 0 {
			out.Rcodes[dns.RcodeToString[rc]] = v
		}
	}
	c := s.cache
	out.Cache = CacheStatus{Entries: c.len(), Max: c.limits.maxEntries, Hits: c.hits.Load(), Misses: c.misses.Load(),
		Stale: c.staleServed.Load(), Prefetches: c.prefetches.Load()}
	if n := out.Cache.Hits + out.Cache.Misses; n > 0 {
		out.Cache.HitRatio = float64(out.Cache.Hits) / float64(n)
	}
	for _, z := range p.zones.zones {
		out.Zones = append(out.Zones, ZoneStatus{Name: z.origin, Serial: z.soa.Serial, Records: len(z.records)})
	}
	sort.Slice(out.Zones, func(i, j int) bool { return out.Zones[i].Name < out.Zones[j].Name })
	st.mu.Lock()
	out.TopClients, out.TopNames = st.top.lastC, st.top.lastN
	st.mu.Unlock()
	healthy := 0
	for _, u := range out.Upstreams {
		if u.Healthy {
			healthy++
		}
	}
	out.Summary = fmt.Sprintf("%.0f q/s, %s, cache %s (%.0f%% hits), %d/%s healthy, %s",
		out.QPS, humanize.Count(int(out.Queries), "query"), humanize.Count(out.Cache.Entries, "entry"), 100*out.Cache.HitRatio,
		healthy, humanize.Count(len(out.Upstreams), "forwarder"), humanize.Count(len(out.Zones), "local zone"))
	return out
}
