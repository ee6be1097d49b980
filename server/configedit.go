package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/atomicfile"
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

// WriteConfigFile replaces path with data atomically (internal/atomicfile):
// the current file is copied to path.prev first; the new one gets the
// current file's mode (0600 for a new one).
func WriteConfigFile(path string, data []byte) error {
	mode := fs.FileMode(0o600)
	if old, err := os.ReadFile(path); err == nil {
		if fi, err := os.Stat(path); err == nil {
			mode = fi.Mode().Perm()
		}
		if err := atomicfile.WriteFile(path+".prev", old, mode); err != nil {
			return fmt.Errorf("keep the previous config: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read config: %w", err)
	}
	if err := atomicfile.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}
