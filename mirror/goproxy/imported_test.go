package goproxy

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/airgapd/airgapd/mirror"
)

// TestPublishImported: a synced tree, read with Published and published
// on another data_dir with PublishImported (what bundles do), is served
// the same there, marked imported.
func TestPublishImported(t *testing.T) {
	up := newUpstream(t, testModules...)
	cfg := DefaultConfig()
	cfg.Upstream = up.Proxy.URL
	cfg.Modules = []string{"lab.test/Greet@v1.0.0", "lab.test/words@v1.1.0"}
	cfg.SumDB = SumDB{URL: up.SumDB.URL, Key: up.Key}
	src := newProxy(t, cfg)
	if _, err := src.Sync(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	pub, err := src.Published(context.Background(), "modules")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Release()
	var files []mirror.TreeFile
	sources := map[string]string{}
	for _, f := range pub.Files {
		sum, size, err := sha256File(f.Source)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, mirror.TreeFile{Path: f.Path, Sum: sum, Size: size})
		sources[f.Path] = f.Source
	}
	dst := newProxy(t, Config{Parallel: 1, SumDB: SumDB{Key: up.Key}}) // no upstream: behind the gap
	place := func(_ context.Context, f mirror.TreeFile, to string) error {
		return mirror.LinkOrCopy(sources[f.Path], to)
	}
	origin := mirror.Origin{Bundle: "b1", Created: time.Now(), Revision: pub.Revision}
	if err := dst.PublishImported(context.Background(), "modules", origin, files, place); err != nil {
		t.Fatal(err)
	}
	up.Proxy.Close()
	up.SumDB.Close()
	h := dst.Handler()
	for _, path := range []string{"/goproxy/lab.test/!greet/@v/v1.0.0.zip", "/goproxy/lab.test/words/@latest", "/goproxy/sumdb/sumdb.lab.test/lookup/lab.test/words@v1.1.0"} {
		if code, body := get(t, h, path); code != 200 {
			t.Errorf("GET %s on the imported tree: %d %s", path, code, body)
		}
	}
	st := dst.Status()
	if !st.Imported || st.Modules != 2 || st.Versions != 2 || st.SumDBLookups != 2 || st.Revision != pub.Revision {
		t.Errorf("status %+v", st)
	}
	if dst.Store("modules").Dir != filepath.Join(dst.deps.DataDir, "mirror", "goproxy", "modules") {
		t.Errorf("store at %s", dst.Store("modules").Dir)
	}
}
