package goproxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	modzip "golang.org/x/mod/zip"
)

// fakeModule is a module version the tests' upstream serves: its files
// (go.mod among them).
type fakeModule struct {
	Path, Version string
	Files         map[string]string
}

// upstream is a stand-in GOPROXY (a cache/download folder over HTTP) and
// a checksum database covering its modules.
type upstream struct {
	Dir    string
	Proxy  *httptest.Server
	SumDB  *httptest.Server
	Key    string // verifier key
	GoSum  map[module.Version]string
	Hashes map[string]string // "PATH VERSION" and "PATH VERSION/go.mod" → h1
	// Grow adds n records of filler modules to the database.
	Grow func(n int)
}

// newUpstream writes mods into a GOPROXY folder with
// golang.org/x/mod/zip and serves it with a checksum database made with
// golang.org/x/mod/sumdb's test server and a note signer.
func newUpstream(t *testing.T, mods ...fakeModule) *upstream {
	t.Helper()
	u := &upstream{Dir: t.TempDir(), Hashes: map[string]string{}}
	for _, m := range mods {
		u.add(t, m)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, "sumdb.lab.test")
	if err != nil {
		t.Fatal(err)
	}
	u.Key = vkey
	ts := sumdb.NewTestServer(skey, func(path, vers string) ([]byte, error) {
		if strings.HasPrefix(path, "filler.test/") {
			return []byte(fmt.Sprintf("%s %s h1:x=\n%s %s/go.mod h1:y=\n", path, vers, path, vers)), nil
		}
		z, ok1 := u.Hashes[path+" "+vers]
		g, ok2 := u.Hashes[path+" "+vers+"/go.mod"]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("no module %s@%s", path, vers)
		}
		return []byte(fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", path, vers, z, path, vers, g)), nil
	})
	fillers := 0
	u.Grow = func(n int) {
		for range n {
			fillers++
			if _, err := ts.Lookup(context.Background(), module.Version{Path: fmt.Sprintf("filler.test/m%d", fillers), Version: "v1.0.0"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	u.SumDB = httptest.NewServer(sumdb.NewServer(ts))
	t.Cleanup(u.SumDB.Close)
	// Every module is in the database before the tests look: one tree,
	// as a real database has it.
	for _, m := range mods {
		esc, _ := module.EscapePath(m.Path)
		resp, err := http.Get(u.SumDB.URL + "/lookup/" + esc + "@" + m.Version)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("sumdb lookup %s: %v %v", m.Path, err, resp)
		}
		resp.Body.Close()
	}
	// The upstream proxies its database too, as GOPROXYs may
	// (…/sumdb/NAME/supported, lookup, tile).
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(u.Dir)))
	mux.Handle("/sumdb/sumdb.lab.test/", http.StripPrefix("/sumdb/sumdb.lab.test", sumdb.NewServer(ts)))
	mux.HandleFunc("/sumdb/sumdb.lab.test/supported", func(http.ResponseWriter, *http.Request) {})
	u.Proxy = httptest.NewServer(mux)
	t.Cleanup(u.Proxy.Close)
	return u
}

// add writes one module version's .info, .mod and .zip and records its
// hashes.
func (u *upstream) add(t *testing.T, m fakeModule) {
	t.Helper()
	src := t.TempDir()
	for name, body := range m.Files {
		p := filepath.Join(src, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mv := module.Version{Path: m.Path, Version: m.Version}
	esc, _ := module.EscapePath(m.Path)
	ev, _ := module.EscapeVersion(m.Version)
	dir := filepath.Join(u.Dir, filepath.FromSlash(esc), "@v")
	os.MkdirAll(dir, 0o755)
	var z bytes.Buffer
	if err := modzip.CreateFromDir(&z, mv, src); err != nil {
		t.Fatal(err)
	}
	zipFile := filepath.Join(dir, ev+".zip")
	write(t, zipFile, z.Bytes())
	write(t, filepath.Join(dir, ev+".mod"), []byte(m.Files["go.mod"]))
	write(t, filepath.Join(dir, ev+".info"), []byte(fmt.Sprintf(`{"Version":%q,"Time":"2026-01-02T03:04:05Z"}`, m.Version)))
	f, _ := os.OpenFile(filepath.Join(dir, "list"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	fmt.Fprintln(f, m.Version)
	f.Close()
	h1, err := dirhash.HashZip(zipFile, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	u.Hashes[m.Path+" "+m.Version] = h1
	u.Hashes[m.Path+" "+m.Version+"/go.mod"] = hashGoMod([]byte(m.Files["go.mod"]))
}

// goSum is the go.sum lines of the given "PATH VERSION" keys (both the
// zip's and the go.mod's).
func (u *upstream) goSum(keys ...string) string {
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s\n%s/go.mod %s\n", k, u.Hashes[k], k, u.Hashes[k+"/go.mod"])
	}
	return b.String()
}

func write(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
