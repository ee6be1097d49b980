package registry

import (
	"errors"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/prometheus/client_golang/prometheus"
)

// collector exports the registry's counters and the last count of its
// contents at scrape time.
type collector struct {
	r *Registry

	requests, pulls, pushes, deletes, bytesSent, bytesReceived, authFailures, writesRefused *prometheus.Desc
	repos, tags, blobs, bytes, gcRuns, gcBlobs, gcBytes, gcRunning                          *prometheus.Desc

	upHits, upMisses, upRefreshes, upErrors, upBytes, upReachable, upInFlight *prometheus.Desc
}

func newCollector(r *Registry) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("airgapd_registry_"+name, help, labels, nil)
	}
	return &collector{
		r:             r,
		requests:      d("requests_total", "HTTP requests to /v2/, by endpoint (base, catalog, tags, manifest, blob, upload, referrers, other), method and status code.", "route", "method", "code"),
		pulls:         d("pulls_total", "Manifests served (GET), the usual count of image pulls."),
		pushes:        d("pushes_total", "Manifests stored (PUT), the usual count of image pushes."),
		deletes:       d("deletes_total", "Manifests, tags and blobs deleted through the API."),
		bytesSent:     d("blob_bytes_sent_total", "Bytes of blob content served."),
		bytesReceived: d("bytes_received_total", "Bytes of request bodies received (uploads and manifests)."),
		authFailures:  d("auth_failures_total", "Requests answered 401, by reason: wrong_credentials, no_credentials (a push or delete), outside_pull_from (an anonymous pull from elsewhere).", "reason"),
		writesRefused: d("writes_refused_total", "Writes refused with 503 while garbage collection ran."),
		repos:         d("repositories", "Repositories in storage (at the last count)."),
		tags:          d("tags", "Tags in storage (at the last count)."),
		blobs:         d("blobs", "Blobs in storage (at the last count)."),
		bytes:         d("storage_bytes", "Bytes of blobs in storage (at the last count)."),
		gcRuns:        d("gc_runs_total", "Garbage collections, by result (ok, failed) and dry_run.", "result", "dry_run"),
		gcBlobs:       d("gc_blobs_removed_total", "Blobs removed by garbage collection."),
		gcBytes:       d("gc_bytes_removed_total", "Bytes removed by garbage collection."),
		gcRunning:     d("gc_running", "1 while garbage collection runs and writes are held off."),
		upHits:        d("upstream_hits_total", "Manifests and blobs of a mirrored upstream served from the store without fetching.", "upstream"),
		upMisses:      d("upstream_misses_total", "Manifests and blobs fetched from a mirrored upstream.", "upstream"),
		upRefreshes:   d("upstream_refreshes_total", "Tag lookups checked against a mirrored upstream.", "upstream"),
		upErrors:      d("upstream_errors_total", "Failures to reach a mirrored upstream (network errors, 5xx, broken downloads).", "upstream"),
		upBytes:       d("upstream_bytes_total", "Bytes of manifests and blobs read from a mirrored upstream.", "upstream"),
		upReachable:   d("upstream_reachable", "1 when the last contact with a mirrored upstream succeeded.", "upstream"),
		upInFlight:    d("upstream_downloads_in_flight", "Blob downloads from a mirrored upstream running now.", "upstream"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.pulls, c.pushes, c.deletes, c.bytesSent, c.bytesReceived, c.authFailures,
		c.writesRefused, c.repos, c.tags, c.blobs, c.bytes, c.gcRuns, c.gcBlobs, c.gcBytes, c.gcRunning,
		c.upHits, c.upMisses, c.upRefreshes, c.upErrors, c.upBytes, c.upReachable, c.upInFlight} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := &c.r.stats
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	for k, v := range s.requestCounts() {
		counter(c.requests, v, k.route.String(), k.method, codeLabel(k.code))
	}
	counter(c.pulls, s.pulls.Load())
	counter(c.pushes, s.pushes.Load())
	counter(c.deletes, s.deletes.Load())
	counter(c.bytesSent, s.bytesSent.Load())
	counter(c.bytesReceived, s.bytesReceived.Load())
	for i, name := range authReasonNames {
		counter(c.authFailures, s.authFail[i].Load(), name)
	}
	counter(c.writesRefused, s.writesRefused.Load())
	s.mu.Lock()
	gcRuns := s.gcRuns
	s.mu.Unlock()
	for _, result := range []string{"ok", "failed"} {
		for _, dry := range []string{"false", "true"} {
			counter(c.gcRuns, gcRuns[gcKey{result, dry}], result, dry)
		}
	}
	counter(c.gcBlobs, s.gcBlobs.Load())
	counter(c.gcBytes, s.gcBytes.Load())
	running := 0.0
	if c.r.gate.closed() {
		running = 1
	}
	gauge(c.gcRunning, running)
	if ups := c.r.upstreams.Load(); ups != nil {
		for name, u := range *ups {
			counter(c.upHits, u.hits.Load(), name)
			counter(c.upMisses, u.misses.Load(), name)
			counter(c.upRefreshes, u.refreshes.Load(), name)
			counter(c.upErrors, u.errs.Load(), name)
			counter(c.upBytes, u.bytes.Load(), name)
			reachable := 0.0
			if u.reachable() {
				reachable = 1
			}
			ch <- prometheus.MustNewConstMetric(c.upReachable, prometheus.GaugeValue, reachable, name)
			ch <- prometheus.MustNewConstMetric(c.upInFlight, prometheus.GaugeValue, float64(u.inflight.Load()), name)
		}
	}
	if inv := c.r.inv.Load(); inv != nil {
		gauge(c.repos, float64(len(inv.repos)+inv.omitted))
		gauge(c.tags, float64(inv.tags))
		gauge(c.blobs, float64(inv.blobs))
		gauge(c.bytes, float64(inv.bytes))
	}
}

type gcKey struct{ result, dryRun string }

// recordGC counts one collection.
func (s *stats) recordGC(res GCResult, err error) {
	k := gcKey{"ok", "false"}
	if err != nil {
		k.result = "failed"
	}
	if res.DryRun {
		k.dryRun = "true"
	} else {
		s.gcBlobs.Add(int64(len(res.Blobs)))
		s.gcBytes.Add(res.Bytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gcRuns == nil {
		s.gcRuns = map[gcKey]int64{}
	}
	s.gcRuns[k]++
}

func isPathNotFound(err error) bool {
	var pnf storagedriver.PathNotFoundError
	return errors.As(err, &pnf)
}
