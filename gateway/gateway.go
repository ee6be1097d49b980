// Package gateway makes the admin host the nodes' way out: ip_forward and
// NAT rules in airgapd's own iptables chains, reconciled against the kernel.
//
// Until its own issue lands it validates its config and changes nothing on
// the host; Status says so.
package gateway

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/internal/placeholder"
)

// Deps is what server hands the gateway.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer
}

// Status is the gateway's state for the UI, API and metrics.
type Status struct {
	State   string `json:"state"`
	Summary string `json:"summary"`
}

// Gateway is the NAT service.
type Gateway struct {
	placeholder.Service[Config]
}

// New validates cfg and returns a gateway.
func New(cfg Config, deps Deps) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Gateway{Service: placeholder.New(cfg)}, nil
}

// Status reports that the gateway is not built yet.
func (g *Gateway) Status() Status {
	return Status{State: placeholder.NotBuilt, Summary: "NAT and ip_forward arrive with the gateway issue; nothing on this host was changed"}
}
