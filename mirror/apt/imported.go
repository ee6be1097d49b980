package apt

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/airgapd/airgapd/mirror"
)

// What bundles (mirror/bundle) need of the APT service: the configured
// trees, a tree's published files to read, and a tree to publish.

// Names lists the configured repos.
func (a *Apt) Names() []string {
	var out []string
	for _, r := range a.book.Config().Repos {
		out = append(out, r.Name)
	}
	return out
}

// Published takes repo name's lock (waiting for a run under way) and lists
// its published tree; Release drops the lock.
func (a *Apt) Published(ctx context.Context, name string) (mirror.Published, error) {
	if _, ok := a.book.Config().Lookup(name); !ok {
		return mirror.Published{}, fmt.Errorf("%w %q in the config", ErrUnknownRepo, name)
	}
	st := a.Store(name)
	unlock, err := st.LockWait(ctx)
	if err != nil {
		return mirror.Published{}, err
	}
	cur, err := st.Current()
	if err == nil && cur == "" {
		err = mirror.ErrNotPublished
	}
	p := mirror.Published{Revision: readState(st).Revision, Release: unlock}
	if err == nil {
		err = filepath.WalkDir(cur, func(fp string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, _ := filepath.Rel(cur, fp)
			p.Files = append(p.Files, mirror.PublishedFile{Path: filepath.ToSlash(rel), Source: fp})
			return nil
		})
	}
	if err != nil {
		unlock()
		return mirror.Published{}, err
	}
	return p, nil
}

// PublishImported publishes files as repo name's tree under its lock,
// marked as imported from origin's bundle. place puts a file the pool
// lacks there.
func (a *Apt) PublishImported(ctx context.Context, name string, origin mirror.Origin, files []mirror.TreeFile, place mirror.PlaceFunc) error {
	if !mirror.ValidName(name) {
		return fmt.Errorf("%q is not a usable repo name", name)
	}
	st := a.Store(name)
	return st.PublishImported(ctx, origin, files, place, func(string) error {
		state := readState(st)
		state.Packages, state.Bytes = 0, 0
		for _, f := range files {
			if strings.HasSuffix(f.Path, ".deb") {
				state.Packages++
				state.Bytes += f.Size
			}
		}
		state.Revision, state.Published, state.LastResult, state.LastError = origin.Revision, a.now(), "ok", ""
		if err := st.WriteState(state); err != nil {
			return err
		}
		a.book.SetState(name, state)
		return nil
	})
}
