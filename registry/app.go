package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"

	// The storage drivers airgapd offers (storageDrivers in config.go);
	// each registers itself with distribution's driver factory.
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"
)

// distributionConfig is the distribution configuration for cfg: the storage
// passthrough (or the filesystem under data_dir), deletion on, no auth of
// distribution's own (authorize does it, in front), no upload purger (Run
// purges, so no goroutine outlives an instance), relative Location headers.
func (r *Registry) distributionConfig(cfg Config) (*configuration.Configuration, error) {
	st := configuration.Storage{}
	for k, params := range cfg.Storage {
		p := configuration.Parameters{}
		for pk, pv := range params {
			p[pk] = yamlV2Value(pv)
		}
		st[k] = p
	}
	if st.Type() == "" {
		st["filesystem"] = configuration.Parameters{}
	}
	if st.Type() == "filesystem" {
		if _, ok := st["filesystem"]["rootdirectory"]; !ok {
			st["filesystem"]["rootdirectory"] = storageRoot(r.deps.DataDir)
		}
	}
	if _, ok := st["redirect"]; !ok {
		// Nodes reach the admin host, not the object store behind it.
		st["redirect"] = configuration.Parameters{"disable": true}
	}
	st["delete"] = configuration.Parameters{"enabled": true}
	st["maintenance"] = configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}}

	dc := &configuration.Configuration{Storage: st}
	dc.Version = configuration.CurrentVersion
	dc.HTTP.RelativeURLs = true
	dc.HTTP.Secret = httpSecret(cfg, st)
	dc.Catalog.MaxEntries = 1000
	// Non-distributable layers carry the URLs clients fetch them from and
	// are never pushed; distribution refuses every URL unless told which to
	// allow (and answers 500). The spec allows http and https URLs.
	dc.Validation.Manifests.URLs.Allow = []string{"^https?://"}
	return dc, nil
}

// httpSecret signs the upload state that distribution hands clients between
// the requests of one blob upload. Every instance built from the same config
// must use the same secret, so an upload survives a reload (build, then
// swap) and works across admin hosts sharing object storage. Only
// registry.users can upload at all, and their password hashes (from a config
// file readable by root only) make the secret; with no users nothing can be
// uploaded and the secret does not matter.
func httpSecret(cfg Config, st configuration.Storage) string {
	h := sha256.New()
	h.Write([]byte("airgapd registry upload state\x00"))
	for _, u := range cfg.Users {
		fmt.Fprintf(h, "%s\x00%s\x00", u.Name, u.PasswordHash)
	}
	fmt.Fprintf(h, "%s\x00%v", st.Type(), st.Parameters()["rootdirectory"])
	return hex.EncodeToString(h.Sum(nil))
}

// yamlV2Value turns yaml.v3's map[string]any into the map[any]any that
// distribution (which decodes with yaml.v2) expects below the top level.
func yamlV2Value(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[any]any, len(v))
		for k, e := range v {
			m[k] = yamlV2Value(e)
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = yamlV2Value(e)
		}
		return out
	}
	return v
}

// newApp builds distribution's application. handlers.NewApp panics on a
// configuration it cannot use (a storage driver that fails to start, a bad
// parameter); that becomes an error here.
func newApp(ctx context.Context, dc *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if p := recover(); p != nil {
			app, err = nil, fmt.Errorf("registry storage %s: %v", dc.Storage.Type(), p)
		}
	}()
	return handlers.NewApp(ctx, dc), nil
}

// openStorage opens airgapd's own handle on the same storage, for garbage
// collection, import bookkeeping and the counts in Status.
func openStorage(ctx context.Context, dc *configuration.Configuration) (storagedriver.StorageDriver, distribution.Namespace, error) {
	d, err := factory.Create(ctx, dc.Storage.Type(), dc.Storage.Parameters())
	if err != nil {
		return nil, nil, fmt.Errorf("registry storage %s: %w", dc.Storage.Type(), err)
	}
	ns, err := storage.NewRegistry(ctx, d, storage.EnableDelete)
	if err != nil {
		return nil, nil, fmt.Errorf("registry storage: %w", err)
	}
	return d, ns, nil
}

// describeStorage names the driver and where it keeps data, for Status and
// logs; never credentials.
func describeStorage(st configuration.Storage) string {
	p := st.Parameters()
	switch st.Type() {
	case "filesystem":
		return fmt.Sprintf("filesystem %v", p["rootdirectory"])
	case "s3":
		var parts []string
		for _, k := range []string{"regionendpoint", "region", "bucket", "rootdirectory"} {
			if v, ok := p[k]; ok && fmt.Sprint(v) != "" {
				parts = append(parts, fmt.Sprintf("%s=%v", k, v))
			}
		}
		sort.Strings(parts)
		return "s3 " + strings.Join(parts, " ")
	}
	return st.Type()
}

// purgeUploads removes upload sessions older than maxAge (a client that
// gave up half way), as distribution's own purger would.
func (r *Registry) purgeUploads(ctx context.Context, maxAge time.Duration) {
	ctx = withLogrus(ctx, r.log)
	deleted, errs := storage.PurgeUploads(ctx, r.driver, r.now().Add(-maxAge), true)
	if len(deleted) > 0 || len(errs) > 0 {
		r.log.Info("purged abandoned uploads", "files", len(deleted), "errors", len(errs))
	}
}
