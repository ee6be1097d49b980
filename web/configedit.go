package web

import (
	"context"
	"errors"
	"strings"

	"github.com/airgapd/airgapd/api"
)

// ConfigEditor is the config file as the UI edits it. server satisfies it:
// Apply validates the whole file with the same parser `airgapd check`
// uses, writes it atomically (temp file, fsync, rename; the previous
// version kept as FILE.prev) and reloads as SIGHUP does.
type ConfigEditor interface {
	// ConfigFile returns the config file's path and bytes; ErrNoConfigFile
	// when airgapd runs the built-in development defaults.
	ConfigFile() (path string, data []byte, err error)
	// PreviousConfig returns FILE.prev, the version before the last
	// Apply; an error wrapping fs.ErrNotExist when there is none.
	PreviousConfig() ([]byte, error)
	// ApplyConfig validates data, writes it and reloads. A *ConfigError
	// means nothing was written; any other error after the write means
	// the reload failed and the old config keeps running.
	ApplyConfig(ctx context.Context, data []byte) error
}

// ErrNoConfigFile says airgapd runs the built-in defaults (no --config),
// so there is no file to edit.
var ErrNoConfigFile = errors.New("airgapd runs the built-in development defaults (no --config), so there is no file to edit; start it with --config FILE")

// ConfigError is a config that did not validate; nothing was written.
type ConfigError struct {
	Problems []api.ConfigProblem `json:"problems"`
}

func (e *ConfigError) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.String()
	}
	return "the config has problems, nothing was saved: " + strings.Join(s, "; ")
}
