package goproxy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

var testModules = []fakeModule{
	{Path: "lab.test/Greet", Version: "v1.0.0", Files: map[string]string{
		"go.mod":   "module lab.test/Greet\n\ngo 1.21\n\nrequire lab.test/words v1.1.0\n",
		"greet.go": "package greet\n\nimport \"lab.test/words\"\n\nfunc Hello() string { return words.Hello }\n",
	}},
	{Path: "lab.test/words", Version: "v1.1.0", Files: map[string]string{
		"go.mod":   "module lab.test/words\n\ngo 1.21\n",
		"words.go": "package words\n\nconst Hello = \"hello\"\n",
	}},
	{Path: "lab.test/words", Version: "v1.2.0-rc.1", Files: map[string]string{
		"go.mod":   "module lab.test/words\n\ngo 1.21\n",
		"words.go": "package words\n\nconst Hello = \"hello, rc\"\n",
	}},
}

// project writes a go.mod requiring lab.test/Greet with the go.sum lines
// given, and returns the go.mod's path.
func project(t *testing.T, gosum string) string {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), []byte("module lab.test/app\n\ngo 1.21\n\nrequire lab.test/Greet v1.0.0\n\nrequire lab.test/words v1.1.0 // indirect\n"))
	write(t, filepath.Join(dir, "go.sum"), []byte(gosum))
	return filepath.Join(dir, "go.mod")
}

