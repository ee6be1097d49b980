package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus metrics, on the registry server
// handed in (never the global one).
type metrics struct {
	reconciles *prometheus.CounterVec
	changes    *prometheus.CounterVec
	drift      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, g *Gateway) (*metrics, error) {
	m := &metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airgapd_gateway_reconciles_total",
			Help: "Reconcile passes, by result (ok, error, plan).",
		}, []string{"result"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airgapd_gateway_changes_total",
			Help: "Changes made to the kernel, by cause (start, reload, timer, drift, cli).",
		}, []string{"cause"}),
		drift: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airgapd_gateway_drift_events_total",
			Help: "Times a periodic reconcile found rules or sysctls changed by someone else and repaired them.",
		}),
	}
	for _, c := range []prometheus.Collector{m.reconciles, m.changes, m.drift, newStatusCollector(g)} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// statusCollector exports the counters of the latest Status at scrape time.
type statusCollector struct {
	g                                        *Gateway
	packets, bytes, forward, pending, inSync *prometheus.Desc
}

func newStatusCollector(g *Gateway) statusCollector {
	rule := []string{"table", "chain", "rule"}
	return statusCollector{
		g: g,
		packets: prometheus.NewDesc("airgapd_gateway_rule_packets_total",
			"Packets matched by each of airgapd's rules, as iptables -L -v counts them (reset when the rule is re-created).", rule, nil),
		bytes: prometheus.NewDesc("airgapd_gateway_rule_bytes_total",
			"Bytes matched by each of airgapd's rules.", rule, nil),
		forward: prometheus.NewDesc("airgapd_gateway_ip_forward",
			"net.ipv4.ip_forward as last read (1 on, 0 off).", nil, nil),
		pending: prometheus.NewDesc("airgapd_gateway_pending_changes",
			"Changes apply would still make (plan mode: the plan; apply mode: what failed).", nil, nil),
		inSync: prometheus.NewDesc("airgapd_gateway_in_sync",
			"1 when the last reconcile left the kernel as the config asks.", nil, nil),
	}
}

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.packets, c.bytes, c.forward, c.pending, c.inSync} {
		ch <- d
	}
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.Status()
	seen := map[[3]string]bool{}
	for _, r := range st.Rules {
		k := [3]string{r.Table, r.Chain, r.Rule}
		if seen[k] { // a duplicate someone added; the next reconcile removes it
			continue
		}
		seen[k] = true
		ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(r.Packets), r.Table, r.Chain, r.Rule)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(r.Bytes), r.Table, r.Chain, r.Rule)
	}
	switch st.IPForward {
	case "1":
		ch <- prometheus.MustNewConstMetric(c.forward, prometheus.GaugeValue, 1)
	case "0":
		ch <- prometheus.MustNewConstMetric(c.forward, prometheus.GaugeValue, 0)
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(len(st.Pending)))
	inSync := 0.0
	if st.State == StateApplied && len(st.Pending) == 0 {
		inSync = 1
	}
	ch <- prometheus.MustNewConstMetric(c.inSync, prometheus.GaugeValue, inSync)
}
