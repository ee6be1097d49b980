package ntpd

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the NTP service's Prometheus collectors, registered on the
// registry server passes in (never the global one).
type metrics struct {
	s          *Server
	requests   *prometheus.CounterVec
	results    [numResults]prometheus.Counter
	readErrors prometheus.Counter
	// cmdRequests counts chronyc commands (cmdmon) by outcome.
	cmdRequests *prometheus.CounterVec
	samples     *prometheus.CounterVec
	gauges      []prometheus.Collector
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		s: s,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airgapd_ntp_requests_total",
			Help: "NTP packets received, by what became of them: answered, kod (KoD RATE sent), ratelimited (dropped), denied (outside allow), invalid, ignored_mode (control, private, symmetric, broadcast), unauthenticated (plain, refused by nts.required), nts_failed (NTS that does not verify), nts_nak (cookie not known: KoD NTSN).",
		}, []string{"result"}),
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airgapd_ntp_read_errors_total", Help: "Errors reading from the NTP sockets.",
		}),
		cmdRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airgapd_ntp_cmdmon_requests_total",
			Help: "chronyc command packets (cmdmon), by outcome: answered, unauthorised (501 Not authorised), error (another error status), invalid (dropped), denied (outside cmdmon.allow, dropped).",
		}, []string{"result"}),
		samples: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airgapd_ntp_source_polls_total",
			Help: "Polls of upstream sources, by source and result (sample: a usable sample; none: no reply or an unusable one).",
		}, []string{"source", "result"}),
	}
	for r := range numResults {
		m.results[r] = m.requests.WithLabelValues(resultNames[r])
	}
	gauge := func(name, help string, f func(*refParams) float64) {
		m.gauges = append(m.gauges, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return f(s.model.params()) }))
	}
	gauge("airgapd_ntp_stratum", "Stratum served (16: unsynchronised).", func(p *refParams) float64 { return float64(p.stratum) })
	gauge("airgapd_ntp_leap", "Leap indicator served (3: unsynchronised).", func(p *refParams) float64 { return float64(p.leap) })
	gauge("airgapd_ntp_synced", "1 while serving a fresh upstream reference.", func(p *refParams) float64 {
		if p.state == stateSynced {
			return 1
		}
		return 0
	})
	gauge("airgapd_ntp_local", "1 while serving the local clock at local_stratum.", func(p *refParams) float64 {
		if p.state == stateLocal {
			return 1
		}
		return 0
	})
	gauge("airgapd_ntp_offset_seconds", "Served time minus the system clock.", func(p *refParams) float64 {
		now := s.clock.Now()
		return p.served(now).Sub(now).Seconds()
	})
	gauge("airgapd_ntp_root_delay_seconds", "Root delay served.", func(p *refParams) float64 { return p.rootDelay.Seconds() })
	gauge("airgapd_ntp_root_dispersion_seconds", "Root dispersion served now.", func(p *refParams) float64 { return p.rootDispAt(s.clock.Now()).Seconds() })
	gauge("airgapd_ntp_frequency_ppm", "Estimated frequency offset of the system clock, ppm (positive: it runs slow).", func(p *refParams) float64 { return p.freq * 1e6 })
	m.gauges = append(m.gauges, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "airgapd_ntp_clients", Help: "Client addresses in the clients table.",
	}, func() float64 {
		_, n := s.clients.snapshot(0)
		return float64(n)
	}))
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	cs := append([]prometheus.Collector{m.requests, m.readErrors, m.cmdRequests, m.samples, sourceCollector{m.s}}, m.gauges...)
	if m.s.nts != nil {
		cs = append(cs, m.s.nts.collectors()...)
	}
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) sample(src string, ok bool) {
	res := "none"
	if ok {
		res = "sample"
	}
	m.samples.WithLabelValues(src, res).Inc()
}

// sourceCollector reports each source's state at scrape time, so removed
// sources disappear with them.
type sourceCollector struct{ s *Server }

var (
	descReach    = prometheus.NewDesc("airgapd_ntp_source_reach", "Reach register of the source (255: the last 8 polls answered).", []string{"source", "server"}, nil)
	descOffset   = prometheus.NewDesc("airgapd_ntp_source_offset_seconds", "Last sample's offset: source minus system clock.", []string{"source", "server"}, nil)
	descDelay    = prometheus.NewDesc("airgapd_ntp_source_delay_seconds", "Last sample's round-trip delay.", []string{"source", "server"}, nil)
	descJitter   = prometheus.NewDesc("airgapd_ntp_source_jitter_seconds", "Jitter of the clock filter's samples.", []string{"source", "server"}, nil)
	descSelected = prometheus.NewDesc("airgapd_ntp_source_selected", "1 for the system peer (^*), 0.5 combined (^+), 0 otherwise.", []string{"source", "server"}, nil)
)

func (c sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReach, descOffset, descDelay, descJitter, descSelected} {
		ch <- d
	}
}

func (c sourceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.s.sources.status() {
		var reach uint64
		for _, d := range st.Reach {
			reach = reach*8 + uint64(d-'0')
		}
		sel := 0.0
		switch st.Mark {
		case "*":
			sel = 1
		case "+":
			sel = 0.5
		}
		l := []string{st.Address, st.Server}
		ch <- prometheus.MustNewConstMetric(descReach, prometheus.GaugeValue, float64(reach), l...)
		ch <- prometheus.MustNewConstMetric(descOffset, prometheus.GaugeValue, st.Offset, l...)
		ch <- prometheus.MustNewConstMetric(descDelay, prometheus.GaugeValue, st.Delay, l...)
		ch <- prometheus.MustNewConstMetric(descJitter, prometheus.GaugeValue, st.Jitter, l...)
		ch <- prometheus.MustNewConstMetric(descSelected, prometheus.GaugeValue, sel, l...)
	}
}
