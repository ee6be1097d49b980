package server

import (
	"context"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/mirror"
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
	m, err := capability[interface {
		Sync(ctx context.Context, names []string, progress func(mirror.Progress)) ([]rpm.Result, error)
	}](s, "mirror")
	if err != nil {
		return nil, err
	}
	res, err := m.Sync(ctx, names, func(p mirror.Progress) { progress(api.Progress(p)) })
	return syncResults(res), err
}

// The mirror's status and results become the api package's types here
// until mirror reports them itself; the conversions fail to compile when
// the two shapes part.

// mirrorStatus is the mirror's status as the API reports it.
func mirrorStatus(st rpm.Status) api.MirrorStatus {
	out := api.MirrorStatus{State: st.State, Summary: st.Summary, Files: st.Files}
	if st.BundleImport != nil {
		bi := api.ImportProgress(*st.BundleImport)
		out.BundleImport = &bi
	}
	for _, r := range st.Repos {
		rs := api.RepoStatus{
			Name: r.Name, Kind: r.Kind, BaseURL: r.BaseURL, Upstream: r.Upstream, Path: r.Path,
			Revision: r.Revision, Packages: r.Packages, Bytes: r.Bytes,
			LastSync: r.LastSync, LastResult: r.LastResult, LastError: r.LastError, Published: r.Published,
			HeadersRead: r.HeadersRead, Schedule: r.Schedule, NextSync: r.NextSync,
		}
		if r.Progress != nil {
			p := api.Progress(*r.Progress)
			rs.Progress = &p
		}
		out.Repos = append(out.Repos, rs)
	}
	return out
}

// syncResults is a sync's results as the API reports them (nil for none).
func syncResults(res []rpm.Result) []api.SyncResult {
	if res == nil {
		return nil
	}
	out := make([]api.SyncResult, len(res))
	for i, r := range res {
		out[i] = api.SyncResult(r)
	}
	return out
}
