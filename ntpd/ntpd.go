// Package ntpd is airgapd's NTP server, the chrony replacement on the admin
// host: upstream sources → selection → clock model → responder, falling back
// to a local stratum when the upstream is gone.
//
// The packet path: socket (kernel RX timestamp) → allow ACL (others are
// silently ignored) → per-client rate limit (KoD RATE) → the responder, which
// reads the clock model and takes the transmit timestamp last. Sources are
// polled with github.com/beevik/ntp on their own schedule (iburst, then an
// interval adapting between minpoll and maxpoll), go through an 8-sample
// clock filter and chrony-like selection (interval intersection, combining),
// and feed the model. Packets are parsed and built with
// github.com/facebook/time's ntp/protocol, kernel timestamps come through its
// timestamp package.
//
// Everything that touches the host clock sits behind Clock; only
// `discipline: true` steers it. With cmdmon.listen set it also answers
// chronyc's read-only commands (tracking, sources, sourcestats, activity)
// over chrony's command protocol, for monitoring tools.
package ntpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/internal/udpbatch"
	"github.com/airgapd/airgapd/internal/udpdst"
)

// Deps is what server hands the NTP service.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	UDP     []net.PacketConn // one per listen address
	// CmdMonUDP are the cmdmon.listen sockets (chrony's command port).
	CmdMonUDP []net.PacketConn
	// NTSKE are the nts.listen sockets (TCP, NTS-KE) and NTSTLS the TLS
	// server config presenting the appliance CA's certificate; both needed
	// with nts.enabled.
	NTSKE  []net.Listener
	NTSTLS *tls.Config
	// DataDir is data_dir: the drift file and pending settime requests live
	// in DataDir/ntp. Empty: neither.
	DataDir string

	// Clock is the host clock; nil means SystemClock. Tests pass a fake.
	Clock Clock
	// Query asks an upstream server; nil means github.com/beevik/ntp.
	Query Querier
	// Resolve resolves servers: names; nil means the system resolver.
	Resolve Resolver
	// LookupAddr names clients by reverse DNS; nil means the system resolver.
	LookupAddr func(ctx context.Context, addr string) ([]string, error)
}

// Server is the NTP service.
type Server struct {
	deps    Deps
	log     *slog.Logger
	clock   Clock
	model   *model
	sources *sourceSet
	clients *clientTable
	resp    *responder
	metrics *metrics
	nts     *ntsState // nil when nts is off
	pol     atomic.Pointer[policy]
	// cmdAllow is cmdmon.allow, swapped whole on reload.
	cmdAllow atomic.Pointer[[]netip.Prefix]
	cmdMgmt  atomic.Pointer[[]netip.Prefix] // cmdmon.mgmt
	names    chan netip.Addr

	mu      sync.Mutex
	cfg     Config
	running bool
}

// New validates cfg and returns a server that will use deps' sockets. It
// opens nothing.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Clock == nil {
		deps.Clock = SystemClock{}
	}
	if deps.Query == nil {
		deps.Query = defaultQuerier(deps.Clock)
	}
	if deps.Resolve == nil {
		deps.Resolve = defaultResolver
	}
	if deps.LookupAddr == nil {
		deps.LookupAddr = net.DefaultResolver.LookupAddr
	}
	for i, pc := range append(slices.Clip(deps.UDP), deps.CmdMonUDP...) {
		if _, ok := pc.(*net.UDPConn); !ok {
			return nil, fmt.Errorf("ntp: socket %d is a %T, not UDP", i, pc)
		}
	}
	s := &Server{deps: deps, log: deps.Logger, clock: deps.Clock, cfg: cfg, names: make(chan netip.Addr, 256)}
	s.model = newModel(s.clock, s.log, modelConfigOf(cfg), s.clock.Now().Add(time.Hour))
	s.clients = newClientTable(maxClients, s.newClient)
	s.pol.Store(policyOf(cfg))
	allow, mgmt := cmdAllowOf(cfg.CmdMon), cmdMgmtOf(cfg.CmdMon)
	s.cmdAllow.Store(&allow)
	s.cmdMgmt.Store(&mgmt)
	nts, err := newNTSState(cfg, deps, s.clock.Now)
	if err != nil {
		return nil, err
	}
	s.nts = nts
	prec := measurePrecision(s.clock)
	s.resp = &responder{clock: s.clock, model: s.model, clients: s.clients, precision: prec, policy: s.pol.Load, nts: nts}
	s.sources = &sourceSet{clock: s.clock, log: s.log, query: deps.Query, resolve: deps.Resolve, model: s.model,
		precision: time.Duration(pow2(int(prec)) * float64(time.Second))}
	s.sources.configure(cfg.Servers, cfg.MinPoll, cfg.MaxPoll, cfg.FallbackAfter.D())
	s.metrics = newMetrics(s)
	s.sources.onSample = s.metrics.sample
	if deps.Metrics != nil {
		if err := s.metrics.register(deps.Metrics); err != nil {
			return nil, fmt.Errorf("ntp metrics: %w", err)
		}
	}
	return s, nil
}

