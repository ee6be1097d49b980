package registry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockStorage takes data_dir/registry.lock: shared for a running server
// (instances built on reload overlap for a moment), exclusive for the
// offline commands, which must not work beside a server.
func lockStorage(dataDir string, exclusive bool) (*os.File, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, err
	}
	p := filepath.Join(dataDir, "registry.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			if exclusive {
				return nil, fmt.Errorf("%s is held by a running airgapd: ask it through its control socket (--config with its runtime_dir, or --socket)", p)
			}
			return nil, fmt.Errorf("%s is held by `airgapd registry gc` or `import` working offline; wait for it to finish", p)
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return f, nil
}

// Offline is a registry opened by a one-shot command while no server runs.
// Close releases the storage lock.
type Offline struct {
	*Registry
	lock *os.File
}

// OpenOffline builds a registry for `airgapd registry gc|import` without a
// server: it takes data_dir's lock exclusively, so it fails while a server
// runs on the same data_dir.
func OpenOffline(cfg Config, deps Deps) (*Offline, error) {
	r, err := New(cfg, deps)
	if err != nil {
		return nil, err
	}
	lock, err := lockStorage(deps.DataDir, true)
	if err != nil {
		return nil, err
	}
	return &Offline{Registry: r, lock: lock}, nil
}

// Close releases the lock.
func (o *Offline) Close() error { return o.lock.Close() }
