package server

import (
	"fmt"
	"strings"

	"github.com/airgapd/airgapd/api"
)

// StatusReport and ServiceStatus are the api package's: what
// /api/v1/status returns and `airgapd status` prints. Each service's
// detail is its typed field (ServiceStatus.DNS, .Mirror, …).
type (
	StatusReport  = api.StatusReport
	ServiceStatus = api.ServiceStatus
)

// Status implements web.Instance: every service, enabled or not, in start
// order.
func (s *Server) Status() api.StatusReport { return s.Report() }

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