func modelConfigOf(c Config) modelConfig {
	return modelConfig{localStratum: c.LocalStratum, fallbackAfter: c.FallbackAfter.D(), discipline: c.Discipline, makeStep: c.MakeStep}
}

func policyOf(c Config) *policy {
	p := &policy{rate: newRateParams(c.RateLimit), ntsRequired: c.NTS.Enabled && c.NTS.Required}
	for _, a := range c.Allow {
		if pr, err := conf.ParsePrefix(a); err == nil { // validated already
			p.allow = append(p.allow, pr)
		}
	}
	return p
}

// startupWindow is how long the start-up iburst may take before the
// server gives up waiting for an upstream and serves local_stratum.
func startupWindow(c Config) time.Duration {
	if len(c.Servers) == 0 {
		return 0
	}
	return iburstCount*min(2*time.Second, pollDuration(c.MinPoll)) + 3*time.Second
}

// Run serves NTP on deps' sockets and polls the sources until ctx ends,
// then returns nil.
func (s *Server) Run(ctx context.Context) error {
	s.mu.Lock()
	cfg := s.cfg
	s.running = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()

	s.model.mu.Lock()
	s.model.startupUntil = s.clock.Now().Add(startupWindow(cfg))
	s.model.mu.Unlock()
	s.model.refresh()
	s.loadFiles()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	conns, err := s.readers()
	if err != nil {
		return err
	}
	// One reader per descriptor (readers makes one per CPU, up to four);
	// each answers its packets at once, so the transmit timestamp stays the
	// last thing written before the send.
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serve(c)
		}()
	}
	for _, pc := range s.deps.CmdMonUDP {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveCmdMon(pc.(*net.UDPConn))
		}()
		s.log.Info("answering chronyc (cmdmon)", "listen", pc.LocalAddr().String(), "allow", strings.Join(cfg.CmdMon.Allow, ","))
	}
	if s.nts != nil {
		for _, ln := range s.deps.NTSKE {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serveKE(ln)
			}()
			s.log.Info("serving NTS-KE", "listen", ln.Addr().String(), "required", cfg.NTS.Required)
		}
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.sources.run(ctx)
	}()
	go func() {
		defer wg.Done()
		s.nameClients(ctx)
	}()
	for _, pc := range s.deps.UDP {
		s.log.Info("serving NTP", "listen", pc.LocalAddr().String(), "allow", strings.Join(cfg.Allow, ","), "servers", strings.Join(cfg.Servers, ","))
	}

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastDrift := s.clock.Now()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			s.model.refresh()
			s.applySetTime()
			if s.nts != nil {
				s.nts.rotate(s.clock.Now(), s)
			}
			if now := s.clock.Now(); now.Sub(lastDrift) >= time.Hour {
				s.saveDrift()
				lastDrift = now
			}
		}
	}
	for _, c := range conns {
		c.conn.SetReadDeadline(time.Now())
	}
	for _, pc := range s.deps.CmdMonUDP {
		pc.SetReadDeadline(time.Now())
	}
	for _, ln := range s.deps.NTSKE {
		if d, ok := ln.(interface{ SetDeadline(time.Time) error }); ok {
			d.SetDeadline(time.Now())
		}
	}
	wg.Wait()
	for _, c := range conns {
		if c.extra {
			c.conn.Close()
		}
	}
	s.saveDrift()
	return nil
}

