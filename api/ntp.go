package api

import "time"

// NTPStatus is the NTP service's state for the UI, API and metrics: what
// `chronyc tracking`, `sources` and `clients` show, as plain data.
type NTPStatus struct {
	State   string   `json:"state"` // synced | local | holdover | unsynchronised | starting | down
	Summary string   `json:"summary"`
	Listen  []string `json:"listen"` // bound addresses

	Stratum        int     `json:"stratum"` // served; 16 = unsynchronised
	Leap           int     `json:"leap"`    // served; 3 = unsynchronised
	RefID          string  `json:"ref_id"`
	Selected       string  `json:"selected,omitempty"` // the system peer's address
	Offset         float64 `json:"offset"`             // seconds, served time − system clock
	RootDelay      float64 `json:"root_delay"`         // seconds
	RootDispersion float64 `json:"root_dispersion"`    // seconds
	Precision      int     `json:"precision"`          // log2 seconds
	// LastUpdate is when the last upstream sample updated the model.
	LastUpdate    *time.Time `json:"last_update,omitempty"`
	Frequency     float64    `json:"frequency_ppm"` // system clock: positive runs slow
	Skew          float64    `json:"skew_ppm"`
	FrequencyFrom string     `json:"frequency_from,omitempty"` // estimate | drift file
	Discipline    bool       `json:"discipline"`

	// ManualSetAt is when `airgapd ntp settime` last set the time;
	// ManualError the estimated error of the served time since then.
	ManualSetAt  *time.Time `json:"manual_set_at,omitempty"`
	ManualOffset float64    `json:"manual_offset,omitempty"` // seconds, set − system clock
	ManualError  float64    `json:"manual_error,omitempty"`  // seconds

	Sources      []NTPSourceStatus `json:"sources"`
	SourcesView  string            `json:"sources_view"` // as `chronyc sources` prints it
	Clients      []NTPClientStatus `json:"clients"`      // most recent first, at most 1000
	ClientsTotal int               `json:"clients_total"`
	History      []NTPOffsetPoint  `json:"history"`       // offset and jitter of each model update, for plots
	NTS          *NTPNTSStatus     `json:"nts,omitempty"` // nil when ntp.nts is off
}

// NTPNTSStatus is Network Time Security's state: the NTS-KE listener, the
// cookie key ring and the counters.
type NTPNTSStatus struct {
	Listen           []string          `json:"listen"`
	Required         bool              `json:"required"`
	Handshakes       uint64            `json:"handshakes"`    // NTS-KE exchanges completed
	Authenticated    uint64            `json:"authenticated"` // NTP requests authenticated
	Failures         map[string]uint64 `json:"failures"`      // by reason
	CookieKeyID      uint32            `json:"cookie_key_id"`
	CookieKeyCreated time.Time         `json:"cookie_key_created"`
	CookieKeys       int               `json:"cookie_keys"` // keys in the ring (cookies of each still open)
}

// NTPSourceStatus is one line of the sources view, like `chronyc sources`.
type NTPSourceStatus struct {
	Mark    string `json:"mark"` // * selected, + combined, - not combined, ? unusable, x falseticker
	Server  string `json:"server"`
	Address string `json:"address"`
	Stratum int    `json:"stratum"`
	Poll    int    `json:"poll"`  // log2 seconds
	Reach   string `json:"reach"` // octal, as chronyc prints it
	// LastRx is seconds since the last reply; -1 when none yet.
	LastRx    float64 `json:"last_rx"`
	Offset    float64 `json:"offset"` // last sample, seconds (source − system clock)
	Delay     float64 `json:"delay"`
	Jitter    float64 `json:"jitter"`
	Error     float64 `json:"error"` // ± root distance of the filtered sample
	LastError string  `json:"last_error,omitempty"`
}

// NTPClientStatus is one row of the clients table, like `chronyc clients`.
type NTPClientStatus struct {
	Address  string    `json:"address"`
	Name     string    `json:"name,omitempty"` // reverse DNS, when known
	Packets  uint64    `json:"packets"`
	Answered uint64    `json:"answered"`
	Drops    uint64    `json:"drops"` // over the rate limit, not answered
	KoDs     uint64    `json:"kods"`  // KoD RATE sent
	LastSeen time.Time `json:"last_seen"`
	// Interval is the average time between requests, in seconds (0 with
	// one request).
	Interval float64 `json:"interval"`
}

// NTPOffsetPoint is one entry of the offset history, for plots.
type NTPOffsetPoint struct {
	At     time.Time `json:"at"`
	Offset float64   `json:"offset"` // seconds, served − system clock
	Jitter float64   `json:"jitter"` // seconds
	// Operator marks a step by `airgapd ntp settime`, not a sample.
	Operator bool `json:"operator,omitempty"`
}
