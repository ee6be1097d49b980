package api

import "time"

// DNSStatus is the DNS service's state for the UI, API and metrics.
type DNSStatus struct {
	State       string              `json:"state"`
	Summary     string              `json:"summary"`
	Listen      []string            `json:"listen"` // udp/ADDR and tcp/ADDR actually bound
	QPS         float64             `json:"qps"`
	Queries     int64               `json:"queries"`
	AvgMs       float64             `json:"avg_latency_ms"`
	Dropped     int64               `json:"dropped"`
	RateLimited int64               `json:"rate_limited"`
	Malformed   int64               `json:"malformed"`
	Sources     map[string]int64    `json:"sources"`
	Rcodes      map[string]int64    `json:"rcodes"`
	Cache       DNSCacheStatus      `json:"cache"`
	Upstreams   []DNSUpstreamStatus `json:"upstreams"`
	Zones       []DNSZoneStatus     `json:"zones"`
	TopClients  []DNSCount          `json:"top_clients"`
	TopNames    []DNSCount          `json:"top_names"`
	Recent      []DNSLogEntry       `json:"recent"`
}

// DNSCacheStatus summarises the cache.
type DNSCacheStatus struct {
	Entries    int     `json:"entries"`
	Max        int     `json:"max"`
	Hits       int64   `json:"hits"`
	Misses     int64   `json:"misses"`
	HitRatio   float64 `json:"hit_ratio"`
	Stale      int64   `json:"stale_served"`
	Prefetches int64   `json:"prefetches"`
}

// DNSZoneStatus is one local zone.
type DNSZoneStatus struct {
	Name    string `json:"name"`
	Serial  uint32 `json:"serial"`
	Records int    `json:"records"`
}

// DNSUpstreamStatus is one forwarder's health for the status page.
type DNSUpstreamStatus struct {
	Address string  `json:"address"`
	Zone    string  `json:"zone,omitempty"` // forward zone, or "" for the default pool
	Healthy bool    `json:"healthy"`
	SRTTms  float64 `json:"srtt_ms"`
	Queries int64   `json:"queries"`
	Errors  int64   `json:"errors"`
}

// DNSCount is one of the busiest clients or names of the last minute.
type DNSCount struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// DNSLogEntry is one query in the recent-queries log.
type DNSLogEntry struct {
	Time      time.Time `json:"time"`
	Client    string    `json:"client"`
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	Rcode     string    `json:"rcode"`
	Source    string    `json:"source"`
	LatencyMs float64   `json:"latency_ms"`
}
