package api

import (
	"context"
	"fmt"
	"time"
)

// GoProxyStatus is the Go module proxy's state for the UI, API and
// metrics: its one published tree, the last sync and a sync under way.
type GoProxyStatus struct {
	State    string `json:"state"`
	Summary  string `json:"summary"`
	Upstream string `json:"upstream,omitempty"`
	// SumDB is the name of the checksum database proxied, when one is.
	SumDB    string `json:"sumdb,omitempty"`
	Revision string `json:"revision,omitempty"`
	// Modules is how many module paths the tree holds, Versions how many
	// versions of them, Bytes the size of their zips.
	Modules  int   `json:"modules"`
	Versions int   `json:"versions"`
	Bytes    int64 `json:"bytes"`
	// SumDBLookups is how many checksum database answers the tree keeps.
	SumDBLookups int       `json:"sumdb_lookups"`
	LastSync     time.Time `json:"last_sync,omitzero"`
	LastResult   string    `json:"last_result,omitempty"`
	LastError    string    `json:"last_error,omitempty"`
	Published    time.Time `json:"published,omitzero"`
	// Imported: the tree came from a bundle.
	Imported bool      `json:"imported,omitempty"`
	Progress *Progress `json:"progress,omitempty"`
}

// SyncGoProxy asks the running server to sync the Go module proxy,
// calling progress as the server reports it. With no server running the
// error wraps ErrNotRunning.
func (c *Client) SyncGoProxy(ctx context.Context, progress func(Progress)) (SyncResult, error) {
	resp, err := c.post(ctx, "/api/v1/goproxy/sync")
	if err != nil {
		return SyncResult{}, err
	}
	defer resp.Body.Close()
	last, err := DecodeStream(resp.Body, func(ev SyncEvent) {
		if ev.Progress != nil && progress != nil {
			progress(*ev.Progress)
		}
	})
	if err != nil {
		return SyncResult{}, fmt.Errorf("%s ended the sync without a result (did the server stop?): %w", c.display, err)
	}
	var res SyncResult
	if len(last.Results) > 0 {
		res = last.Results[0]
	}
	return res, last.Err()
}
