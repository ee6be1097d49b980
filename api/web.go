package api

import "strings"

// WebStatus is web's state for the UI, API and metrics.
type WebStatus struct {
	State   string `json:"state"`
	Summary string `json:"summary"`
	// Listeners are "NAME URL": ui, mirror, registry, control.
	Listeners []string `json:"listeners"`
}

// Listener is the URL of the listener named name, or "".
func (w WebStatus) Listener(name string) string {
	for _, l := range w.Listeners {
		if n, url, ok := strings.Cut(l, " "); ok && n == name {
			return url
		}
	}
	return ""
}
