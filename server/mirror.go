package server

import (
	"context"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/mirror/rpm"
	"github.com/airgapd/airgapd/web"
)

// mirrorSection is what the mirror instance is built from: its section and
// how nodes reach this host (the .repo files' baseurls).
func mirrorSection(c *Config) any {
	if !c.Enabled("mirror") {
		return nil
	}
	type mirrorInputs struct {
		Mirror    rpm.Config
		Advertise Advertise
	}
	return mirrorInputs{Mirror: *c.Mirror, Advertise: c.Advertise}
}

// mirrorListen is the address mirror.listen is bound to, with its real
// port when the config said 0.
func (s *Server) mirrorListen(c *Config) string {
	for _, l := range c.listens() {
		if l.path == "mirror.listen" {
			if a := s.sockets.boundAddr(keyFor(l)); a != "" {
				return a
			}
			return l.addr
		}
	}
	return ""
}

var _ web.MirrorSyncer = (*Server)(nil)

// SyncMirror implements web.MirrorSyncer on the running mirror: the
// control socket's POST /api/v1/mirror/sync, which `airgapd mirror sync`
// uses while a server runs.
func (s *Server) SyncMirror(ctx context.Context, names []string, progress func(api.Progress)) ([]api.SyncResult, error) {
	if err := s.standbyError(); err != nil {
		return nil, err
	}
	m, err := capability[*rpm.Mirror](s, "mirror") // the concrete type: apt's Sync has the same shape
	if err != nil {
		return nil, err
	}
	return m.Sync(ctx, names, progress)
}
