package goproxy

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/airgapd/airgapd/mirror"
)

// What bundles (mirror/bundle) need of the proxy: its tree's name, the
// published tree to read, and a tree to publish as imported.

// Names lists the proxy's trees: one.
func (p *Proxy) Names() []string { return []string{treeName} }

// Store is tree name's folder in the content store.
func (p *Proxy) Store(name string) mirror.Store {
	return mirror.FormatStore(p.deps.DataDir, "goproxy", name)
}

// Published takes the tree's lock (waiting for a sync under way) and
// lists its published files; Release drops the lock.
func (p *Proxy) Published(ctx context.Context, name string) (mirror.Published, error) {
	if name != treeName {
		return mirror.Published{}, fmt.Errorf("goproxy has no tree %q; it has %q", name, treeName)
	}
	st := p.Store(name)
	unlock, err := st.LockWait(ctx)
	if err != nil {
		return mirror.Published{}, err
	}
	cur, err := st.Current()
	if err == nil && cur == "" {
		err = mirror.ErrNotPublished
	}
	if err != nil {
		unlock()
		return mirror.Published{}, err
	}
	pub := mirror.Published{Revision: p.state().Revision, Release: unlock}
	err = filepath.WalkDir(cur, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(cur, path)
		pub.Files = append(pub.Files, mirror.PublishedFile{Path: filepath.ToSlash(rel), Source: path})
		return nil
	})
	if err != nil {
		unlock()
		return mirror.Published{}, err
	}
	return pub, nil
}

// PublishImported publishes files as the tree, under its lock, marked as
// imported from origin's bundle. place puts a file the pool lacks there.
func (p *Proxy) PublishImported(ctx context.Context, name string, origin mirror.Origin, files []mirror.TreeFile, place mirror.PlaceFunc) error {
	if name != treeName {
		return fmt.Errorf("goproxy has no tree %q; it has %q", name, treeName)
	}
	st := p.Store(name)
	return st.PublishImported(ctx, origin, files, place, func(string) error {
		state := p.state()
		state.Revision, state.Published = origin.Revision, p.now()
		state.Packages, state.Bytes, state.Modules, state.Lookups = 0, 0, 0, 0
		paths := map[string]bool{}
		for _, f := range files {
			switch {
			case strings.HasSuffix(f.Path, ".zip"):
				state.Packages++
				state.Bytes += f.Size
			case strings.HasPrefix(f.Path, "sumdb/") && strings.Contains(f.Path, "/lookup/"):
				state.Lookups++
			}
			if mp, _, ok := strings.Cut(f.Path, "/@v/"); ok {
				paths[mp] = true
			}
		}
		state.Modules = len(paths)
		state.LastResult, state.LastError = "ok", ""
		if err := st.WriteState(state); err != nil {
			return err
		}
		p.setState(state)
		return nil
	})
}
