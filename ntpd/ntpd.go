// Package ntpd is airgapd's NTP server, the chrony replacement on the admin
// host: upstream sources → selection → clock model → responder, falling back
// to a local stratum when the upstream is gone.
//
// Until its own issue lands it validates its config and holds the sockets
// server opened for it, but answers no requests; Status says so.
package ntpd

import (
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/internal/placeholder"
)

// Deps is what server hands the NTP service.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	UDP     []net.PacketConn // one per listen address
}

// Status is the NTP service's state for the UI, API and metrics.
type Status struct {
	State   string `json:"state"`
	Summary string `json:"summary"`
}

// Server is the NTP service.
type Server struct {
	placeholder.Service[Config]
}

// New validates cfg and returns a server that will use deps' sockets.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Server{Service: placeholder.New(cfg)}, nil
}

// Status reports that NTP is not built yet.
func (s *Server) Status() Status {
	return Status{State: placeholder.NotBuilt, Summary: "time service arrives with the ntpd issue"}
}