type reader struct {
	conn     *net.UDPConn
	kernelTS bool
	extra    bool // a duplicate Run opened and closes
	dst      bool // a wildcard socket that reads each request's destination (udpdst)
}

// readers returns the connections to read from: each socket server handed
// in, plus duplicates of it so that up to GOMAXPROCS goroutines read it in
// parallel (Go serialises reads on one descriptor).
func (s *Server) readers() ([]reader, error) {
	_, system := s.clock.(SystemClock)
	n := max(1, min(4, runtime.GOMAXPROCS(0)))
	var out []reader
	for _, pc := range s.deps.UDP {
		uc := pc.(*net.UDPConn)
		kts := false
		if system {
			if err := enableRXTimestamps(uc); err != nil {
				s.log.Warn("no kernel receive timestamps; reading the clock on receipt", "listen", uc.LocalAddr().String(), "err", err)
			} else {
				kts = true
			}
		}
		if err := setDontFragment(uc); err != nil {
			s.log.Debug("replies keep the kernel's IP identification", "listen", uc.LocalAddr().String(), "err", err)
		}
		// Set before the duplicates are made; a socket option holds for
		// every descriptor of the socket.
		dst, err := udpdst.Enable(uc)
		if err != nil {
			s.log.Warn("replies on this wildcard socket leave from the route's address, not the one asked", "listen", uc.LocalAddr().String(), "err", err)
		}
		out = append(out, reader{conn: uc, kernelTS: kts, dst: dst})
		for range n - 1 {
			f, err := uc.File()
			if err != nil {
				return nil, fmt.Errorf("ntp: duplicate %s: %w", uc.LocalAddr(), err)
			}
			dup, err := net.FilePacketConn(f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("ntp: duplicate %s: %w", uc.LocalAddr(), err)
			}
			out = append(out, reader{conn: dup.(*net.UDPConn), kernelTS: kts, dst: dst, extra: true})
		}
	}
	return out, nil
}

// serve is one reader: read, respond, send, until the read deadline is
// set at stop or the socket is closed.
func (s *Server) serve(rd reader) {
	// Requests are read a batch per system call (recvmmsg), each with its
	// kernel timestamp, and the replies of a batch leave in one sendmmsg.
	// Their transmit timestamps are taken as each is built, at most a
	// batch's work (16 replies, tens of µs at full load, nothing when idle)
	// before the send; bench/ntp's chronyd -Q offsets show no loss.
	conn, kernelTS := rd.conn, rd.kernelTS
	bc, err := udpbatch.New(conn, readBatch, 1500, oobSize+udpdst.OOBSpace)
	if err != nil {
		s.log.Error("NTP reader stopped", "listen", conn.LocalAddr().String(), "err", err)
		return
	}
	v6 := false
	if a, ok := conn.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		v6 = true
	}
	out := make([]byte, 1500) // NTS replies carry cookies
	replyOOB := make([]byte, 0, udpdst.OOBSpace)
	errs := 0
	for {
		n, err := bc.Read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			s.metrics.readErrors.Inc()
			if errs++; errs > 100 {
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		errs = 0
		// Counted per batch, not per packet: one atomic add per result.
		var counts [numResults]int
		for i := range n {
			req, oob, from := bc.Packet(i)
			if !from.IsValid() {
				continue
			}
			rx, ok := time.Time{}, false
			if kernelTS {
				rx, ok = rxTimestamp(oob)
			}
			if !ok {
				rx = s.clock.Now()
			}
			// The reply leaves from the address asked (a VIP, an alias),
			// not the route's choice, when the socket is a wildcard.
			replyOOB = replyOOB[:0]
			if rd.dst {
				if d, ok := udpdst.Parse(oob); ok {
					replyOOB = udpdst.AppendSource(replyOOB, d, v6)
				}
			}
			size, res := s.resp.respond(req, rx, from.Addr(), out)
			counts[res]++
			if size > 0 {
				bc.Queue(i, out[:size], replyOOB)
			}
		}
		// A failed send loses replies the clients retry; a closed socket
		// ends the next read.
		_ = bc.Flush()
		for r, c := range counts {
			if c > 0 {
				s.metrics.results[r].Add(float64(c))
			}
		}
	}
}

