package api

import (
	"context"
	"fmt"
	"net/url"
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
	q := url.Values{}
	for _, n := range names {
		q.Add("repo", n)
	}
	resp, err := c.post(ctx, "/api/v1/apt/sync?"+q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	last, err := DecodeStream(resp.Body, func(ev SyncEvent) {
		if ev.Progress != nil && progress != nil {
			progress(*ev.Progress)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%s ended the sync without a result (did the server stop?): %w", c.display, err)
	}
	return last.Results, last.Err()
}
