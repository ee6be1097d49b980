package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	// ApplyConfig validates data, applies it and writes it, or neither.
	// base is the ConfigETag of the file the edit started from: when the
	// file is not that one any more (another edit came first) it refuses
	// with ErrStaleConfig and changes nothing; "" applies whatever the
	// file is now. A *ConfigError means data did not validate.
	ApplyConfig(ctx context.Context, base string, data []byte) error
}

// ConfigImporter is `airgapd import` for the Settings page: files an
// existing admin host has (named.conf, chrony.conf, iptables-save output,
// .repo files, a Docker Registry config.yml), by kind, in; an airgapd.yaml
// and the report on it out. It writes nothing.
type ConfigImporter interface {
	ImportConfig(files ImportFiles) (yaml []byte, report string, err error)
}

// ImportFiles are the uploaded files by kind; repo files by name.
type ImportFiles struct {
	Named, Chrony, IptablesSave, RegistryConfig []byte
	Repos                                       map[string][]byte
}

// ErrStaleConfig says the config file changed since the edit read it.
var ErrStaleConfig = errors.New("the config file changed since this edit read it (another edit, or a hand edit); reload the page and make the change again")

// ConfigETag names one version of the config file: the API's ETag, the
// If-Match a client sends back, the Settings form's base.
func ConfigETag(data []byte) string {
	sum := sha256.Sum256(data)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
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
