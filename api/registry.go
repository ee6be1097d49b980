package api

import "time"

// RegistryStatus is the registry's state for the UI, API and metrics.
type RegistryStatus struct {
	State   string `json:"state"`
	Summary string `json:"summary"`
	// Storage is the driver and where it keeps data.
	Storage      string               `json:"storage"`
	Users        int                  `json:"users"`
	PullFrom     []string             `json:"pull_from"`
	Repositories []RegistryRepoStatus `json:"repositories"`
	// RepositoriesOmitted counts repositories past the status's bound.
	RepositoriesOmitted int       `json:"repositories_omitted,omitempty"`
	Tags                int       `json:"tags"`
	Blobs               int       `json:"blobs"`
	Bytes               int64     `json:"bytes"`
	CountedAt           time.Time `json:"counted_at"`
	Pulls               int64     `json:"pulls"`
	Pushes              int64     `json:"pushes"`
	Deletes             int64     `json:"deletes"`
	BytesSent           int64     `json:"bytes_sent"`
	BytesReceived       int64     `json:"bytes_received"`
	AuthFailures        int64     `json:"auth_failures"`
	GCRunning           bool      `json:"gc_running"`
	LastGC              *GCResult `json:"last_gc,omitempty"`
	// Mirrors names the upstreams served through this registry
	// (registry.mirrors); Upstreams has each one's reachability and what
	// was pulled through.
	Mirrors   []string                 `json:"mirrors,omitempty"`
	Upstreams []RegistryUpstreamStatus `json:"upstreams,omitempty"`
}

// RegistryRepoStatus is one repository in RegistryStatus.
type RegistryRepoStatus struct {
	Name      string   `json:"name"`
	Tags      []string `json:"tags"`
	Manifests int      `json:"manifests"`
	// Bytes is the size of the blobs linked into this repository; blobs
	// shared between repositories count in each.
	Bytes int64 `json:"bytes"`
}

// RegistryUpstreamStatus is one mirrored upstream in RegistryStatus.
type RegistryUpstreamStatus struct {
	Name      string     `json:"name"`
	URL       string     `json:"url"`
	Reachable bool       `json:"reachable"`
	LastOK    *time.Time `json:"last_ok,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	// LastErrorAt is when LastError happened.
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// Hits are manifests and blobs served from the cache without fetching;
	// Misses are those fetched from the upstream; Refreshes are tag
	// lookups checked against it.
	Hits      int64 `json:"hits"`
	Misses    int64 `json:"misses"`
	Refreshes int64 `json:"refreshes"`
	Errors    int64 `json:"errors"`
	// BytesFetched counts blob and manifest bytes read from the upstream.
	BytesFetched int64 `json:"bytes_fetched"`
	// InFlight are blob downloads running now.
	InFlight int64 `json:"in_flight"`
}

// GCResult is what one garbage collection removed (or, dry, would remove):
// `airgapd registry gc`'s answer and the registry status's last_gc.
type GCResult struct {
	DryRun   bool      `json:"dry_run"`
	Started  time.Time `json:"started"`
	Duration float64   `json:"duration_seconds"`
	// Blobs are the blobs no manifest references any more, sorted by digest.
	Blobs []GCBlob `json:"blobs"`
	Bytes int64    `json:"bytes"`
	// LayerLinks counts repositories' links to those blobs.
	LayerLinks int `json:"layer_links"`
	// Kept are unreferenced blobs of pushes in progress, left for the push
	// to finish.
	Kept  []string `json:"kept,omitempty"`
	Error string   `json:"error,omitempty"`
}

// GCBlob is one blob in a GCResult.
type GCBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// RegistryImportResult lists what a registry import stored.
type RegistryImportResult struct {
	Format string          `json:"format"` // oci-layout | docker-save
	Images []ImportedImage `json:"images"`
}

// ImportedImage is one image (or index) stored under Name.
type ImportedImage struct {
	Name   string `json:"name"`   // repo:tag
	Digest string `json:"digest"` // of the manifest or index, unchanged
}
