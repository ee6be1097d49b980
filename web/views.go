package web

import (
	"encoding/json"
	"sync"
	"time"
)

// The status web shows comes from Instance.Status() as JSON-encodable
// data. web decodes it into these views, which name only the fields the
// pages use, so web depends on the JSON shape (what /api/v1/status
// promises to scripts too) and on no service package.

type statusView struct {
	Version        string        `json:"version"`
	Config         string        `json:"config"`
	StartedAt      time.Time     `json:"started_at"`
	ConfigLoadedAt time.Time     `json:"config_loaded_at"`
	Ready          bool          `json:"ready"`
	Services       []serviceView `json:"services"`
}

type serviceView struct {
	Name    string          `json:"name"`
	Enabled bool            `json:"enabled"`
	State   string          `json:"state"`
	Summary string          `json:"summary"`
	Detail  json.RawMessage `json:"detail"`
}

// Running reports whether the service runs (its section is present and
// enabled).
func (v serviceView) Running() bool { return v.State != "disabled" && v.State != "" }

type dnsView struct {
	Listen      []string         `json:"listen"`
	QPS         float64          `json:"qps"`
	Queries     int64            `json:"queries"`
	AvgMs       float64          `json:"avg_latency_ms"`
	Dropped     int64            `json:"dropped"`
	RateLimited int64            `json:"rate_limited"`
	Sources     map[string]int64 `json:"sources"`
	Rcodes      map[string]int64 `json:"rcodes"`
	Cache       struct {
		Entries  int     `json:"entries"`
		Max      int     `json:"max"`
		Hits     int64   `json:"hits"`
		Misses   int64   `json:"misses"`
		HitRatio float64 `json:"hit_ratio"`
		Stale    int64   `json:"stale_served"`
	} `json:"cache"`
	Upstreams []struct {
		Address string  `json:"address"`
		Zone    string  `json:"zone"`
		Healthy bool    `json:"healthy"`
		SRTTms  float64 `json:"srtt_ms"`
		Queries int64   `json:"queries"`
		Errors  int64   `json:"errors"`
	} `json:"upstreams"`
	Zones []struct {
		Name    string `json:"name"`
		Serial  uint32 `json:"serial"`
		Records int    `json:"records"`
	} `json:"zones"`
	TopClients []countView `json:"top_clients"`
	TopNames   []countView `json:"top_names"`
	Recent     []struct {
		Time      time.Time `json:"time"`
		Client    string    `json:"client"`
		Name      string    `json:"name"`
		Type      string    `json:"type"`
		Rcode     string    `json:"rcode"`
		Source    string    `json:"source"`
		LatencyMs float64   `json:"latency_ms"`
	} `json:"recent"`
}

type countView struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

type ntpView struct {
	Listen         []string   `json:"listen"`
	Stratum        int        `json:"stratum"`
	Leap           int        `json:"leap"`
	RefID          string     `json:"ref_id"`
	Selected       string     `json:"selected"`
	Offset         float64    `json:"offset"`
	RootDelay      float64    `json:"root_delay"`
	RootDispersion float64    `json:"root_dispersion"`
	LastUpdate     *time.Time `json:"last_update"`
	Frequency      float64    `json:"frequency_ppm"`
	Skew           float64    `json:"skew_ppm"`
	Sources        []struct {
		Mark      string  `json:"mark"`
		Server    string  `json:"server"`
		Address   string  `json:"address"`
		Stratum   int     `json:"stratum"`
		Poll      int     `json:"poll"`
		Reach     string  `json:"reach"`
		LastRx    float64 `json:"last_rx"`
		Offset    float64 `json:"offset"`
		Delay     float64 `json:"delay"`
		Jitter    float64 `json:"jitter"`
		Error     float64 `json:"error"`
		LastError string  `json:"last_error"`
	} `json:"sources"`
	SourcesView string `json:"sources_view"`
	Clients     []struct {
		Address  string    `json:"address"`
		Name     string    `json:"name"`
		Packets  uint64    `json:"packets"`
		Answered uint64    `json:"answered"`
		Drops    uint64    `json:"drops"`
		KoDs     uint64    `json:"kods"`
		LastSeen time.Time `json:"last_seen"`
	} `json:"clients"`
	ClientsTotal int `json:"clients_total"`
	History      []struct {
		At     time.Time `json:"at"`
		Offset float64   `json:"offset"`
		Jitter float64   `json:"jitter"`
	} `json:"history"`
}

type gatewayView struct {
	Mode      string `json:"mode"`
	Backend   string `json:"backend"`
	IPForward string `json:"ip_forward"`
	Firewalld string `json:"firewalld"`
	Rules     []struct {
		Table   string `json:"table"`
		Chain   string `json:"chain"`
		Rule    string `json:"rule"`
		Packets uint64 `json:"packets"`
		Bytes   uint64 `json:"bytes"`
	} `json:"rules"`
	Sysctls []struct {
		Name string `json:"name"`
		Want string `json:"want"`
		Have string `json:"have"`
	} `json:"sysctls"`
	Routes  []string `json:"routes"`
	Pending []string `json:"pending"`
	Notes   []string `json:"notes"`
	Drift   []struct {
		Time    time.Time `json:"time"`
		Changes []string  `json:"changes"`
	} `json:"drift"`
	LastReconcile time.Time `json:"last_reconcile"`
	LastError     string    `json:"last_error"`
}