func newProxy(t *testing.T, cfg Config) *Proxy {
	t.Helper()
	p, err := New(cfg, Deps{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestSyncAndServe(t *testing.T) {
	up := newUpstream(t, testModules...)
	cfg := DefaultConfig()
	cfg.Upstream = up.Proxy.URL
	cfg.GoMod = []string{project(t, up.goSum("lab.test/Greet v1.0.0", "lab.test/words v1.1.0"))}
	cfg.Modules = []string{"lab.test/words@v1.2.0-rc.1"}
	cfg.SumDB = SumDB{URL: up.SumDB.URL, Key: up.Key}
	p := newProxy(t, cfg)
	res, err := p.Sync(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Packages != 3 || res.Fetched != 9 {
		t.Fatalf("result %+v, want ok, 3 versions, 9 files fetched", res)
	}
	// The upstream and the database go away: everything comes from the tree.
	up.Proxy.Close()
	up.SumDB.Close()
	zip, _ := os.ReadFile(filepath.Join(up.Dir, "lab.test", "!greet", "@v", "v1.0.0.zip"))
	h := p.Handler()
	for _, tc := range []struct {
		path string
		code int
		want string // a substring of the body
	}{
		{"/goproxy/lab.test/!greet/@v/list", 200, "v1.0.0\n"},
		{"/goproxy/lab.test/!greet/@v/v1.0.0.info", 200, `"Version":"v1.0.0"`},
		{"/goproxy/lab.test/!greet/@v/v1.0.0.mod", 200, "require lab.test/words v1.1.0"},
		{"/goproxy/lab.test/!greet/@v/v1.0.0.zip", 200, string(zip)},
		{"/goproxy/lab.test/words/@v/list", 200, "v1.1.0\nv1.2.0-rc.1\n"},
		{"/goproxy/lab.test/words/@latest", 200, `"Version":"v1.1.0"`},
		{"/goproxy/lab.test/!greet/@latest", 200, `"Version":"v1.0.0"`},
		{"/goproxy/lab.test/Greet/@v/list", 404, "not a GOPROXY path"},
		{"/goproxy/lab.test/nope/@v/list", 404, "not mirrored"},
		{"/goproxy/lab.test/nope/@latest", 404, "not mirrored"},
		{"/goproxy/lab.test/words/@v/v9.9.9.zip", 404, "not mirrored"},
		{"/goproxy/lab.test/words/@v/../../x.zip", 404, ""},
		{"/goproxy/sumdb/sumdb.lab.test/supported", 200, ""},
		{"/goproxy/sumdb/sumdb.lab.test/lookup/lab.test/!greet@v1.0.0", 200, up.Hashes["lab.test/Greet v1.0.0"]},
		{"/goproxy/sumdb/sumdb.lab.test/tile/8/0/000.p/3", 200, ""},
		{"/goproxy/sumdb/sumdb.lab.test/lookup/lab.test/other@v1.0.0", 404, "sync the module"},
		{"/goproxy/sumdb/other.test/supported", 404, "not proxied"},
	} {
		code, body := get(t, h, tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %.80q, want %d with %.80q", tc.path, code, body, tc.code, tc.want)
		}
	}
	st := p.Status()
	if st.Modules != 2 || st.Versions != 3 || st.SumDBLookups != 3 || st.LastResult != "ok" {
		t.Errorf("status %+v", st)
	}
	for _, tc := range []struct {
		q      string
		offset int
		want   string
		total  int
	}{
		{"", 0, "lab.test/Greet [v1.0.0] 1; lab.test/words [v1.1.0 v1.2.0-rc.1] 2", 2},
		{"WORDS", 0, "lab.test/words [v1.1.0 v1.2.0-rc.1] 2", 1},
		{"", 1, "lab.test/words [v1.1.0 v1.2.0-rc.1] 2", 2},
		{"nope", 0, "", 0},
	} {
		l, err := p.Modules(tc.q, tc.offset, 10)
		var got []string
		for _, m := range l.Packages {
			got = append(got, fmt.Sprintf("%s %v %d", m.Name, m.Versions, m.Files))
			if m.Bytes <= 0 {
				t.Errorf("module %s: size %d", m.Name, m.Bytes)
			}
		}
		if strings.Join(got, "; ") != tc.want || l.Total != tc.total || err != nil {
			t.Errorf("Modules(%q, %d) = %q (%d), %v; want %q (%d)", tc.q, tc.offset, got, l.Total, err, tc.want, tc.total)
		}
	}
	pub, err := p.Published(context.Background(), "modules")
	if err != nil {
		t.Fatal(err)
	}
	pub.Release()
	if len(pub.Files) < 12 {
		t.Errorf("published %d files, want the 9 version files, 2 lists and the database's answers", len(pub.Files))
	}
}

// TestSyncSumDBThroughUpstream: with no sumdb.url, the database is
// asked through the upstream GOPROXY when it proxies it.
func TestSyncSumDBThroughUpstream(t *testing.T) {
	up := newUpstream(t, testModules...)
	up.SumDB.Close() // not reachable directly
	cfg := DefaultConfig()
	cfg.Upstream = up.Proxy.URL + "/"
	cfg.Modules = []string{"lab.test/Greet@v1.0.0", "lab.test/words@v1.1.0"}
	cfg.SumDB = SumDB{Key: up.Key}
	p := newProxy(t, cfg)
	if _, err := p.Sync(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.Versions != 2 || st.SumDBLookups != 2 {
		t.Errorf("status %+v", st)
	}
}

func TestSyncRefuses(t *testing.T) {
	up := newUpstream(t, testModules...)
	good := up.goSum("lab.test/Greet v1.0.0", "lab.test/words v1.1.0")
	bad := strings.Replace(good, up.Hashes["lab.test/words v1.1.0"], "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1)
	badMod := strings.Replace(good, up.Hashes["lab.test/Greet v1.0.0/go.mod"], "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1)
	for _, tc := range []struct {
		name   string
		gosum  string
		sumdb  bool
		modify func() // damages the upstream
		want   string
	}{
		{name: "zip does not match go.sum", gosum: bad, want: "lab.test/words@v1.1.0: zip: hash"},
		{name: "go.mod does not match go.sum", gosum: badMod, want: "lab.test/Greet@v1.0.0: go.mod hash"},
		{name: "go.sum disagrees with the database", gosum: bad, sumdb: true, want: "/go.sum says the zip hash"},
		{name: "no hash without go.sum or database", gosum: "", want: "no hash to verify lab.test/Greet@v1.0.0"},
		{name: "damaged zip upstream", gosum: good, sumdb: true, modify: func() {
			p := filepath.Join(up.Dir, "lab.test", "words", "@v", "v1.1.0.zip")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b[:len(b)-30], make([]byte, 30)...), 0o644)
		}, want: "lab.test/words@v1.1.0: zip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Upstream = up.Proxy.URL
			cfg.GoMod = []string{project(t, tc.gosum)}
			if tc.sumdb {
				cfg.SumDB = SumDB{URL: up.SumDB.URL, Key: up.Key}
			}
			if tc.modify != nil {
				tc.modify()
			}
			p := newProxy(t, cfg)
			_, err := p.Sync(context.Background(), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrRefused) {
				t.Fatalf("sync: %v, want an error with %q", err, tc.want)
			}
			if cur, _ := p.Store("modules").Current(); cur != "" {
				t.Errorf("a refused sync published %s", cur)
			}
			if st := p.Status(); st.LastResult != "failed" || !strings.Contains(st.LastError, tc.want) {
				t.Errorf("status %+v", st)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	_, vkey, err := note.GenerateKey(rand.Reader, "sumdb.lab.test")
	if err != nil {
		t.Fatal(err)
	}
	gomod := filepath.Join(t.TempDir(), "go.mod")
	write(t, gomod, []byte("module x.test/a\n"))
	for _, tc := range []struct {
		name string
		cfg  func(*Config)
		want string // "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"full", func(c *Config) {
			c.Upstream, c.Modules, c.GoMod = "http://127.0.0.1:1/", []string{"lab.test/a@v1.0.0"}, []string{gomod}
			c.SumDB = SumDB{Key: vkey, URL: "http://127.0.0.1:2"}
		}, ""},
		{"modules without upstream", func(c *Config) { c.Modules = []string{"lab.test/a@v1.0.0"} }, "no upstream"},
		{"bad module", func(c *Config) { c.Upstream, c.Modules = "http://127.0.0.1:1", []string{"lab.test/a"} }, "has no @VERSION"},
		{"bad version", func(c *Config) { c.Upstream, c.Modules = "http://127.0.0.1:1", []string{"lab.test/a@1.0"} }, "modules[0]"},
		{"missing go.mod", func(c *Config) { c.Upstream, c.GoMod = "http://127.0.0.1:1", []string{"/nonexistent/go.mod"} }, "go_mod[0]"},
		{"bad key", func(c *Config) { c.SumDB.Key = "nope" }, "not a verifier key"},
		{"url without key", func(c *Config) { c.SumDB.URL = "http://127.0.0.1:2" }, "sumdb has no key"},
		{"parallel", func(c *Config) { c.Parallel = 0 }, "parallel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.cfg(&c)
			err := c.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSumDBProxyCache: answers the tree lacks are asked of the database
// while it answers, kept, and served from the cache once it is gone.
func TestSumDBProxyCache(t *testing.T) {
	up := newUpstream(t, testModules...)
	cfg := DefaultConfig()
	cfg.SumDB = SumDB{URL: up.SumDB.URL, Key: up.Key}
	p := newProxy(t, cfg) // nothing synced
	h := p.Handler()
	const lookup = "/goproxy/sumdb/sumdb.lab.test/lookup/lab.test/words@v1.1.0"
	want := up.Hashes["lab.test/words v1.1.0"]
	for _, step := range []struct {
		name, path string
		code       int
		want       string
	}{
		{"proxied", lookup, 200, want},
		{"latest proxied", "/goproxy/sumdb/sumdb.lab.test/latest", 200, "sumdb.lab.test"},
		{"bad path", "/goproxy/sumdb/sumdb.lab.test/lookup/../../x", 404, ""},
		{"database gone", "", 0, ""},
		{"from the cache", lookup, 200, want},
		{"latest from the cache", "/goproxy/sumdb/sumdb.lab.test/latest", 200, "sumdb.lab.test"},
		{"never looked up", "/goproxy/sumdb/sumdb.lab.test/lookup/lab.test/Greet@v1.0.0", 404, "sync the module"},
	} {
		if step.path == "" {
			up.SumDB.Close()
			continue
		}
		code, body := get(t, h, step.path)
		if code != step.code || !strings.Contains(body, step.want) {
			t.Errorf("%s: GET %s: %d %.80q, want %d with %q", step.name, step.path, code, body, step.code, step.want)
		}
	}
}
