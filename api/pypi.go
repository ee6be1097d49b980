package api

import "time"

// ServicePyPI is the pypi section's service.
const ServicePyPI = "pypi"

// PyPIStatus is the PyPI index's state: the synced tree and the in-house
// (uploaded) one.
type PyPIStatus struct {
	State   string           `json:"state"`
	Summary string           `json:"summary"`
	Trees   []PyPITreeStatus `json:"trees"`
}

// PyPITreeStatus is one tree of the index: "index" (synced from the
// upstreams) or "local" (uploads).
type PyPITreeStatus struct {
	Name       string    `json:"name"`
	Revision   string    `json:"revision,omitempty"`
	Projects   int       `json:"projects"`
	Files      int       `json:"files"`
	Bytes      int64     `json:"bytes"`
	LastSync   time.Time `json:"last_sync,omitzero"`
	LastResult string    `json:"last_result,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	Published  time.Time `json:"published,omitzero"`
	Upstream   string    `json:"upstream,omitempty"`
	Progress   *Progress `json:"progress,omitempty"`
}
