package api

import (
	"context"
)

// AptStatus is the APT service's state for the UI, API and metrics: its
// repos, in the mirror's RepoStatus shape.
type AptStatus struct {
	State   string       `json:"state"`
	Summary string       `json:"summary"`
	Repos   []RepoStatus `json:"repos"`
}

// SyncApt asks the running server to sync the named APT repos (all
// mirrored ones when none; a local repo named is indexed), calling
// progress as the server reports it. With no server running the error
// wraps ErrNotRunning.
func (c *Client) SyncApt(ctx context.Context, names []string, progress func(Progress)) ([]SyncResult, error) {
	return c.syncStream(ctx, "/api/v1/apt/sync", names, progress)
}
