package goproxy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus collectors: counters kept as syncs
// and requests happen, gauges read from Status when scraped.
type metrics struct {
	p          *Proxy
	syncs      *prometheus.CounterVec
	downloaded prometheus.Counter
	requests   *prometheus.CounterVec

	modules, versions, bytes, lastSync, lastOK *prometheus.Desc
}

func newMetrics(p *Proxy) *metrics {
	return &metrics{
		p:          p,
		syncs:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_goproxy_syncs_total", Help: "Go module syncs, by result (ok, failed)."}, []string{"result"}),
		downloaded: prometheus.NewCounter(prometheus.CounterOpts{Name: "airgapd_goproxy_downloaded_bytes_total", Help: "Bytes fetched from the upstream GOPROXY."}),
		requests:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_goproxy_requests_total", Help: "GOPROXY and checksum database requests served, by status code."}, []string{"code"}),
		modules:    prometheus.NewDesc("airgapd_goproxy_modules", "Module paths in the published tree.", nil, nil),
		versions:   prometheus.NewDesc("airgapd_goproxy_versions", "Module versions with a zip in the published tree.", nil, nil),
		bytes:      prometheus.NewDesc("airgapd_goproxy_bytes", "Size of the published module zips.", nil, nil),
		lastSync:   prometheus.NewDesc("airgapd_goproxy_last_sync_timestamp_seconds", "When the last sync began (Unix time).", nil, nil),
		lastOK:     prometheus.NewDesc("airgapd_goproxy_last_sync_success", "1 when the last sync succeeded, 0 when it failed.", nil, nil),
	}
}

func (x *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{x.syncs, x.downloaded, x.requests, x} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (x *metrics) synced(res Result) {
	result := "ok"
	if !res.OK {
		result = "failed"
	}
	x.syncs.WithLabelValues(result).Inc()
	x.downloaded.Add(float64(max(res.Downloaded, 0)))
}

func (x *metrics) request(code int) { x.requests.WithLabelValues(strconv.Itoa(code)).Inc() }

func (x *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{x.modules, x.versions, x.bytes, x.lastSync, x.lastOK} {
		ch <- d
	}
}

func (x *metrics) Collect(ch chan<- prometheus.Metric) {
	st := x.p.Status()
	ch <- prometheus.MustNewConstMetric(x.modules, prometheus.GaugeValue, float64(st.Modules))
	ch <- prometheus.MustNewConstMetric(x.versions, prometheus.GaugeValue, float64(st.Versions))
	ch <- prometheus.MustNewConstMetric(x.bytes, prometheus.GaugeValue, float64(st.Bytes))
	if !st.LastSync.IsZero() {
		ch <- prometheus.MustNewConstMetric(x.lastSync, prometheus.GaugeValue, float64(st.LastSync.UnixNano())/1e9)
		ok := 0.0
		if st.LastResult == "ok" {
			ok = 1
		}
		ch <- prometheus.MustNewConstMetric(x.lastOK, prometheus.GaugeValue, ok)
	}
}
