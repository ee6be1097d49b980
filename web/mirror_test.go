package web

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestMirrorPageRepos: the Mirror page shows where a repo was last synced
// from (a mirrorlist's or metalink's choice), its schedule and next sync.
func TestMirrorPageRepos(t *testing.T) {
	cases := []struct {
		name    string
		repo    map[string]any
		want    []string
		notWant []string
	}{
		{name: "mirrorlist",
			repo: map[string]any{"name": "epel", "kind": "mirror", "upstream": "http://m2.example/epel/9/x86_64/", "schedule": "daily at 02:30", "next_sync": "2026-11-23T02:30:00Z"},
			want: []string{"http://m2.example/epel/9/x86_64/", "daily at 02:30, next 2026-11-23 02:30"}},
		{name: "baseurl, variables substituted",
			repo: map[string]any{"name": "baseos", "kind": "mirror", "baseurl": "http://up/$releasever/", "upstream": "http://up/9/", "schedule": "every 6h0m0s"},
			want: []string{"http://up/$releasever/", "last from http://up/9/", "every 6h0m0s"}, notWant: []string{", next"}},
		{name: "local", repo: map[string]any{"name": "local", "kind": "local", "path": "/srv/rpms"},
			want: []string{"/srv/rpms"}, notWant: []string{"last from", "every "}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := renderMirrorPage(t, map[string]any{"repos": []any{c.repo}})
			for _, want := range c.want {
				if !strings.Contains(body, want) {
					t.Errorf("mirror page lacks %q", want)
				}
			}
			for _, nw := range c.notWant {
				if strings.Contains(body, nw) {
					t.Errorf("mirror page has %q", nw)
				}
			}
		})
	}
}

// renderMirrorPage renders the Mirror page for a mirror status detail.
func renderMirrorPage(t *testing.T, detail map[string]any) string {
	t.Helper()
	status := map[string]any{"services": []map[string]any{{"name": "mirror", "enabled": true, "state": "up", "detail": detail}}}
	s, err := New(DefaultConfig(), Deps{Instance: fakeInstance{status: func() any { return status }}, Control: listen(t, "unix", filepath.Join(t.TempDir(), "api.sock"))})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s.renderService(w, httptest.NewRequest("GET", "/mirror", nil), "mirror", 200, "", "", nil)
	return w.Body.String()
}

// TestMirrorPageAptRepos: the Mirror page lists the APT repos when apt:
// runs, and has no APT panel when it does not.
func TestMirrorPageAptRepos(t *testing.T) {
	apt := map[string]any{"name": "apt", "enabled": true, "state": "up", "detail": map[string]any{"repos": []any{
		map[string]any{"name": "jammy", "kind": "mirror", "baseurl": "http://up/ubuntu/", "packages": 3, "last_result": "failed", "last_error": "pool/main/h.deb: checksum mismatch", "last_sync": "2026-11-23T02:30:00Z"},
	}}}
	for _, c := range []struct {
		name     string
		services []map[string]any
		want     []string
		notWant  []string
	}{
		{"apt on", []map[string]any{apt}, []string{"APT repositories", `href="/apt/jammy.sources"`, "http://up/ubuntu/", "pool/main/h.deb: checksum mismatch"}, nil},
		{"apt off", nil, nil, []string{"APT repositories"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			services := append([]map[string]any{{"name": "mirror", "enabled": true, "state": "up", "detail": map[string]any{}}}, c.services...)
			status := map[string]any{"services": services}
			s, err := New(DefaultConfig(), Deps{Instance: fakeInstance{status: func() any { return status }}, Control: listen(t, "unix", filepath.Join(t.TempDir(), "api.sock"))})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			s.renderService(w, httptest.NewRequest("GET", "/mirror", nil), "mirror", 200, "", "", nil)
			body := w.Body.String()
			for _, want := range c.want {
				if !strings.Contains(body, want) {
					t.Errorf("mirror page lacks %q", want)
				}
			}
			for _, nw := range c.notWant {
				if strings.Contains(body, nw) {
					t.Errorf("mirror page has %q", nw)
				}
			}
		})
	}
}
