package apt

import "github.com/airgapd/airgapd/mirror"

// repoState is an APT repo's state.json: the store's record, and what
// decides the up-to-date check.
type repoState struct {
	mirror.State
	// Policy is the suites, components, architectures and keep a mirror
	// was synced with; Releases the SHA256 of each suite's verified
	// InRelease or Release.
	Policy   string            `json:"policy,omitempty"`
	Releases map[string]string `json:"releases,omitempty"`
	// Local repos: what the published index was built from, and each
	// .deb's entry so an unchanged file is not read again.
	Fingerprint string              `json:"fingerprint,omitempty"`
	Debs        map[string]localDeb `json:"debs,omitempty"`
	Keyring     []byte              `json:"keyring,omitempty"` // armored public key(s) for the .sources
}

func readState(st mirror.Store) repoState {
	var s repoState
	st.ReadState(&s)
	return s
}

type tracker = mirror.Tracker[mirror.Progress, *mirror.Progress]
