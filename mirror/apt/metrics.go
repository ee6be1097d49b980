package apt

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's collectors: counters kept as runs and
// requests happen, gauges read from Status when scraped.
type metrics struct {
	a          *Apt
	syncs      *prometheus.CounterVec
	downloaded *prometheus.CounterVec
	requests   *prometheus.CounterVec

	packages, bytes, lastOK, remaining *prometheus.Desc
}

func newMetrics(a *Apt) *metrics {
	return &metrics{
		a:          a,
		syncs:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_apt_syncs_total", Help: "APT repo syncs and indexes, by repo and result (ok, up_to_date, failed)."}, []string{"repo", "result"}),
		downloaded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_apt_downloaded_bytes_total", Help: "Bytes fetched from APT upstreams, by repo."}, []string{"repo"}),
		requests:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "airgapd_apt_requests_total", Help: "HTTP requests served under /apt/, by status code."}, []string{"code"}),
		packages:   prometheus.NewDesc("airgapd_apt_repo_packages", "Packages in the published APT repo.", []string{"repo"}, nil),
		bytes:      prometheus.NewDesc("airgapd_apt_repo_bytes", "Size of the published APT repo's packages.", []string{"repo"}, nil),
		lastOK:     prometheus.NewDesc("airgapd_apt_last_sync_success", "1 when the repo's last sync or index succeeded, 0 when it failed.", []string{"repo"}, nil),
		remaining:  prometheus.NewDesc("airgapd_apt_sync_remaining_bytes", "Bytes a sync under way still has to fetch.", []string{"repo"}, nil),
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

func (x *metrics) synced(repo string, res Result) {
	result := "ok"
	switch {
	case !res.OK:
		result = "failed"
	case res.UpToDate:
		result = "up_to_date"
	}
	x.syncs.WithLabelValues(repo, result).Inc()
	x.downloaded.WithLabelValues(repo).Add(float64(max(res.Downloaded, 0)))
}

func (x *metrics) request(code int) { x.requests.WithLabelValues(strconv.Itoa(code)).Inc() }

func (x *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{x.packages, x.bytes, x.lastOK, x.remaining} {
		ch <- d
	}
}

func (x *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, r := range x.a.Status().Repos {
		ch <- prometheus.MustNewConstMetric(x.packages, prometheus.GaugeValue, float64(r.Packages), r.Name)
		ch <- prometheus.MustNewConstMetric(x.bytes, prometheus.GaugeValue, float64(r.Bytes), r.Name)
		if r.LastResult != "" {
			ok := 0.0
			if r.LastResult == "ok" {
				ok = 1
			}
			ch <- prometheus.MustNewConstMetric(x.lastOK, prometheus.GaugeValue, ok, r.Name)
		}
		if p := r.Progress; p != nil {
			ch <- prometheus.MustNewConstMetric(x.remaining, prometheus.GaugeValue, float64(max(p.Bytes-p.BytesDone, 0)), r.Name)
		}
	}
}
