// Package mirror serves RPM repositories and plain files to the nodes:
// mirrored from upstream (reposync), indexed from local folders
// (createrepo_c), published atomically, and carried across the gap in
// bundles.
//
// Until its own issues land it validates its config and its handler answers
// 501 Not Implemented; Status says so.
package mirror

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/internal/placeholder"
)

// Deps is what server hands the mirror.
type Deps struct {
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	DataDir string
}

// Status is the mirror's state for the UI, API and metrics.
type Status struct {
	State   string `json:"state"`
	Summary string `json:"summary"`
}

// Mirror is the repository service.
type Mirror struct {
	placeholder.Service[Config]
}

// New validates cfg and returns a mirror.
func New(cfg Config, deps Deps) (*Mirror, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Mirror{Service: placeholder.New(cfg)}, nil
}

// Status reports that the mirror is not built yet.
func (m *Mirror) Status() Status {
	return Status{State: placeholder.NotBuilt, Summary: "repositories arrive with the mirror issues"}
}

// Handler serves /repos/ and /files/. Not built yet: it says so with 501.
func (m *Mirror) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "airgapd mirror: not built yet", http.StatusNotImplemented)
	})
}
