package web

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestPyPIPage: the PyPI page shows both trees, a failed sync's error and
// a sync under way.
func TestPyPIPage(t *testing.T) {
	detail := map[string]any{"state": "up", "summary": "3 projects, 4 files", "trees": []any{
		map[string]any{"name": "index", "projects": 2, "files": 3, "bytes": 3072, "upstream": "stand-in", "last_sync": "2026-12-02T16:00:00Z", "last_result": "failed",
			"last_error": "gamma-3.0-py3-none-any.whl: damaged", "progress": map[string]any{"phase": "packages", "fetched": 1, "to_fetch": 4}},
		map[string]any{"name": "local", "projects": 1, "files": 1, "revision": "20261202T161111Z", "published": "2026-12-02T16:11:11Z"},
	}}
	status := map[string]any{"services": []map[string]any{{"name": "pypi", "enabled": true, "state": "up", "detail": detail}}}
	s, err := New(DefaultConfig(), Deps{Instance: fakeInstance{status: func() any { return status }}, Control: listen(t, "unix", filepath.Join(t.TempDir(), "api.sock"))})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s.renderService(w, httptest.NewRequest("GET", "/pypi", nil), "pypi", 200, "", "", nil)
	body := w.Body.String()
	for _, want := range []string{"<title>PyPI", "from stand-in", "3.0 KiB", "packages 1/4", "gamma-3.0-py3-none-any.whl: damaged", "20261202T161111Z"} {
		if !strings.Contains(body, want) {
			t.Errorf("pypi page lacks %q", want)
		}
	}
}
