package rpm

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airgapd/airgapd/mirror"
)

// fakeRepo is an upstream written in Go: packages with made-up bytes, a
// primary.xml.gz naming them, and a repomd.xml naming that.
type fakeRepo struct {
	files map[string][]byte
	mu    sync.Mutex
	gets  map[string][]string // path → Range headers ("" for none)
	fail  map[string]int      // path → 503s still to answer
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func newFakeRepo(pkgs map[string][]byte, hrefOverride string) *fakeRepo {
	r := &fakeRepo{files: map[string][]byte{}, gets: map[string][]string{}, fail: map[string]int{}}
	var prim strings.Builder
	prim.WriteString(`<?xml version="1.0"?><metadata xmlns="http://linux.duke.edu/metadata/common" packages="1">`)
	for name, body := range pkgs {
		href := "Packages/" + name + "-1-1.noarch.rpm"
		r.files[href] = body
		if hrefOverride != "" {
			href = hrefOverride
		}
		fmt.Fprintf(&prim, `<package type="rpm"><name>%s</name><arch>noarch</arch><checksum type="sha256" pkgid="YES">%s</checksum><size package="%d"/><location href="%s"/></package>`, name, sum(body), len(body), href)
	}
	prim.WriteString(`</metadata>`)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(prim.String()))
	zw.Close()
	ph := "repodata/" + sum(gz.Bytes()) + "-primary.xml.gz"
	r.files[ph] = gz.Bytes()
	r.files["repodata/repomd.xml"] = fmt.Appendf(nil, `<?xml version="1.0"?><repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>42</revision><data type="primary"><checksum type="sha256">%s</checksum><location href="%s"/><size>%d</size></data></repomd>`, sum(gz.Bytes()), ph, gz.Len())
	return r
}

func (r *fakeRepo) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p := strings.TrimPrefix(req.URL.Path, "/")
	r.mu.Lock()
	r.gets[p] = append(r.gets[p], req.Header.Get("Range"))
	fail := r.fail[p] > 0
	if fail {
		r.fail[p]--
	}
	r.mu.Unlock()
	b, ok := r.files[p]
	switch {
	case fail:
		http.Error(w, "busy", http.StatusServiceUnavailable)
	case !ok:
		http.NotFound(w, req)
	default:
		http.ServeContent(w, req, p, time.Unix(1700000000, 0), bytes.NewReader(b))
	}
}

