package pypi

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the index's Prometheus collectors: counters kept as syncs,
// uploads and requests happen, gauges read from Status when scraped.
type metrics struct {
	x          *Index
	syncs      *prometheus.CounterVec
	downloaded prometheus.Counter
	damaged    prometheus.Counter
	uploads    *prometheus.CounterVec
	requests   *prometheus.CounterVec

	projects, files, bytes *prometheus.Desc
}

func newMetrics(x *Index) *metrics {
	return &metrics{
		x:          x,
		syncs:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_pypi_syncs_total", Help: "PyPI index syncs, by result (ok, failed)."}, []string{"result"}),
		downloaded: prometheus.NewCounter(prometheus.CounterOpts{Name: "airgapd_pypi_downloaded_bytes_total", Help: "Bytes fetched from the PyPI upstreams."}),
		damaged:    prometheus.NewCounter(prometheus.CounterOpts{Name: "airgapd_pypi_fetch_failures_total", Help: "Files a sync could not fetch or verify."}),
		uploads:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_pypi_uploads_total", Help: "Uploads (twine), by result (ok, refused, unauthorized)."}, []string{"result"}),
		requests:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_pypi_requests_total", Help: "HTTP requests served, by kind (simple, files, upload) and status code."}, []string{"kind", "code"}),
		projects:   prometheus.NewDesc("airgapd_pypi_projects", "Projects in the published tree (index: synced, local: uploaded).", []string{"tree"}, nil),
		files:      prometheus.NewDesc("airgapd_pypi_files", "Files in the published tree.", []string{"tree"}, nil),
		bytes:      prometheus.NewDesc("airgapd_pypi_bytes", "Size of the published tree's files.", []string{"tree"}, nil),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.syncs, m.downloaded, m.damaged, m.uploads, m.requests, m} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) synced(ok bool) {
	if ok {
		m.syncs.WithLabelValues("ok").Inc()
	} else {
		m.syncs.WithLabelValues("failed").Inc()
	}
}

func (m *metrics) addDownloaded(n int64)  { m.downloaded.Add(float64(n)) }
func (m *metrics) failed()                { m.damaged.Inc() }
func (m *metrics) uploaded(result string) { m.uploads.WithLabelValues(result).Inc() }
func (m *metrics) request(kind string, c int) {
	m.requests.WithLabelValues(kind, strconv.Itoa(c)).Inc()
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.projects
	ch <- m.files
	ch <- m.bytes
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, t := range m.x.Status().Trees {
		ch <- prometheus.MustNewConstMetric(m.projects, prometheus.GaugeValue, float64(t.Projects), t.Name)
		ch <- prometheus.MustNewConstMetric(m.files, prometheus.GaugeValue, float64(t.Files), t.Name)
		ch <- prometheus.MustNewConstMetric(m.bytes, prometheus.GaugeValue, float64(t.Bytes), t.Name)
	}
}
