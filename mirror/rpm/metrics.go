package rpm

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the mirror's Prometheus collectors: counters kept as syncs
// and requests happen, gauges read from Status when scraped.
type metrics struct {
	m          *Mirror
	syncs      *prometheus.CounterVec
	downloaded *prometheus.CounterVec
	fetched    *prometheus.CounterVec
	requests   *prometheus.CounterVec
	indexes    *prometheus.CounterVec
	headers    *prometheus.CounterVec
	schedRuns  *prometheus.CounterVec

	packages, bytes, lastSync, lastOK, syncing *prometheus.Desc
}

func newMetrics(m *Mirror) *metrics {
	return &metrics{
		m:          m,
		syncs:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_mirror_syncs_total", Help: "Repo syncs, by repo and result (ok, up_to_date, failed)."}, []string{"repo", "result"}),
		downloaded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_mirror_downloaded_bytes_total", Help: "Bytes fetched from upstreams, by repo."}, []string{"repo"}),
		fetched:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_mirror_fetched_packages_total", Help: "Packages fetched and verified, by repo."}, []string{"repo"}),
		requests:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_mirror_requests_total", Help: "HTTP requests served, by kind (repos, files, other) and status code."}, []string{"kind", "code"}),
		indexes:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_mirror_indexes_total", Help: "Local repo indexes, by repo and result (ok, up_to_date, failed)."}, []string{"repo", "result"}),
		headers:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_mirror_index_headers_read_total", Help: "RPM headers read by indexes, by repo (unchanged files are not read again)."}, []string{"repo"}),
		schedRuns:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_mirror_scheduled_syncs_total", Help: "Syncs the schedule started, by repo and result (ok, up_to_date, failed, skipped: another sync was under way)."}, []string{"repo", "result"}),
		packages:   prometheus.NewDesc("airgapd_mirror_repo_packages", "Packages in the published repo (local repos: in the published index).", []string{"repo"}, nil),
		bytes:      prometheus.NewDesc("airgapd_mirror_repo_bytes", "Size of the published repo's packages.", []string{"repo"}, nil),
		lastSync:   prometheus.NewDesc("airgapd_mirror_last_sync_timestamp_seconds", "When the repo's last sync began (Unix time).", []string{"repo"}, nil),
		lastOK:     prometheus.NewDesc("airgapd_mirror_last_sync_success", "1 when the repo's last sync succeeded, 0 when it failed.", []string{"repo"}, nil),
		syncing:    prometheus.NewDesc("airgapd_mirror_sync_remaining_bytes", "Bytes a sync under way still has to fetch.", []string{"repo"}, nil),
	}
}

func (x *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{x.syncs, x.downloaded, x.fetched, x.requests, x.indexes, x.headers, x.schedRuns, x} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (x *metrics) synced(repo string, res Result) {
	result := "ok"
	switch {
	case !res.OK:
		result = "failed"
	case res.UpToDate:
		result = "up_to_date"
	}
	if res.Indexed {
		x.indexes.WithLabelValues(repo, result).Inc()
		x.headers.WithLabelValues(repo).Add(float64(res.HeadersRead))
		return
	}
	x.syncs.WithLabelValues(repo, result).Inc()
	x.downloaded.WithLabelValues(repo).Add(float64(max(res.Downloaded, 0)))
	if res.OK {
		x.fetched.WithLabelValues(repo).Add(float64(res.Fetched))
	}
}

func (x *metrics) scheduled(repo, result string) {
	x.schedRuns.WithLabelValues(repo, result).Inc()
}

func (x *metrics) request(kind string, code int) {
	x.requests.WithLabelValues(kind, strconv.Itoa(code)).Inc()
}

func (x *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{x.packages, x.bytes, x.lastSync, x.lastOK, x.syncing} {
		ch <- d
	}
}

func (x *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, r := range x.m.Status().Repos {
		ch <- prometheus.MustNewConstMetric(x.packages, prometheus.GaugeValue, float64(r.Packages), r.Name)
		ch <- prometheus.MustNewConstMetric(x.bytes, prometheus.GaugeValue, float64(r.Bytes), r.Name)
		if !r.LastSync.IsZero() {
			ch <- prometheus.MustNewConstMetric(x.lastSync, prometheus.GaugeValue, float64(r.LastSync.UnixNano())/1e9, r.Name)
			ok := 0.0
			if r.LastResult == "ok" {
				ok = 1
			}
			ch <- prometheus.MustNewConstMetric(x.lastOK, prometheus.GaugeValue, ok, r.Name)
		}
		if p := r.Progress; p != nil {
			ch <- prometheus.MustNewConstMetric(x.syncing, prometheus.GaugeValue, float64(max(p.Bytes-p.BytesDone, 0)), r.Name)
		}
	}
}
