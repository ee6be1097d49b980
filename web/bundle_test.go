package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// bundleInstance is a fakeInstance that imports bundles by calling
// importBundle.
type bundleInstance struct {
	fakeInstance
	importBundle func(ctx context.Context, path string, progress func(any)) (any, error)
}

func (b bundleInstance) ImportBundle(ctx context.Context, path string, progress func(any)) (any, error) {
	return b.importBundle(ctx, path, progress)
}

var _ BundleImporter = bundleInstance{}

// TestBundleImportRoute: POST /api/v1/bundle/import?path=ABS streams the
// importer's progress as JSON lines and ends with one done line holding the
// result or the error; a relative path is refused before anything runs.
func TestBundleImportRoute(t *testing.T) {
	cases := []struct {
		name      string
		path      string
		err       error
		wantCode  int
		wantLines int // progress lines, then the done line
		wantDone  string
	}{
		{name: "imported", path: "/srv/b.tar", wantCode: 200, wantLines: 2, wantDone: `"result":{"id":"sha256:abc"}`},
		{name: "damaged", path: "/srv/b.tar", err: errors.New("the bundle is damaged, nothing was published: image x"), wantCode: 200, wantLines: 2, wantDone: `"error":"the bundle is damaged, nothing was published: image x"`},
		{name: "relative path", path: "b.tar", wantCode: 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var gotPath string
			inst := bundleInstance{
				fakeInstance: fakeInstance{status: func() any { return map[string]any{} }, ready: func() bool { return true }, ca: func() []byte { return nil }},
				importBundle: func(_ context.Context, path string, progress func(any)) (any, error) {
					gotPath = path
					progress(map[string]any{"phase": "verify", "bytes_done": 10, "bytes": 20})
					progress(map[string]any{"phase": "publish", "item": "repo up"})
					if c.err != nil {
						return nil, c.err
					}
					return map[string]any{"id": "sha256:abc"}, nil
				},
			}
			s, err := New(DefaultConfig(), Deps{Instance: inst, BundleImporter: inst, Control: listen(t, "unix", filepath.Join(t.TempDir(), "api.sock"))})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			r := chi.NewRouter()
			s.bundleControlRoutes(r)
			r.ServeHTTP(w, httptest.NewRequest("POST", "/api/v1/bundle/import?path="+c.path, nil))
			if w.Code != c.wantCode {
				t.Fatalf("status %d, want %d: %s", w.Code, c.wantCode, w.Body.String())
			}
			if c.wantCode != http.StatusOK {
				if gotPath != "" {
					t.Errorf("the importer ran for a refused request (%q)", gotPath)
				}
				return
			}
			var lines []string
			sc := bufio.NewScanner(w.Body)
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			if len(lines) != c.wantLines+1 {
				t.Fatalf("%d lines, want %d progress and a done line:\n%s", len(lines), c.wantLines, strings.Join(lines, "\n"))
			}
			var first struct {
				Progress map[string]any `json:"progress"`
			}
			if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Progress["phase"] != "verify" {
				t.Errorf("first line %s: %v; want the verify progress", lines[0], err)
			}
			if last := lines[len(lines)-1]; !strings.Contains(last, `"done":true`) || !strings.Contains(last, c.wantDone) {
				t.Errorf("done line %s; want %s", last, c.wantDone)
			}
			if gotPath != c.path {
				t.Errorf("importer got path %q, want %q", gotPath, c.path)
			}
		})
	}
}

// TestMirrorPageBundleImport: the Mirror page shows the status's
// bundle_import: phase, bytes, blobs and rate, and the error of a failed
// one.
func TestMirrorPageBundleImport(t *testing.T) {
	cases := []struct {
		name string
		bi   map[string]any
		want []string
	}{
		{name: "under way", bi: map[string]any{"path": "/srv/b.tar", "phase": "verify", "bytes": 100 << 20, "bytes_done": 50 << 20, "blobs": 3, "blobs_done": 1, "rate": 10 << 20},
			want: []string{`id="bundle-import"`, "verify", "/srv/b.tar", "50.0 MiB of 100.0 MiB", "1/3 blobs", "10.0 MiB/s"}},
		{name: "failed", bi: map[string]any{"path": "/srv/bad.tar", "phase": "failed", "error": "image registry.k8s.io/pause:3.10 damaged"},
			want: []string{`id="bundle-import"`, "failed", "image registry.k8s.io/pause:3.10 damaged"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := renderMirrorPage(t, map[string]any{"repos": []any{}, "bundle_import": c.bi})
			for _, want := range c.want {
				if !strings.Contains(body, want) {
					t.Errorf("mirror page lacks %q", want)
				}
			}
		})
	}
}
