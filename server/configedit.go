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

// applyRequest asks the Run goroutine to apply a config and, only once it
// runs, to save it (applyEdit); it answers on done.
type applyRequest struct {
	next *Config
	data []byte
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

// ApplyConfig implements web.ConfigEditor, as a transaction: validate with
// Parse (the same checks as `airgapd check`), have the Run goroutine apply
// the parsed config exactly as a SIGHUP would, and write the file (keeping
// the previous one) only once that worked. A change refused at any step,
// at reload time included (a port taken, data_dir changed), leaves the
// file byte for byte as it was, so it cannot take effect at the next start.
func (s *Server) ApplyConfig(ctx context.Context, base string, data []byte) error {
	if err := s.standbyError(); err != nil {
		return err
	}
	return s.applyConfig(ctx, base, data)
}

// applyConfig is ApplyConfig on a standby too: the HA follower and
// `airgapd ha promote` change its config this way.
func (s *Server) applyConfig(ctx context.Context, base string, data []byte) error {
	if s.opts.ConfigPath == "" {
		return web.ErrNoConfigFile
	}
	// One edit at a time, each on the file it was made on: the lock and
	// the version check together make read-change-write safe for edits
	// that arrive at once.
	s.editMu.Lock()
	defer s.editMu.Unlock()
	if base != "" {
		cur, err := os.ReadFile(s.opts.ConfigPath)
		if err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		if web.ConfigETag(cur) != base {
			return web.ErrStaleConfig
		}
	}
	next, err := Parse(s.opts.ConfigPath, data)
	if err != nil {
		return toConfigError(err, s.opts.ConfigPath)
	}
	req := applyRequest{next: next, data: data, done: make(chan error, 1)}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case s.applyc <- req:
	case <-ctx.Done():
		return fmt.Errorf("not applied, the file is unchanged: %w", ctx.Err())
	case <-timeout.C:
		return errors.New("not applied, the file is unchanged: airgapd did not take the change (stopping?)")
	}
	// Once taken, the change is applied and saved, or neither, whatever
	// the caller does meanwhile.
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("the change is being applied and saved, or refused with the file unchanged; see the audit log: %w", ctx.Err())
	}
}

// applyEdit runs on the Run goroutine: apply req's config, then save it.
// If the save fails, the previous config (still the file's) is applied
// again, so the running config and the file never part.
func (s *Server) applyEdit(req applyRequest) error {
	if err := s.applyReload(req.next); err != nil {
		return fmt.Errorf("refused, the file is unchanged: %w", err)
	}
	if err := WriteConfigFile(s.opts.ConfigPath, req.data); err != nil {
		back := s.applyReload(nil)
		if back != nil {
			return fmt.Errorf("applied but not saved (%w), and going back to the file failed too: %v; fix the disk and send SIGHUP", err, back)
		}
		return fmt.Errorf("not saved, so not applied either (the file's config runs again): %w", err)
	}
	return nil
}

// toConfigError turns Parse's *CheckError into web's type.
func toConfigError(err error, configPath string) error {
	var ce *CheckError
	if !errors.As(err, &ce) {
		return &web.ConfigError{Problems: []api.ConfigProblem{{Msg: err.Error()}}}
	}
	out := &web.ConfigError{}
	for _, d := range ce.Diagnostics {
		if d.File == configPath {
			d.File = "" // the page edits one text: lines are enough; a zone file's stay named
		}
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
