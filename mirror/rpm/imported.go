package rpm

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/airgapd/airgapd/mirror"
)

// What bundles (mirror/bundle) need of the RPM mirror: its config, a
// repo's published tree to read, and a tree to publish as an imported
// repo. Nothing else of this package is theirs to touch.

// Config is the mirror's config as it is now.
func (m *Mirror) Config() Config { return m.book.Config() }

// ErrNotPublished: the repo has no published tree yet.
var ErrNotPublished = mirror.ErrNotPublished

// PublishedFile and Published are the store's, as every format's.
type (
	PublishedFile = mirror.PublishedFile
	Published     = mirror.Published
)

// Published takes repo name's lock (waiting for a sync under way) and
// lists its published tree: a mirror's snapshot, or a local repo's folder
// as it is with the published repodata/ in place of the folder's.
func (m *Mirror) Published(ctx context.Context, name string) (Published, error) {
	r, ok := m.Config().Lookup(name)
	if !ok {
		return Published{}, fmt.Errorf("%w %q in the config", ErrUnknownRepo, name)
	}
	st := m.Store(name)
	unlock, err := st.LockWait(ctx)
	if err != nil {
		return Published{}, err
	}
	cur, err := st.Current()
	if err == nil && cur == "" {
		err = ErrNotPublished
	}
	if err != nil {
		unlock()
		return Published{}, err
	}
	p := Published{Revision: readState(st).Revision, Release: unlock}
	if r.Mirrored() {
		err = walkTree(cur, "", false, &p.Files)
	} else if err = walkTree(r.Path, "", true, &p.Files); err == nil {
		err = walkTree(filepath.Join(cur, "repodata"), "repodata/", false, &p.Files)
	}
	if err != nil {
		unlock()
		return Published{}, err
	}
	return p, nil
}

// walkTree appends every regular file under root to files, at prefix +
// its path; skipRepodata leaves a local folder's own repodata/ out.
func walkTree(root, prefix string, skipRepodata bool, files *[]PublishedFile) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if skipRepodata && rel == "repodata" {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			*files = append(*files, PublishedFile{Path: prefix + rel, Source: p})
		}
		return nil
	})
}

// Store is repo name's folder in the content store.
func (m *Mirror) Store(name string) mirror.Store { return mirror.RepoStore(m.deps.DataDir, name) }

// PublishImported publishes files as repo name's tree, under its lock, as
// a sync does, marked as imported from origin's bundle: it is served under
// its name and /repos/NAME.repo even when the config does not list it.
// place puts a file the pool lacks there.
func (m *Mirror) PublishImported(ctx context.Context, name string, origin mirror.Origin, files []mirror.TreeFile, place mirror.PlaceFunc) error {
	st := m.Store(name)
	return st.PublishImported(ctx, origin, files, place, func(string) error {
		var pkgs int
		var bytes int64
		for _, f := range files {
			if strings.HasSuffix(f.Path, ".rpm") {
				pkgs++
				bytes += f.Size
			}
		}
		state := readState(st)
		state.Revision, state.Published, state.Packages, state.Bytes = origin.Revision, m.now(), pkgs, bytes
		state.LastResult, state.LastError = "ok", ""
		if err := st.WriteState(state); err != nil {
			return err
		}
		m.book.SetState(name, state)
		return nil
	})
}

// isImported reports whether repo name came from a bundle.
func (m *Mirror) isImported(name string) bool {
	return mirror.ValidName(name) && m.Store(name).Imported()
}

// SetImportProgress publishes a bundle import's progress to the status
// (bundle_import); the last one stays there.
func (m *Mirror) SetImportProgress(p *mirror.ImportProgress) {
	m.mu.Lock()
	m.bundleImport = p
	m.mu.Unlock()
}

// bundleImportStatus is the import under way, or the last one.
func (m *Mirror) bundleImportStatus() *mirror.ImportProgress {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bundleImport == nil {
		return nil
	}
	p := *m.bundleImport
	return &p
}

// now is the mirror's clock (Deps.Now).
func (m *Mirror) now() time.Time { return m.deps.Now() }
