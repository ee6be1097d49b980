// Package dnsd is airgapd's DNS server, the BIND replacement on the admin
// host: ACL → local zones → cache → forwarders or iteration from root hints.
//
// Until its own issue lands it validates its config and holds the sockets
// server opened for it, but answers no queries; Status says so.
package dnsd

import (
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/internal/placeholder"
)

// Deps is what server hands the DNS service.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	UDP     []net.PacketConn // one per listen address
	TCP     []net.Listener   // one per listen address
}

// Status is the DNS service's state for the UI, API and metrics.
type Status struct {
	State   string `json:"state"`
	Summary string `json:"summary"`
}

// Server is the DNS service.
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

// Status reports that DNS is not built yet.
func (s *Server) Status() Status {
	return Status{State: placeholder.NotBuilt, Summary: "DNS answering arrives with the dnsd issue"}
}
