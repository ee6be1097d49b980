package server

import (
	"fmt"
	"io"
	"strings"
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

// ServiceStatus is one service's line in the report. Detail is the
// service's own Status value.
type ServiceStatus struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	State   string `json:"state"`
	Summary string `json:"summary"`
	Detail  any    `json:"detail,omitempty"`
}

// Status implements web.Instance: every service, enabled or not, in start
// order.
func (s *Server) Status() any { return s.Report() }

// Report builds the status report.
func (s *Server) Report() StatusReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := StatusReport{
		Version:        s.opts.Version,
		Config:         s.cfg.Source,
		StartedAt:      s.startedAt,
		ConfigLoadedAt: s.loadedAt,
		Ready:          s.ready.Load(),
	}
	running := map[string]*instance{}
	for _, in := range s.instances {
		running[in.name] = in
	}
	for _, sv := range services() {
		st := ServiceStatus{Name: sv.key, State: "disabled", Summary: "section absent or enabled: false"}
		if in, ok := running[sv.key]; ok {
			st = in.status()
			st.Name = sv.key
			st.Enabled = s.cfg.Enabled(sv.key) // web runs without its section, for the control socket
		}
		r.Services = append(r.Services, st)
	}
	return r
}

// oneLine is the STATUS= line systemd shows in `systemctl status`.
func (s *Server) oneLine() string {
	var up []string
	for _, st := range s.Report().Services {
		if st.Enabled {
			up = append(up, st.Name)
		}
	}
	return fmt.Sprintf("serving: %s", strings.Join(up, ", "))
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
