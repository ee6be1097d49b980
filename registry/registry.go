// Package registry is airgapd's OCI registry: an embedded
// distribution/v3 serving /v2/ for the nodes' containerd, with pull-through
// for several upstreams by containerd's ns= parameter.
//
// Until its own issues land it validates its config and its handler answers
// 501 Not Implemented; Status says so.
package registry

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/internal/placeholder"
)

// Deps is what server hands the registry.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	DataDir string
}

// Status is the registry's state for the UI, API and metrics.
type Status struct {
	State   string `json:"state"`
	Summary string `json:"summary"`
}

// Registry is the image service.
type Registry struct {
	placeholder.Service[Config]
}

// New validates cfg and returns a registry.
func New(cfg Config, deps Deps) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Registry{Service: placeholder.New(cfg)}, nil
}

// Status reports that the registry is not built yet.
func (r *Registry) Status() Status {
	return Status{State: placeholder.NotBuilt, Summary: "image serving arrives with the registry issues"}
}

// Handler serves /v2/. Not built yet: it says so with 501.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Error(w, "airgapd registry: not built yet", http.StatusNotImplemented)
	})
}
