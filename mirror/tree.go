package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// TreeFile is one file of a tree to publish: its slash-separated path in
// the tree, its checksum and size.
type TreeFile struct {
	Path string
	Sum  Checksum
	Size int64
}

// PlaceFunc puts the verified content of f at dst (a pool path) when the
// pool lacks it.
type PlaceFunc func(ctx context.Context, f TreeFile, dst string) error

// PublishTree publishes files as the repo's tree, in one switch: each file
// the pool lacks is put there by place, every file is linked into a new
// snapshot, and the snapshot is published. Call it holding the lock. It is
// the one code path for a tree known by its checksums, whatever its
// format: a bundle's verified blobs, a peer's published tree (FetchPlace).
func (s Store) PublishTree(ctx context.Context, files []TreeFile, place PlaceFunc) (string, error) {
	tmp, err := s.NewSnapshot(time.Now())
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // gone by then when published
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if err := f.Sum.Valid(); err != nil {
			return "", fmt.Errorf("%s: %w", f.Path, err)
		}
		pool := s.Pool(f.Sum)
		if !s.Has(f.Sum) {
			if err := os.MkdirAll(filepath.Dir(pool), 0o750); err != nil {
				return "", err
			}
			if err := place(ctx, f, pool); err != nil {
				return "", fmt.Errorf("%s: %w", f.Path, err)
			}
		}
		if err := Link(pool, tmp, f.Path); err != nil {
			return "", fmt.Errorf("%s: %w", f.Path, err)
		}
	}
	final, err := s.Publish(tmp)
	if err != nil {
		return "", fmt.Errorf("publish: %w", err)
	}
	return final, nil
}

// FetchPlace is a PlaceFunc that fetches each file from the first of bases
// (base + path: a peer's published tree, for HA replication) that gives
// it with the right checksum, resuming what a killed run left.
func (s Store) FetchPlace(f *Fetcher, bases []string) PlaceFunc {
	return func(ctx context.Context, tf TreeFile, dst string) error {
		urls := make([]string, len(bases))
		for i, b := range bases {
			urls[i] = b + tf.Path
		}
		return f.FetchAny(ctx, urls, s.Partial(tf.Sum), dst, tf.Sum, tf.Size, nil, func(int64) {})
	}
}

// LinkOrCopy hard-links src to dst, or copies it (by way of dst.part and
// a rename) across file systems. An existing dst is left as it is.
func LinkOrCopy(src, dst string) error {
	err := os.Link(src, dst)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return nil
	}
	if !errors.Is(err, syscall.EXDEV) && !errors.Is(err, syscall.EPERM) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst+".part", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(dst+".part", dst)
}

// ErrNotPublished: the tree has no published snapshot yet.
var ErrNotPublished = errors.New("nothing published")

// PublishedFile is one file of a published tree: Path in the tree
// (slash-separated), Source where it is on disk.
type PublishedFile struct {
	Path   string
	Source string
}

// Published is a format's published tree (an RPM repo, an APT repo, a
// PyPI index …), held under the tree's lock until Release, so no sync
// swaps it away while a bundle reads it.
type Published struct {
	Revision string
	Files    []PublishedFile
	Release  func()
}

// PublishImported publishes files as the store's tree the way every
// format does for a bundle: under the tree's lock, marked as imported
// from origin, then after(dir) with the published snapshot's folder,
// still under the lock, for the format's own state.
func (s Store) PublishImported(ctx context.Context, origin Origin, files []TreeFile, place PlaceFunc, after func(dir string) error) error {
	unlock, err := s.LockWait(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.SetOrigin(origin); err != nil {
		return err
	}
	dir, err := s.PublishTree(ctx, files, place)
	if err != nil {
		return err
	}
	return after(dir)
}
