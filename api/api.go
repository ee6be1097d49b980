// Package api is the contract between server, web and the command line:
// the status every service reports (/api/v1/status), the events of the
// JSON-lines progress streams (mirror sync, bundle import, registry
// import), the problems found in a config, and the Client that reaches a
// running airgapd over its control socket or an HTTP(S) listener.
//
// It is plain data and imports no airgapd package (a test enforces it), so
// every side can use it: the services fill its types in, server passes
// them through, web renders them and the CLI and scripts decode them.
package api

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// StatusReport is what /api/v1/status returns and `airgapd status` prints.
type StatusReport struct {
	Version        string          `json:"version"`
	Config         string          `json:"config"`
	StartedAt      time.Time       `json:"started_at"`
	ConfigLoadedAt time.Time       `json:"config_loaded_at"`
	Ready          bool            `json:"ready"`
	Services       []ServiceStatus `json:"services"`
}

// Service finds a service's line; a service the report does not name
// comes back disabled.
func (r StatusReport) Service(name string) ServiceStatus {
	for _, s := range r.Services {
		if s.Name == name {
			return s
		}
	}
	return ServiceStatus{Name: name, State: "disabled"}
}

// Service names, as the report and the config sections spell them.
const (
	ServiceGateway  = "gateway"
	ServiceDNS      = "dns"
	ServiceNTP      = "ntp"
	ServiceMirror   = "mirror"
	ServiceRegistry = "registry"
	ServiceApt      = "apt"
	ServiceGoProxy  = "goproxy"
	ServiceCharts   = "charts"
	ServiceWeb      = "web"
)

// ServiceStatus is one service's line in the report, with the service's
// own status as its detail. On the wire the detail is one "detail" object
// whose shape the service's name decides; in Go it is the one typed field
// of that name that is set (MarshalJSON and UnmarshalJSON map the two), so
// no reader decodes a detail by hand. A disabled service has none.
type ServiceStatus struct {
	Name    string
	Enabled bool
	State   string
	Summary string

	Gateway  *GatewayStatus
	DNS      *DNSStatus
	NTP      *NTPStatus
	Mirror   *MirrorStatus
	Registry *RegistryStatus
	Apt      *AptStatus
	GoProxy  *GoProxyStatus
	Charts   *ChartsStatus
	Web      *WebStatus
	PyPI     *PyPIStatus
	HA       *HAStatus
	// Other is the detail of a service this build does not know (a newer
	// server), kept as it came.
	Other json.RawMessage
}

// Running reports whether the service runs (its section is present and
// enabled).
func (s ServiceStatus) Running() bool { return s.State != "disabled" && s.State != "" }

// serviceWire is ServiceStatus as JSON.
type serviceWire struct {
	Name    string          `json:"name"`
	Enabled bool            `json:"enabled"`
	State   string          `json:"state"`
	Summary string          `json:"summary"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// detail is the typed field the service's name selects: a pointer to it
// (to decode into) and its value, nil when unset.
func (s *ServiceStatus) detail() (into any, value any) {
	switch s.Name {
	case ServiceGateway:
		return &s.Gateway, orNil(s.Gateway)
	case ServiceDNS:
		return &s.DNS, orNil(s.DNS)
	case ServiceNTP:
		return &s.NTP, orNil(s.NTP)
	case ServiceMirror:
		return &s.Mirror, orNil(s.Mirror)
	case ServiceRegistry:
		return &s.Registry, orNil(s.Registry)
	case ServiceApt:
		return &s.Apt, orNil(s.Apt)
	case ServiceGoProxy:
		return &s.GoProxy, orNil(s.GoProxy)
	case ServiceCharts:
		return &s.Charts, orNil(s.Charts)
	case ServiceWeb:
		return &s.Web, orNil(s.Web)
	case ServicePyPI:
		return &s.PyPI, orNil(s.PyPI)
	case ServiceHA:
		return &s.HA, orNil(s.HA)
	}
	if len(s.Other) == 0 {
		return &s.Other, nil
	}
	return &s.Other, s.Other
}

// orNil keeps a nil pointer from becoming a non-nil any.
func orNil[T any](p *T) any {
	if p == nil {
		return nil
	}
	return p
}

// MarshalJSON writes the detail of the service's name under "detail".
func (s ServiceStatus) MarshalJSON() ([]byte, error) {
	w := serviceWire{Name: s.Name, Enabled: s.Enabled, State: s.State, Summary: s.Summary}
	if _, v := s.detail(); v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s status: %w", s.Name, err)
		}
		w.Detail = b
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes "detail" into the field of the service's name.
func (s *ServiceStatus) UnmarshalJSON(b []byte) error {
	var w serviceWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = ServiceStatus{Name: w.Name, Enabled: w.Enabled, State: w.State, Summary: w.Summary}
	if len(w.Detail) == 0 || string(w.Detail) == "null" {
		return nil
	}
	into, _ := s.detail()
	if err := json.Unmarshal(w.Detail, into); err != nil {
		return fmt.Errorf("%s status: %w", s.Name, err)
	}
	return nil
}

// WriteText prints the report the way `chronyc tracking` or `rndc status`
// would: one header, one line per service.
func (r StatusReport) WriteText(w io.Writer, now time.Time) {
	state := "starting"
	if r.Ready {
		state = "ready"
	}
	fmt.Fprintf(w, "airgapd %s, %s, up %s\n", r.Version, state, now.Sub(r.StartedAt).Round(time.Second))
	fmt.Fprintf(w, "config: %s (loaded %s ago)\n", r.Config, now.Sub(r.ConfigLoadedAt).Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range r.Services {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.State, s.Summary)
	}
	tw.Flush()
}
