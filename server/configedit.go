package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/web"
)

var _ web.ConfigEditor = (*Server)(nil)

// applyRequest asks the Run goroutine for a reload; it answers on done.
type applyRequest struct {
	done chan error
}

// ConfigFile implements web.ConfigEditor.
func (s *Server) ConfigFile() (string, []byte, error) {
	if s.opts.ConfigPath == "" {
		return "", nil, web.ErrNoConfigFile
	}
	data, err := os.ReadFile(s.opts.ConfigPath)
	if err != nil {
		return "", nil, fmt.Errorf("read config: %w", err)
	}
	return s.opts.ConfigPath, data, nil
}

// PreviousConfig implements web.ConfigEditor.
func (s *Server) PreviousConfig() ([]byte, error) {
	if s.opts.ConfigPath == "" {
		return nil, web.ErrNoConfigFile
	}
	return os.ReadFile(s.opts.ConfigPath + ".prev")
}

// ApplyConfig implements web.ConfigEditor: validate with Parse (the same
// checks as `airgapd check`), write atomically keeping the previous file,
// then have the Run goroutine reload exactly as on SIGHUP.
func (s *Server) ApplyConfig(ctx context.Context, data []byte) error {
	if s.opts.ConfigPath == "" {
		return web.ErrNoConfigFile
	}
	s.editMu.Lock()
	defer s.editMu.Unlock()
	if _, err := Parse(s.opts.ConfigPath, data); err != nil {
		return toConfigError(err)
	}
	if err := WriteConfigFile(s.opts.ConfigPath, data); err != nil {
		return err
	}
	req := applyRequest{done: make(chan error, 1)}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case s.applyc <- req:
	case <-ctx.Done():
		return fmt.Errorf("saved, but the reload was not started: %w", ctx.Err())
	case <-timeout.C:
		return errors.New("saved, but airgapd did not take the reload (stopping?); it applies at the next start or SIGHUP")
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("saved; the reload is still running: %w", ctx.Err())
	}
}

// toConfigError turns Parse's *CheckError into web's type.
func toConfigError(err error) error {
	var ce *CheckError
	if !errors.As(err, &ce) {
		return &web.ConfigError{Problems: []api.ConfigProblem{{Msg: err.Error()}}}
	}
	out := &web.ConfigError{}
	for _, d := range ce.Diagnostics {
		d.File = "" // the page edits one text: lines are enough
		out.Problems = append(out.Problems, d)
	}
	return out
}

// WriteConfigFile replaces path with data atomically: the current file is
// copied to path.prev first, then data goes to a temp file in the same
// folder, is fsynced, gets the current file's mode (0600 for a new one),
// and is renamed over path; the folder is fsynced last.
func WriteConfigFile(path string, data []byte) error {
	mode := fs.FileMode(0o600)
	if old, err := os.ReadFile(path); err == nil {
		if fi, err := os.Stat(path); err == nil {
			mode = fi.Mode().Perm()
		}
		if err := writeAtomic(path+".prev", old, mode); err != nil {
			return fmt.Errorf("keep the previous config: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read config: %w", err)
	}
	if err := writeAtomic(path, data, mode); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
