package api

// AptStatus is the APT service's state for the UI, API and metrics: its
// repos, in the mirror's RepoStatus shape.
type AptStatus struct {
	State   string       `json:"state"`
	Summary string       `json:"summary"`
	Repos   []RepoStatus `json:"repos"`
}
