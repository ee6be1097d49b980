package pypi

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/airgapd/airgapd/mirror"
)

// What bundles (mirror/bundle) need of the index: its trees (Names,
// Store), a tree's published files to read, and a tree to publish from a
// bundle's verified blobs.

// ErrUnknownTree: the name is not one of Names.
var ErrUnknownTree = fmt.Errorf("no such pypi tree (they are %q and %q)", TreeIndex, TreeLocal)

func known(name string) bool { return name == TreeIndex || name == TreeLocal }

// Published takes tree name's lock (waiting for a sync or upload under
// way) and lists its published files, index.json included.
func (x *Index) Published(ctx context.Context, name string) (mirror.Published, error) {
	if !known(name) {
		return mirror.Published{}, fmt.Errorf("%w: %q", ErrUnknownTree, name)
	}
	st := x.Store(name)
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
	p := mirror.Published{Revision: x.state(name).Revision, Release: unlock}
	err = filepath.WalkDir(cur, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(cur, path)
		p.Files = append(p.Files, mirror.PublishedFile{Path: filepath.ToSlash(rel), Source: path})
		return nil
	})
	if err != nil {
		unlock()
		return mirror.Published{}, err
	}
	return p, nil
}

// PublishImported publishes files (a tree Published gave on another
// host, index.json included) as tree name, under its lock, marked as
// imported from origin's bundle. place puts a file the pool lacks there.
func (x *Index) PublishImported(ctx context.Context, name string, origin mirror.Origin, files []mirror.TreeFile, place mirror.PlaceFunc) error {
	if !known(name) {
		return fmt.Errorf("%w: %q", ErrUnknownTree, name)
	}
	hasIndex := false
	for _, f := range files {
		hasIndex = hasIndex || f.Path == indexFile
	}
	if !hasIndex {
		return fmt.Errorf("pypi %s: the bundle's tree has no %s", name, indexFile)
	}
	st := x.Store(name)
	return st.PublishImported(ctx, origin, files, place, func(dir string) error {
		var t treeIndex
		if b, err := os.ReadFile(filepath.Join(dir, indexFile)); err == nil {
			json.Unmarshal(b, &t)
		}
		state := x.state(name)
		state.Revision, state.Published = origin.Revision, x.deps.Now()
		state.LastResult, state.LastError = "ok", ""
		state.Projects, state.Packages, state.Bytes = counts(t.Projects)
		return x.setState(name, state)
	})
}