// readBatch is how many requests one read may take off the socket.
const readBatch = 16

// newClient queues a new client address for a reverse-DNS name.
func (s *Server) newClient(a netip.Addr) {
	select {
	case s.names <- a:
	default: // busy: the name stays unknown
	}
}

func (s *Server) nameClients(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-s.names:
			lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			names, err := s.deps.LookupAddr(lctx, a.String())
			cancel()
			if err == nil && len(names) > 0 {
				s.clients.setName(a, strings.TrimSuffix(names[0], "."))
			}
		}
	}
}

// loadFiles reads the drift file and a settime request left while the
// server was down.
func (s *Server) loadFiles() {
	if s.deps.DataDir == "" {
		return
	}
	path := filepath.Join(Dir(s.deps.DataDir), driftFile)
	ppm, skew, err := readDrift(path)
	switch {
	case err == nil:
		s.model.setDrift(ppm, skew)
		s.log.Info("frequency from the drift file", "file", path, "ppm", ppm, "skew_ppm", skew)
	case !errors.Is(err, os.ErrNotExist):
		s.log.Warn("ignoring the drift file", "err", err)
	}
	s.applySetTime()
}

func (s *Server) saveDrift() {
	if s.deps.DataDir == "" {
		return
	}
	ppm, skew, ok := s.model.drift()
	if !ok {
		return
	}
	path := filepath.Join(Dir(s.deps.DataDir), driftFile)
	if err := writeDrift(path, ppm, skew); err != nil {
		s.log.Warn("cannot write the drift file", "file", path, "err", err)
	}
}

func (s *Server) applySetTime() {
	if s.deps.DataDir == "" {
		return
	}
	r, ok, err := takeSetTime(Dir(s.deps.DataDir))
	if err != nil {
		s.log.Warn("settime", "err", err)
	}
	if !ok {
		return
	}
	off, err := s.model.setTime(r.Time, r.WrittenAt, r.Force)
	if err != nil {
		s.log.Error("airgapd ntp settime refused", "time", r.Time, "err", err)
		return
	}
	s.log.Warn("time set by the operator (airgapd ntp settime)", "time", r.Time, "offset_from_system_clock", off)
}

// SetTime makes the served time `to` as of now, as `chronyc settime` does:
// for an admin host with no upstream at all. With discipline: true the host
// clock is stepped. While an upstream source is selected it is refused
// (ErrSourceSelected) unless force. It returns the resulting offset from
// the system clock.
func (s *Server) SetTime(to time.Time, force bool) (time.Duration, error) {
	off, err := s.model.setTime(to, s.clock.Now(), force)
	if err != nil {
		return 0, err
	}
	s.log.Warn("time set by the operator", "time", to, "offset_from_system_clock", off, "forced", force)
	return off, nil
}

// Reload applies a new config in place: allow, ratelimit, servers, polls,
// local_stratum, fallback_after and makestep. Listen addresses and
// discipline need a new instance.
func (s *Server) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Equal(cfg.Listen, s.cfg.Listen) || !slices.Equal(cfg.CmdMon.Listen, s.cfg.CmdMon.Listen) || cfg.Discipline != s.cfg.Discipline ||
		cfg.NTS.Enabled != s.cfg.NTS.Enabled || cfg.NTS.Listen != s.cfg.NTS.Listen {
		return conf.ErrRestartNeeded
	}
	s.cfg = cfg
	s.pol.Store(policyOf(cfg))
	allow, mgmt := cmdAllowOf(cfg.CmdMon), cmdMgmtOf(cfg.CmdMon)
	s.cmdAllow.Store(&allow)
	s.cmdMgmt.Store(&mgmt)
	s.model.reconfigure(modelConfigOf(cfg))
	s.sources.configure(cfg.Servers, cfg.MinPoll, cfg.MaxPoll, cfg.FallbackAfter.D())
	return nil
}