type mirrorView struct {
	Repos []struct {
		Name       string    `json:"name"`
		Kind       string    `json:"kind"`
		BaseURL    string    `json:"baseurl"`
		Upstream   string    `json:"upstream"`
		Path       string    `json:"path"`
		Revision   string    `json:"revision"`
		Schedule   string    `json:"schedule"`
		NextSync   time.Time `json:"next_sync"`
		Packages   int       `json:"packages"`
		Bytes      int64     `json:"bytes"`
		LastSync   time.Time `json:"last_sync"`
		LastResult string    `json:"last_result"`
		LastError  string    `json:"last_error"`
		Published  time.Time `json:"published"`
		Progress   *struct {
			Phase     string `json:"phase"`
			ToFetch   int    `json:"to_fetch"`
			Fetched   int    `json:"fetched"`
			Bytes     int64  `json:"bytes"`
			BytesDone int64  `json:"bytes_done"`
		} `json:"progress"`
	} `json:"repos"`
	Files        string            `json:"files"`
	BundleImport *bundleImportView `json:"bundle_import"`
}

// bundleImportView is the bundle import under way, or the last one.
type bundleImportView struct {
	Path      string    `json:"path"`
	Phase     string    `json:"phase"`
	Bytes     int64     `json:"bytes"`
	BytesDone int64     `json:"bytes_done"`
	Blobs     int       `json:"blobs"`
	BlobsDone int       `json:"blobs_done"`
	Item      string    `json:"item"`
	Started   time.Time `json:"started"`
	Rate      float64   `json:"rate"`
	Error     string    `json:"error"`
}

// RateBytes is the rate in whole bytes per second, for the bytes filter.
func (v bundleImportView) RateBytes() int64 { return int64(v.Rate) }

type registryView struct {
	Storage      string   `json:"storage"`
	Users        int      `json:"users"`
	PullFrom     []string `json:"pull_from"`
	Repositories []struct {
		Name      string   `json:"name"`
		Tags      []string `json:"tags"`
		Manifests int      `json:"manifests"`
		Bytes     int64    `json:"bytes"`
	} `json:"repositories"`
	RepositoriesOmitted int       `json:"repositories_omitted"`
	Tags                int       `json:"tags"`
	Blobs               int       `json:"blobs"`
	Bytes               int64     `json:"bytes"`
	Pulls               int64     `json:"pulls"`
	Pushes              int64     `json:"pushes"`
	Deletes             int64     `json:"deletes"`
	BytesSent           int64     `json:"bytes_sent"`
	BytesReceived       int64     `json:"bytes_received"`
	AuthFailures        int64     `json:"auth_failures"`
	GCRunning           bool      `json:"gc_running"`
	Mirrors             []string  `json:"mirrors"`
	CountedAt           time.Time `json:"counted_at"`
	Upstreams           []struct {
		Name         string     `json:"name"`
		URL          string     `json:"url"`
		Reachable    bool       `json:"reachable"`
		LastOK       *time.Time `json:"last_ok"`
		LastError    string     `json:"last_error"`
		LastErrorAt  *time.Time `json:"last_error_at"`
		Hits         int64      `json:"hits"`
		Misses       int64      `json:"misses"`
		Refreshes    int64      `json:"refreshes"`
		Errors       int64      `json:"errors"`
		BytesFetched int64      `json:"bytes_fetched"`
		InFlight     int64      `json:"in_flight"`
	} `json:"upstreams"`
}

// status decodes the instance's status; a status of another shape (a test
// fake) gives an empty view.
func (s *Server) status() statusView {
	var v statusView
	b, err := json.Marshal(s.deps.Instance.Status())
	if err == nil {
		json.Unmarshal(b, &v)
	}
	return v
}

func (v statusView) service(name string) serviceView {
	for _, sv := range v.Services {
		if sv.Name == name {
			return sv
		}
	}
	return serviceView{Name: name, State: "disabled"}
}

// detail decodes a service's own status into into.
func (v serviceView) detail(into any) {
	if len(v.Detail) > 0 {
		json.Unmarshal(v.Detail, into)
	}
}

// point is one sample of a plotted figure.
type point struct {
	At time.Time
	V  float64
}

// history keeps a short in-memory record of the figures plotted where a
// service's status has no history of its own (DNS queries per second, the
// cache hit ratio): one sample per historyEvery, for historyLen samples.
type history struct {
	mu       sync.Mutex
	qps, hit []point
}

const (
	historyEvery = 5 * time.Second
	historyLen   = 360 // 30 minutes
)

func (h *history) add(now time.Time, st statusView) {
	d := st.service("dns")
	if !d.Running() {
		return
	}
	var dv dnsView
	d.detail(&dv)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.qps = appendBounded(h.qps, point{now, dv.QPS})
	h.hit = appendBounded(h.hit, point{now, dv.Cache.HitRatio * 100})
}

func appendBounded(ps []point, p point) []point {
	ps = append(ps, p)
	if len(ps) > historyLen {
		ps = append(ps[:0:0], ps[len(ps)-historyLen:]...)
	}
	return ps
}

func (h *history) dns() (qps, hit []point) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]point(nil), h.qps...), append([]point(nil), h.hit...)
}
