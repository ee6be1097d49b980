package api

import "time"

// MirrorStatus is the mirror's state for the UI, API and metrics.
type MirrorStatus struct {
	State   string       `json:"state"`
	Summary string       `json:"summary"`
	Repos   []RepoStatus `json:"repos"`
	Files   string       `json:"files,omitempty"`
	// BundleImport is the bundle import under way, or the last one since
	// the server started.
	BundleImport *ImportProgress `json:"bundle_import,omitempty"`
}

// RepoStatus is one repo in the mirror's status.
type RepoStatus struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"` // mirror | local | imported (from a bundle, not in the config)
	BaseURL string `json:"baseurl,omitempty"`
	// Upstream is the baseurl the last sync used (the mirror a mirrorlist
	// or metalink gave, variables substituted).
	Upstream string `json:"upstream,omitempty"`
	Path     string `json:"path,omitempty"`
	Revision string `json:"revision,omitempty"`
	Packages int    `json:"packages"`
	Bytes    int64  `json:"bytes"`
	// LastSync is when the last sync began; LastResult ok or failed.
	LastSync   time.Time `json:"last_sync,omitzero"`
	LastResult string    `json:"last_result,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	Published  time.Time `json:"published,omitzero"`
	Progress   *Progress `json:"progress,omitempty"` // a sync under way
	// HeadersRead is how many RPM headers a local repo's last index read
	// (the others were reused).
	HeadersRead int `json:"headers_read,omitempty"`
	// Schedule is a mirrored repo's sync_every or sync_at ("every 6h0m0s",
	// "daily at 02:30"), and NextSync when the running server syncs it next
	// (in the past: due, or under way).
	Schedule string    `json:"schedule,omitempty"`
	NextSync time.Time `json:"next_sync,omitzero"`
}

// Progress is one repo's sync (or index) as it goes, for the progress bar,
// the UI and the status.
type Progress struct {
	Repo  string `json:"repo"`
	Phase string `json:"phase"` // metadata | packages | verify (gpgcheck) | publish | done | failed
	// Packages is how many packages the upstream lists (after the arch
	// and keep filters); ToFetch of them were missing here, Fetched have arrived.
	Packages int `json:"packages"`
	ToFetch  int `json:"to_fetch"`
	Fetched  int `json:"fetched"`
	// Bytes is the size of what is to be fetched; BytesDone has arrived
	// (including what an interrupted run left).
	Bytes     int64     `json:"bytes"`
	BytesDone int64     `json:"bytes_done"`
	Started   time.Time `json:"started"`
	// Rate is bytes per second over the sync so far.
	Rate float64 `json:"rate"`
}

// SetRate sets Rate from the bytes done since Started.
func (p *Progress) SetRate() { p.Rate = bytesPerSecond(p.BytesDone, p.Started) }

// SyncResult is how one repo's sync (or index) ended.
type SyncResult struct {
	Repo       string  `json:"repo"`
	OK         bool    `json:"ok"`
	Error      string  `json:"error,omitempty"`
	UpToDate   bool    `json:"up_to_date,omitempty"`
	Revision   string  `json:"revision,omitempty"`
	Packages   int     `json:"packages"`
	Fetched    int     `json:"fetched"`
	Downloaded int64   `json:"downloaded_bytes"`
	Duration   float64 `json:"duration_seconds"`
	// An index (local repos): RPM headers read this run, and entries
	// reused from the last index (files unchanged in size and mtime).
	Indexed     bool `json:"indexed,omitempty"`
	HeadersRead int  `json:"headers_read,omitempty"`
	Reused      int  `json:"reused,omitempty"`
}

// ImportProgress is a bundle import as it goes, for the progress bar, the
// UI and the status. The last one stays in the status after the import
// ends.
type ImportProgress struct {
	Bundle string `json:"bundle"` // the bundle's id
	Path   string `json:"path"`   // as given to the import
	Phase  string `json:"phase"`  // verify | publish | done | failed
	// Bytes is the size of the bundle (all parts); BytesDone of it has
	// been read and checked.
	Bytes     int64 `json:"bytes"`
	BytesDone int64 `json:"bytes_done"`
	// Blobs is how many blobs the bundle carries; BlobsDone have been
	// verified (or were verified by an interrupted run).
	Blobs     int `json:"blobs"`
	BlobsDone int `json:"blobs_done"`
	// Item is what is being published: "repo NAME", "files", "images".
	Item    string    `json:"item,omitempty"`
	Started time.Time `json:"started"`
	// Rate is bytes read per second over the import so far.
	Rate  float64 `json:"rate"`
	Error string  `json:"error,omitempty"`
}

// RateBytes is the rate in whole bytes per second, for the UI's bytes
// filter.
func (p ImportProgress) RateBytes() int64 { return int64(p.Rate) }

// SetRate sets Rate from the bytes read since Started.
func (p *ImportProgress) SetRate() { p.Rate = bytesPerSecond(p.BytesDone, p.Started) }

// bytesPerSecond is done bytes over the time since started.
func bytesPerSecond(done int64, started time.Time) float64 {
	if s := time.Since(started).Seconds(); s > 0 {
		return float64(done) / s
	}
	return 0
}

// BundleImportResult is what a bundle import published.
type BundleImportResult struct {
	ID       string   `json:"id"`
	Repos    []string `json:"repos"`
	Files    int      `json:"files"`
	Images   []string `json:"images"`
	Verified int      `json:"verified_blobs"`
	Reused   int      `json:"reused_blobs"` // staged by an interrupted run, or held by the base
}
