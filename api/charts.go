package api

import (
	"context"
	"net/url"
	"time"
)

// ChartsStatus is the Helm charts service's state for the UI, API and
// metrics: what the classic view (/charts/index.yaml) lists, and each
// upstream repository's last sync.
type ChartsStatus struct {
	State   string `json:"state"`
	Summary string `json:"summary"`
	// Charts and Versions are what the view lists; Bytes their .tgz.
	Charts   int              `json:"charts"`
	Versions int              `json:"versions"`
	Bytes    int64            `json:"bytes"`
	Repos    []ChartRepoState `json:"repos"`
	// Entries are the charts the view lists, by name, each version newest
	// first.
	Entries []ChartEntry `json:"entries"`
}

// ChartEntry is one chart in ChartsStatus.
type ChartEntry struct {
	Name     string   `json:"name"`
	Versions []string `json:"versions"`
	Bytes    int64    `json:"bytes"` // of every version's .tgz
}

// ChartRepoState is one upstream chart repository in ChartsStatus.
type ChartRepoState struct {
	Name       string    `json:"name"`
	URL        string    `json:"url"`
	Charts     []string  `json:"charts"` // as configured: NAME or NAME@RANGE
	LastSync   time.Time `json:"last_sync,omitzero"`
	LastResult string    `json:"last_result,omitempty"` // ok | failed
	LastError  string    `json:"last_error,omitempty"`
	Copied     []string  `json:"copied,omitempty"` // NAME-VERSION the last sync pushed
	Progress   *Progress `json:"progress,omitempty"`
}

// ChartImages is what `airgapd charts images` prints: the images a chart's
// default values and templates name, found by a heuristic.
type ChartImages struct {
	Chart  string   `json:"chart"` // NAME-VERSION
	Images []string `json:"images"`
}

// SyncCharts asks the running server to sync the named upstream chart
// repositories (all when none), calling progress as it goes. The results
// use SyncResult: Packages is the chart versions chosen, Fetched those
// copied.
func (c *Client) SyncCharts(ctx context.Context, names []string, progress func(Progress)) ([]SyncResult, error) {
	return c.syncStream(ctx, "/api/v1/charts/sync", names, progress)
}

// ChartImagesOf asks the running server which images chart NAME-VERSION
// (as /charts/index.yaml lists it) references.
func (c *Client) ChartImagesOf(ctx context.Context, chart string) (ChartImages, error) {
	var out ChartImages
	err := c.get(ctx, "/api/v1/charts/images?"+url.Values{"chart": {chart}}.Encode(), &out)
	return out, err
}
