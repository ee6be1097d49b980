package bundle

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/airgapd/airgapd/internal/humanize"

	"golang.org/x/sys/unix"

	"github.com/airgapd/airgapd/mirror/rpm"
)

// FreeSpaceFunc says how many bytes an unprivileged writer may still
// write on the file system holding dir (statfs's f_bavail × f_bsize).
type FreeSpaceFunc func(dir string) (int64, error)

// statfsFree is the FreeSpaceFunc of a real file system.
func statfsFree(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// spaceNeed is what an import will write on one file system.
type spaceNeed struct {
	dir   string // the first folder named for it
	bytes int64
	what  []string
}

// checkSpace refuses, before anything is written, an import whose blobs
// would not fit: the staging (blobs not staged yet, and the registry's
// copy of the images' blobs, both under data_dir) and, when they are on
// other file systems than the staging, the files folder and the repos
// (copied there, not linked).
func (c *Carrier) checkSpace(bm *Manifest, cfg rpm.Config, images []Image, hexID string) error {
	size := map[string]int64{}
	for _, b := range bm.Blobs {
		size[b.Digest] = b.Size
	}
	staging := filepath.Join(c.dir(), "staging", hexID)
	var toStage, imageBytes, fileBytes, repoBytes int64
	for _, b := range bm.Blobs {
		if _, err := os.Stat(filepath.Join(staging, filepath.FromSlash(blobEntry(b.Digest)))); err != nil {
			toStage += b.Size
		}
	}
	counted := map[string]bool{}
	for _, im := range images {
		for _, b := range im.Blobs {
			if !counted[b] {
				counted[b] = true
				imageBytes += size[b]
			}
		}
	}
	for _, f := range bm.Files {
		fileBytes += size[f.Digest]
	}
	for _, r := range bm.Repos {
		for _, f := range r.Files {
			repoBytes += size[f.Digest]
		}
	}
	var needs []*spaceNeed
	byDevice := map[uint64]*spaceNeed{}
	add := func(dir string, bytes int64, what string, onlyIfOther bool) error {
		if bytes == 0 {
			return nil
		}
		probe, dev, err := existingAncestor(dir)
		if err != nil {
			return err
		}
		n, ok := byDevice[dev]
		if ok && onlyIfOther {
			return nil // hard links on the staging's file system take no room
		}
		if !ok {
			n = &spaceNeed{dir: probe}
			byDevice[dev] = n
			needs = append(needs, n)
		}
		n.bytes += bytes
		n.what = append(n.what, what)
		return nil
	}
	if err := add(staging, toStage, "the blobs to verify", false); err != nil {
		return err
	}
	if err := add(filepath.Join(c.dataDir, "registry"), imageBytes, "the registry's copy of the images", false); err != nil {
		return err
	}
	if cfg.Files != "" {
		if err := add(cfg.Files, fileBytes, "the files, copied", true); err != nil {
			return err
		}
	}
	if err := add(filepath.Join(c.dataDir, "mirror", "repos"), repoBytes, "the repos, copied", true); err != nil {
		return err
	}
	free := c.freeSpace
	if free == nil {
		free = statfsFree
	}
	for _, n := range needs {
		have, err := free(n.dir)
		if err != nil {
			return fmt.Errorf("how much room is left for the import: %w", err)
		}
		if n.bytes > have {
			return fmt.Errorf("not enough room for this bundle: it needs %s on the file system of %s (%s) and %s is free there; free some space (or move data_dir) and run again; nothing was written",
				sizeText(n.bytes), n.dir, strings.Join(n.what, ", "), sizeText(have))
		}
	}
	return nil
}

// existingAncestor returns dir, or its nearest ancestor that exists, and
// the device it is on.
func existingAncestor(dir string) (string, uint64, error) {
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil {
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok {
				return p, 0, nil
			}
			return p, uint64(st.Dev), nil
		}
		if !errors.Is(err, fs.ErrNotExist) || p == filepath.Dir(p) {
			return "", 0, err
		}
	}
}

// sizeText is n bytes for a person, and exactly: 9.8 GiB (10522669875 bytes).
func sizeText(n int64) string {
	if n < 1024 {
		return humanize.Bytes(n)
	}
	return fmt.Sprintf("%s (%d bytes)", humanize.Bytes(n), n)
}
