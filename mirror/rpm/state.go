package rpm

import "github.com/airgapd/airgapd/mirror"

// repoState is an RPM repo's state.json: the store's record of the last
// run and what is published, and what decides an RPM repo's up-to-date
// check.
type repoState struct {
	mirror.State
	Arch []string `json:"arch,omitempty"` // the filter it was synced with
	// Policy is the keep and gpgcheck it was synced with (syncPolicy).
	Policy string `json:"policy,omitempty"`
	// Local repos: what the published index was built from (file names,
	// sizes, mtimes and options), and how many headers its run read.
	Fingerprint string `json:"fingerprint,omitempty"`
	HeadersRead int    `json:"headers_read,omitempty"`
}

// readState reads st's state.json; missing or damaged, it is empty.
func readState(st mirror.Store) repoState {
	var s repoState
	st.ReadState(&s)
	return s
}

// syncTracker follows a sync's or index's progress.
type syncTracker = mirror.Tracker[mirror.Progress, *mirror.Progress]