func newTestMirror(t *testing.T, baseurl string) *Mirror {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Repos = []Repo{{Name: "up", BaseURL: baseurl}}
	m, err := New(cfg, Deps{DataDir: t.TempDir(), Listen: "127.0.0.1:8081", AdvertiseAddresses: []string{"192.0.2.1"}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func get(t *testing.T, h http.Handler, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestSyncResumesRetriesAndServes(t *testing.T) {
	a, b := bytes.Repeat([]byte("a"), 10000), bytes.Repeat([]byte("b"), 20000)
	up := newFakeRepo(map[string][]byte{"a": a, "b": b}, "")
	up.fail["Packages/a-1-1.noarch.rpm"] = 1 // one 503, then fine
	srv := httptest.NewServer(up)
	defer srv.Close()
	m := newTestMirror(t, srv.URL)
	// What a killed sync left: half of b.
	st := mirror.RepoStore(m.deps.DataDir, "up")
	os.MkdirAll(filepath.Join(st.Dir, "partial"), 0o750)
	os.WriteFile(st.Partial(mirror.Checksum{Type: "sha256", Value: sum(b)}), b[:5000], 0o640)

	res, err := m.Sync(context.Background(), nil, nil)
	if err != nil || len(res) != 1 || !res[0].OK || res[0].Packages != 2 || res[0].Fetched != 2 {
		t.Fatalf("sync: %+v, %v", res, err)
	}
	if g := up.gets["Packages/b-1-1.noarch.rpm"]; len(g) != 1 || g[0] != "bytes=5000-" {
		t.Errorf("b requested with %q, want one bytes=5000-", g)
	}
	if g := up.gets["Packages/a-1-1.noarch.rpm"]; len(g) != 2 {
		t.Errorf("a requested %d times, want 2 (one 503)", len(g))
	}
	h := m.Handler()
	if rec := get(t, h, "/repos/up/repodata/repomd.xml"); rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), up.files["repodata/repomd.xml"]) {
		t.Errorf("repomd.xml: %d", rec.Code)
	}
	if rec := get(t, h, "/repos/up/Packages/b-1-1.noarch.rpm", "Range", "bytes=10-19"); rec.Code != 206 || rec.Body.String() != "bbbbbbbbbb" {
		t.Errorf("Range: %d %q", rec.Code, rec.Body.String())
	}
	if rec := get(t, h, "/repos/up.repo"); !strings.Contains(rec.Body.String(), "baseurl=http://192.0.2.1:8081/repos/up/\n") {
		t.Errorf(".repo:\n%s", rec.Body.String())
	}
	// Nothing changed upstream: up to date, nothing fetched.
	if res, err := m.Sync(context.Background(), []string{"up"}, nil); err != nil || !res[0].UpToDate {
		t.Errorf("second sync: %+v %v", res, err)
	}
	if s := m.Status(); s.Repos[0].Packages != 2 || s.Repos[0].LastResult != "ok" {
		t.Errorf("status: %+v", s.Repos[0])
	}
}

func TestSyncRefusesBadPackages(t *testing.T) {
	cases := []struct {
		name    string
		href    string
		corrupt bool
		want    string
	}{
		{name: "checksum", corrupt: true, want: "checksum mismatch"},
		{name: "escaping href", href: "../../evil.rpm", want: "leaves the repo folder"},
		{name: "absolute href", href: "/etc/evil.rpm", want: "leaves the repo folder"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("x"), 4000)
			up := newFakeRepo(map[string][]byte{"x": body}, tc.href)
			if tc.corrupt {
				bad := bytes.Clone(body)
				bad[100] ^= 1
				up.files["Packages/x-1-1.noarch.rpm"] = bad
			}
			srv := httptest.NewServer(up)
			defer srv.Close()
			m := newTestMirror(t, srv.URL)
			_, err := m.Sync(context.Background(), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("sync: %v, want an error with %q", err, tc.want)
			}
			if rec := get(t, m.Handler(), "/repos/up/repodata/repomd.xml"); rec.Code != http.StatusNotFound {
				t.Errorf("a failed sync published something: %d", rec.Code)
			}
		})
	}
}

func TestServeStaysInside(t *testing.T) {
	dir := t.TempDir()
	files := filepath.Join(dir, "files")
	os.MkdirAll(filepath.Join(files, "d"), 0o755)
	os.WriteFile(filepath.Join(files, "d", "f.txt"), []byte("hello"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("secret"), 0o644)
	os.Symlink("../secret", filepath.Join(files, "out"))
	os.Symlink("d/f.txt", filepath.Join(files, "in"))
	cfg := DefaultConfig()
	cfg.Files = files
	m, err := New(cfg, Deps{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler()
	cases := []struct {
		path string
		code int
		body string
	}{
		{"/files/d/f.txt", 200, "hello"},
		{"/files/in", 200, "hello"},
		{"/files/out", 403, ""},
		{"/files/../secret", 400, ""},
		{"/files/d/../../secret", 400, ""},
		{"/files/d", 301, ""},
		{"/files/d/", 200, `href="f.txt"`},
		{"/repos/nope/x", 404, ""},
	}
	for _, tc := range cases {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = tc.path // as sent, uncleaned
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body, _ := io.ReadAll(rec.Body)
		if rec.Code != tc.code || !strings.Contains(string(body), tc.body) || strings.Contains(string(body), "secret") {
			t.Errorf("GET %s: %d %q, want %d with %q", tc.path, rec.Code, body, tc.code, tc.body)
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		want string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"parallel 0", func(c *Config) { c.Parallel = 0 }, "parallel"},
		{"parallel too high", func(c *Config) { c.Parallel = 33 }, "parallel"},
		{"bad arch", func(c *Config) { c.Repos = []Repo{{Name: "a", BaseURL: "http://x/", Arch: []string{"x86 64"}}} }, "not an architecture"},
		{"arch on a local repo", func(c *Config) { c.Repos = []Repo{{Name: "a", Path: "/srv/rpms", Arch: []string{"noarch"}}} }, "local folder"},
		{"ftp", func(c *Config) { c.Repos = []Repo{{Name: "a", BaseURL: "ftp://x/"}} }, "not a repo URL"},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.edit(&c)
		err := c.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
