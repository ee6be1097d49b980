package api

import (
	"context"
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
	res, err := c.syncStream(ctx, "/api/v1/goproxy/sync", nil, progress)
	if len(res) == 0 {
		return SyncResult{}, err
	}
	return res[0], err
}
