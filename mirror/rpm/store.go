package rpm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// store is one mirrored repo's folder under data_dir/mirror/repos/NAME:
//
//	pool/TYPE/AB/DIGEST   every verified file, named by its checksum
//	partial/TYPE-DIGEST   downloads in progress (resumed with Range)
//	snap/ID/              a published tree: repodata/ and packages at their
//	                      upstream locations, hard links into pool/
//	snap/.tmp-ID/         a tree being built; never served
//	current               symlink to snap/ID, replaced with one rename
//	state.json            the last sync's result
//	lock                  flock'ed by whoever syncs
//
// Clients only ever see a complete snapshot: the switch is the rename of
// current, and the old snapshot goes only after it.
type store struct{ dir string }

// repoStore returns the store of repo name under dataDir.
func repoStore(dataDir, name string) store {
	return store{dir: filepath.Join(dataDir, "mirror", "repos", name)}
}

func (s store) pool(sum checksum) string {
	return filepath.Join(s.dir, "pool", hashName(sum.Type), sum.Value[:2], sum.Value)
}

func (s store) partial(sum checksum) string {
	return filepath.Join(s.dir, "partial", hashName(sum.Type)+"-"+sum.Value)
}

// current returns the published snapshot's folder, or "" when nothing has
// been published yet.
func (s store) current() (string, error) {
	target, err := os.Readlink(filepath.Join(s.dir, "current"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if filepath.IsAbs(target) || strings.Contains(target, "..") {
		return "", fmt.Errorf("%s/current points outside the repo folder", s.dir)
	}
	return filepath.Join(s.dir, target), nil
}

// lock takes the repo's sync lock without waiting. The kernel drops it when
// the process dies, kill -9 included.
func (s store) lock() (unlock func(), err error) {
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errBusy
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// lockWait takes the repo's lock, waiting for whoever holds it until ctx
// ends.
func (s store) lockWait(ctx context.Context) (unlock func(), err error) {
	for {
		unlock, err := s.lock()
		if !errors.Is(err, errBusy) {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// errBusy: another sync of the same repo holds the lock.
var errBusy = errors.New("another sync of this repo is running")

// newSnapshot makes an empty folder for a tree to be published, after
// clearing what a killed sync left.
func (s store) newSnapshot(now time.Time) (string, error) {
	snaps := filepath.Join(s.dir, "snap")
	if err := os.MkdirAll(snaps, 0o750); err != nil {
		return "", err
	}
	entries, _ := os.ReadDir(snaps)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			os.RemoveAll(filepath.Join(snaps, e.Name()))
		}
	}
	dir := filepath.Join(snaps, ".tmp-"+now.UTC().Format("20060102T150405.000000000"))
	return dir, os.Mkdir(dir, 0o750)
}

// publish renames tmp to its final name and points current at it in one
// rename; then it removes older snapshots and pool files no snapshot uses.
func (s store) publish(tmp string) (string, error) {
	final := filepath.Join(filepath.Dir(tmp), strings.TrimPrefix(filepath.Base(tmp), ".tmp-"))
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	link := filepath.Join(s.dir, "current")
	next := link + ".next"
	os.Remove(next)
	if err := os.Symlink(filepath.Join("snap", filepath.Base(final)), next); err != nil {
		return "", err
	}
	if err := os.Rename(next, link); err != nil {
		return "", err
	}
	syncDir(s.dir)
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
func (s store) gcPool() {
	filepath.WalkDir(filepath.Join(s.dir, "pool"), func(p string, d fs.DirEntry, err error) error {
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

// link puts pool file src at rel inside tree. It makes the folder only
// when the link says it is missing: most packages share a folder, so that
// is one system call per package, not a stat and a link.
func link(src, tree, rel string) error {
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

func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

// repoState is state.json: what the last sync did and what is published.
type repoState struct {
	LastSync   time.Time `json:"last_sync,omitzero"`
	LastResult string    `json:"last_result,omitempty"` // ok | failed
	LastError  string    `json:"last_error,omitempty"`
	Duration   float64   `json:"duration_seconds,omitempty"`
	Downloaded int64     `json:"downloaded_bytes,omitempty"`
	// The published snapshot.
	Revision  string    `json:"revision,omitempty"`
	Published time.Time `json:"published,omitzero"`
	Packages  int       `json:"packages"`
	Bytes     int64     `json:"bytes"`
	Arch      []string  `json:"arch,omitempty"` // the filter it was synced with
	// Upstream is the baseurl the last sync used: variables substituted,
	// the mirror a mirrorlist or metalink gave.
	Upstream string `json:"upstream,omitempty"`
	// Policy is the keep and gpgcheck it was synced with (syncPolicy).
	Policy string `json:"policy,omitempty"`
	// Local repos: what the published index was built from (file names,
	// sizes, mtimes and options), and how many headers its run read.
	Fingerprint string `json:"fingerprint,omitempty"`
	HeadersRead int    `json:"headers_read,omitempty"`
}

func (s store) readState() repoState {
	var st repoState
	if b, err := os.ReadFile(filepath.Join(s.dir, "state.json")); err == nil {
		json.Unmarshal(b, &st)
	}
	return st
}

func (s store) writeState(st repoState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, "state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir, "state.json"))
}
