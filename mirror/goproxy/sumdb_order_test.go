package goproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
)

// nodeClient is a node's go command's checksum database client: fresh
// state, asking the proxy's handler (the database itself gone).
type nodeClient struct {
	t      *testing.T
	h      func(path string) (int, []byte)
	key    string
	mu     sync.Mutex
	latest []byte
}

func (c *nodeClient) ReadRemote(path string) ([]byte, error) {
	code, b := c.h("/goproxy/sumdb/sumdb.lab.test" + path)
	if code != 200 {
		return nil, fmt.Errorf("GET %s: %d %s", path, code, b)
	}
	return b, nil
}
func (c *nodeClient) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return []byte(c.key), nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.latest), nil
}
func (c *nodeClient) WriteConfig(file string, old, new []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !bytes.Equal(old, c.latest) {
		return sumdb.ErrWriteConflict
	}
	c.latest = bytes.Clone(new)
	return nil
}
func (c *nodeClient) ReadCache(string) ([]byte, error) { return nil, fs.ErrNotExist }
func (c *nodeClient) WriteCache(string, []byte)        {}
func (c *nodeClient) Log(string)                       {}
func (c *nodeClient) SecurityError(msg string)         { c.t.Error(msg) }

// TestSumDBAnyOrder: the database grew while the sync looked modules up
// (each lookup answered with a bigger tree), yet a node that looks them
// up offline in any order verifies every one from what was kept.
func TestSumDBAnyOrder(t *testing.T) {
	up := newUpstream(t) // no module looked up yet
	mods := []string{"lab.test/Greet@v1.0.0", "lab.test/words@v1.1.0", "lab.test/words@v1.2.0-rc.1"}
	for _, m := range testModules {
		up.add(t, m)
	}
	for i := range 2 {
		m := fakeModule{Path: fmt.Sprintf("lab.test/m%d", i), Version: "v1.0.0", Files: map[string]string{"go.mod": fmt.Sprintf("module lab.test/m%d\n", i)}}
		up.add(t, m)
		mods = append(mods, m.Path+"@"+m.Version)
	}
	up.Grow(200)
	// The modules are in the database long before the sync (old
	// records, as on a real one); only fillers arrive while it runs.
	for _, m := range mods {
		path, vers, _ := strings.Cut(m, "@")
		esc, _ := module.EscapePath(path)
		resp, err := http.Get(up.SumDB.URL + "/lookup/" + esc + "@" + vers)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("lookup %s: %v", m, err)
		}
		resp.Body.Close()
	}
	up.Grow(500)
	grow := []int{300, 7, 250, 600, 3, 256, 90}
	n := 0
	// The database grows by 300 records before each lookup: the
	// lookups' trees cross tile boundaries.
	growing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/lookup/") {
			up.Grow(grow[n%len(grow)])
			n++
		}
		httputil.NewSingleHostReverseProxy(mustURL(t, up.SumDB.URL)).ServeHTTP(w, r)
	}))
	defer growing.Close()
	cfg := DefaultConfig()
	cfg.Upstream = up.Proxy.URL
	cfg.Parallel = 1
	cfg.Modules = mods
	cfg.SumDB = SumDB{URL: growing.URL, Key: up.Key}
	p := newProxy(t, cfg)
	if _, err := p.Sync(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	up.SumDB.Close()
	growing.Close()
	h := p.Handler()
	get := func(path string) (int, []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, b
	}
	for _, o := range permutations(len(mods)) {
		c := sumdb.NewClient(&nodeClient{t: t, h: get, key: up.Key})
		for _, i := range o {
			path, vers, _ := strings.Cut(mods[i], "@")
			if _, err := c.Lookup(path, vers); err != nil && !errors.Is(err, sumdb.ErrGONOSUMDB) {
				t.Errorf("order %v: lookup %s: %v", o, mods[i], err)
			}
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// permutations are every order of 0..n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}
