package web

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoProxyPage: the Go proxy page shows the tree's counts, the last
// sync's failure and the database proxied.
func TestGoProxyPage(t *testing.T) {
	for _, c := range []struct {
		name   string
		detail map[string]any
		want   []string
	}{
		{"synced", map[string]any{"upstream": "http://up.test/", "sumdb": "sumdb.lab.test", "modules": 2, "versions": 3, "bytes": 2048, "sumdb_lookups": 3, "last_sync": "2026-11-23T02:30:00Z", "last_result": "ok", "published": "2026-11-23T02:30:01Z", "revision": "676497df5bf9"},
			[]string{"http://up.test/", "sumdb.lab.test", ">2<", ">3<", "2.0 KiB", "676497df5bf9", "/goproxy/sumdb/sumdb.lab.test/"}},
		{"failed", map[string]any{"upstream": "http://up.test/", "last_sync": "2026-11-23T02:30:00Z", "last_result": "failed", "last_error": "lab.test/words@v1.1.0: zip: hash"},
			[]string{"lab.test/words@v1.1.0: zip: hash", "none (go.sum only)", "not yet"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			status := map[string]any{"services": []map[string]any{{"name": "goproxy", "enabled": true, "state": "up", "detail": c.detail}}}
			s, err := New(DefaultConfig(), Deps{Instance: fakeInstance{status: func() any { return status }}, Control: listen(t, "unix", filepath.Join(t.TempDir(), "api.sock"))})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			s.renderService(w, httptest.NewRequest("GET", "/goproxy", nil), "goproxy", 200, "", "", nil)
			body := w.Body.String()
			for _, want := range c.want {
				if !strings.Contains(body, want) {
					t.Errorf("goproxy page lacks %q", want)
				}
			}
		})
	}
}
