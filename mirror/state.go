package mirror

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/airgapd/airgapd/internal/atomicfile"
)

const (
	stateFile  = "state.json"
	originFile = "imported.json"
)

// State is what every format records in state.json about a repo's last
// run and what is published. A format embeds it in its own record
// (embedded fields are flattened in the JSON, so the file stays one flat
// object) and adds what decides its own up-to-date check.
type State struct {
	LastSync   time.Time `json:"last_sync,omitzero"`
	LastResult string    `json:"last_result,omitempty"` // ok | failed
	LastError  string    `json:"last_error,omitempty"`
	Duration   float64   `json:"duration_seconds,omitempty"`
	Downloaded int64     `json:"downloaded_bytes,omitempty"`
	// The published snapshot: its revision, when, and how many packages
	// (of whatever format) of how many bytes it holds.
	Revision  string    `json:"revision,omitempty"`
	Published time.Time `json:"published,omitzero"`
	Packages  int       `json:"packages"`
	Bytes     int64     `json:"bytes"`
	// Upstream is where the last run fetched from (the mirror a list
	// gave, variables substituted).
	Upstream string `json:"upstream,omitempty"`
}

// ReadState reads state.json into v (a format's record embedding State).
// A missing or damaged file leaves v as it is: the next run rebuilds.
func (s Store) ReadState(v any) {
	if b, err := os.ReadFile(filepath.Join(s.Dir, stateFile)); err == nil {
		json.Unmarshal(b, v)
	}
}

// WriteState replaces state.json with v, atomically.
func (s Store) WriteState(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(s.Dir, stateFile), b, 0o640)
}

// Origin, as imported.json in a repo's folder, says its tree came from a
// bundle, not from a sync: it is served under its name even when the
// config does not list it.
type Origin struct {
	Bundle   string    `json:"bundle"`
	Created  time.Time `json:"created"`
	Revision string    `json:"revision,omitempty"`
}

// SetOrigin marks the repo as imported.
func (s Store) SetOrigin(o Origin) error {
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(s.Dir, originFile), b, 0o644)
}

// Imported reports whether the repo's tree came from a bundle.
func (s Store) Imported() bool {
	_, err := os.Stat(filepath.Join(s.Dir, originFile))
	return err == nil
}

// ImportedRepos lists the repos under dataDir whose tree came from a
// bundle.
func ImportedRepos(dataDir string) []string {
	entries, _ := os.ReadDir(reposDir(dataDir))
	var names []string
	for _, e := range entries {
		if e.IsDir() && ValidName(e.Name()) && RepoStore(dataDir, e.Name()).Imported() {
			names = append(names, e.Name())
		}
	}
	return names
}

// cleanTemps removes what a writer of path killed mid-write left.
func cleanTemps(path string) { atomicfile.Clean(path) }
