package mirror

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Store is one repo's folder (Dir), of any format:
//
//	pool/TYPE/AB/DIGEST   every verified file, named by its checksum
//	partial/TYPE-DIGEST   downloads in progress (resumed with Range)
//	snap/ID/              a published tree: hard links into pool/ at the
//	                      paths the format gives them
//	snap/.tmp-ID/         a tree being built; never served
//	current               symlink to snap/ID, replaced with one rename
//	state.json            the last run's record (State)
//	imported.json         the tree came from a bundle (Origin)
//	lock                  flock'ed by whoever changes the repo
//
// Clients only ever see a complete snapshot: the switch is the rename of
// current, and the old snapshot goes only after it.
type Store struct{ Dir string }

// RepoStore returns the store of repo name under dataDir
// (data_dir/mirror/repos/NAME). The name must be ValidName.
func RepoStore(dataDir, name string) Store {
	return Store{Dir: filepath.Join(reposDir(dataDir), name)}
}

// FormatStore returns the store of repo name of another format than RPM
// (apt, pypi, goproxy, charts: data_dir/mirror/FORMAT/NAME), so two
// formats may each have a repo of one name. RPM's repos keep
// data_dir/mirror/repos/NAME (RepoStore), where existing data_dirs have
// them.
func FormatStore(dataDir, format, name string) Store {
	return Store{Dir: filepath.Join(dataDir, "mirror", format, name)}
}

func reposDir(dataDir string) string { return filepath.Join(dataDir, "mirror", "repos") }

// Pool is where the file with checksum sum lives once verified.
func (s Store) Pool(sum Checksum) string {
	return filepath.Join(s.Dir, "pool", hashName(sum.Type), sum.Value[:2], sum.Value)
}

// Partial is where the download of sum grows until it is verified.
func (s Store) Partial(sum Checksum) string {
	return filepath.Join(s.Dir, "partial", hashName(sum.Type)+"-"+sum.Value)
}

// Has reports whether the pool holds sum.
func (s Store) Has(sum Checksum) bool {
	_, err := os.Stat(s.Pool(sum))
	return err == nil
}

// Current returns the published snapshot's folder, or "" when nothing has
// been published yet.
func (s Store) Current() (string, error) {
	target, err := os.Readlink(filepath.Join(s.Dir, "current"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if filepath.IsAbs(target) || strings.Contains(target, "..") {
		return "", fmt.Errorf("%s/current points outside the repo folder", s.Dir)
	}
	return filepath.Join(s.Dir, target), nil
}

// ErrBusy: another run holds the lock.
var ErrBusy = errors.New("another sync of this repo is running")

// Lock takes the repo's lock without waiting (ErrBusy when held). The
// kernel drops it when the process dies, kill -9 included.
func (s Store) Lock() (unlock func(), err error) {
	return LockFile(filepath.Join(s.Dir, "lock"))
}

// LockWait takes the repo's lock, waiting for whoever holds it until ctx
// ends.
func (s Store) LockWait(ctx context.Context) (unlock func(), err error) {
	for {
		unlock, err := s.Lock()
		if !errors.Is(err, ErrBusy) {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// LockFile takes an exclusive flock on the file at p (made, with its
// folder, when missing) without waiting: ErrBusy when another holds it.
// The kernel drops it when the process dies.
func LockFile(p string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrBusy
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// Clean removes what a run killed part-way left: trees being built, a
// half-made current.next, temporary state files. Partial downloads stay
// (the next run resumes them). Call it holding the lock.
func (s Store) Clean() {
	snaps := filepath.Join(s.Dir, "snap")
	entries, _ := os.ReadDir(snaps)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			os.RemoveAll(filepath.Join(snaps, e.Name()))
		}
	}
	os.Remove(filepath.Join(s.Dir, "current.next"))
	cleanTemps(filepath.Join(s.Dir, stateFile))
	cleanTemps(filepath.Join(s.Dir, originFile))
}

// NewSnapshot makes an empty folder for a tree to be published, after
// clearing what a killed run left. Call it holding the lock.
func (s Store) NewSnapshot(now time.Time) (string, error) {
	snaps := filepath.Join(s.Dir, "snap")
	if err := os.MkdirAll(snaps, 0o750); err != nil {
		return "", err
	}
	s.Clean()
	dir := filepath.Join(snaps, ".tmp-"+now.UTC().Format("20060102T150405.000000000"))
	return dir, os.Mkdir(dir, 0o750)
}

// Publish renames tmp (from NewSnapshot) to its final name and points
// current at it in one rename; then it removes older snapshots and pool
// files no snapshot uses. It returns the published folder.
func (s Store) Publish(tmp string) (string, error) {
	final := filepath.Join(filepath.Dir(tmp), strings.TrimPrefix(filepath.Base(tmp), ".tmp-"))
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	link := filepath.Join(s.Dir, "current")
	next := link + ".next"
	os.Remove(next)
	if err := os.Symlink(filepath.Join("snap", filepath.Base(final)), next); err != nil {
		return "", err
	}
	if err := os.Rename(next, link); err != nil {
		return "", err
	}
	syncDir(s.Dir)
	entries, _ := os.ReadDir(filepath.Dir(final))
	for _, e := range entries {
		if e.Name() != filepath.Base(final) {
			os.RemoveAll(filepath.Join(filepath.Dir(final), e.Name()))
		}
	}
	s.gcPool()
	return final, nil
}

// gcPool removes pool files with no other link: no snapshot uses them.
func (s Store) gcPool() {
	filepath.WalkDir(filepath.Join(s.Dir, "pool"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink == 1 {
				os.Remove(p)
			}
		}
		return nil
	})
}

// Link puts pool file src at rel (slash-separated) inside tree. It makes
// the folder only when the link says it is missing: most files share a
// folder, so that is one system call per file, not a stat and a link.
func Link(src, tree, rel string) error {
	dst := filepath.Join(tree, filepath.FromSlash(rel))
	err := os.Link(src, dst)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		err = os.Link(src, dst)
	}
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}

// syncDir fsyncs a folder after a publish's rename; a failure only costs
// durability across a power cut, which the next run repairs.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}
