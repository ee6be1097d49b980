package bundle

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/airgapd/airgapd/mirror"
)

// rootedDir is a folder an import writes into (data_dir/bundle with the
// staging, mirror.files, a repo's store) opened as an os.Root: every write
// under it is resolved inside it, so a symlink already there that leads
// outside (files/k8s -> /etc) is refused, never followed. The folder's own
// path is the config's and is taken as it is.
type rootedDir struct {
	root *os.Root
	dir  string
}

// openRooted opens dir (made when missing) as a rootedDir.
func openRooted(dir string) (*rootedDir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &rootedDir{root: r, dir: dir}, nil
}

func (d *rootedDir) Close() error { return d.root.Close() }

// abs is the absolute path of rel (slash-separated) under d, for readers
// outside this package (the registry reads the image layout).
func (d *rootedDir) abs(rel string) string { return filepath.Join(d.dir, filepath.FromSlash(rel)) }

// place puts the file at src at rel (slash-separated) under d: a hard
// link (or, across file systems, a copy) made under a temporary name in
// rel's folder, then renamed over rel, so a reader never sees half a file.
// mode, when not 0, is set on it.
func (d *rootedDir) place(src, rel string, mode fs.FileMode) error {
	parent, base := path.Split(rel)
	parent = filepath.FromSlash(strings.TrimSuffix(parent, "/"))
	if parent == "" {
		parent = "."
	}
	if err := d.root.MkdirAll(parent, 0o755); err != nil {
		return d.explain(rel, err)
	}
	// Cut so the temporary name fits in NAME_MAX (255) whatever the name;
	// an import writes one file at a time, so two names cut alike do not
	// meet.
	tmpBase := ".airgapd-" + base[:min(len(base), 200)] + ".tmp"
	tmp := filepath.Join(parent, tmpBase)
	d.root.Remove(tmp)
	dirf, err := d.root.Open(parent)
	if err != nil {
		return d.explain(rel, err)
	}
	// linkat relative to the folder opened through the root: the new name
	// is a plain name in it, and linkat never follows a symlink there.
	err = unix.Linkat(unix.AT_FDCWD, src, int(dirf.Fd()), tmpBase, 0)
	dirf.Close()
	if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EPERM) {
		err = d.copyIn(src, tmp)
	}
	if err != nil {
		return d.explain(rel, err)
	}
	if mode != 0 {
		if err := d.root.Chmod(tmp, mode); err != nil {
			return d.explain(rel, err)
		}
	}
	if err := d.root.Rename(tmp, filepath.FromSlash(rel)); err != nil {
		d.root.Remove(tmp)
		return d.explain(rel, err)
	}
	return nil
}

// copyIn copies the file at src to the new file rel under d.
func (d *rootedDir) copyIn(src, rel string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := d.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		d.root.Remove(rel)
		return err
	}
	return out.Close()
}

// linkWithin hard-links oldRel to newRel, both under d (copying where the
// file system refuses the link). An existing newRel is left as it is.
func (d *rootedDir) linkWithin(oldRel, newRel string) error {
	err := d.root.Link(filepath.FromSlash(oldRel), filepath.FromSlash(newRel))
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EPERM) {
		err = d.copyIn(d.abs(oldRel), filepath.FromSlash(newRel))
	}
	if err != nil {
		return d.explain(newRel, err)
	}
	return nil
}

// explain adds to a write's error where it was, and names the symlink
// that leads out of d when that is why it failed.
func (d *rootedDir) explain(rel string, err error) error {
	if link, target, ok := d.escapingLink(rel); ok {
		return fmt.Errorf("%s is a symlink to %s, outside %s: refused, nothing is written outside it (remove the link or make it point inside): %w",
			d.abs(link), target, d.dir, err)
	}
	return fmt.Errorf("writing into %s: %w", d.dir, err)
}

// escapingLink finds the first component of rel that is a symlink the
// root will not follow (it leads outside d, or is absolute).
func (d *rootedDir) escapingLink(rel string) (link, target string, ok bool) {
	parts := strings.Split(path.Clean(rel), "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		fi, err := d.root.Lstat(filepath.FromSlash(p))
		if err != nil {
			return "", "", false
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		if _, err := d.root.Stat(filepath.FromSlash(p)); err == nil {
			continue // a symlink that stays inside
		}
		target, _ := d.root.Readlink(filepath.FromSlash(p))
		return p, target, true
	}
	return "", "", false
}

// hashIn returns the sha256 digest of the file at rel under d.
func (d *rootedDir) hashIn(rel string) (string, error) {
	f, err := d.root.Open(filepath.FromSlash(rel))
	if err != nil {
		return "", err
	}
	defer f.Close()
	return hashReader(f)
}

// lock takes an exclusive flock on the file rel under d (made when
// missing) without waiting: mirror.ErrBusy when another holds it. The
// kernel drops it when the process dies.
func (d *rootedDir) lock(rel string) (unlock func(), err error) {
	f, err := d.root.OpenFile(filepath.FromSlash(rel), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, d.explain(rel, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, mirror.ErrBusy
		}
		return nil, fmt.Errorf("lock %s: %w", d.abs(rel), err)
	}
	return func() { f.Close() }, nil
}
