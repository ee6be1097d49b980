package rpm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/google/rpmpack"

	"github.com/airgapd/airgapd/mirror"
)

func writeTestRPM(t *testing.T, dir, name, version string, requires ...string) {
	t.Helper()
	md := rpmpack.RPMMetaData{Name: name, Version: version, Release: "1", Arch: "noarch", Summary: "s", Description: "d", Licence: "MIT", BuildTime: time.Unix(1700000000, 0)}
	for _, r := range requires {
		if err := md.Requires.Set(r); err != nil {
			t.Fatal(err)
		}
	}
	r, err := rpmpack.NewRPM(md)
	if err != nil {
		t.Fatal(err)
	}
	r.AddFile(rpmpack.RPMFile{Name: "/usr/bin/" + name, Body: []byte(name), Mode: 0o755, MTime: 1700000000})
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-"+version+"-1.noarch.rpm"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newLocalMirror(t *testing.T, repo Repo) (*Mirror, string) {
	t.Helper()
	data := t.TempDir()
	cfg := DefaultConfig()
	cfg.Repos = []Repo{repo}
	m, err := New(cfg, Deps{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	return m, data
}

func readPublished(t *testing.T, data, rel string) []byte {
	t.Helper()
	cur, err := mirror.RepoStore(data, "local").Current()
	if err != nil || cur == "" {
		t.Fatalf("nothing published: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(cur, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIndexIncrementalAndZstd(t *testing.T) {
	dir := t.TempDir()
	writeTestRPM(t, dir, "a", "1.0")
	writeTestRPM(t, dir, "b", "2.0", "a >= 1.0", "rpmlib(Foo) <= 1")
	m, data := newLocalMirror(t, Repo{Name: "local", Path: dir, Compress: "zstd"})
	ctx := context.Background()
	res, err := m.Index(ctx, nil, nil)
	if err != nil || len(res) != 1 || res[0].HeadersRead != 2 || res[0].Packages != 2 {
		t.Fatalf("first index: %+v %v", res, err)
	}
	md, err := parseRepomd(readPublished(t, data, "repodata/repomd.xml"))
	if err != nil {
		t.Fatal(err)
	}
	pd, _ := md.primary()
	if !strings.HasSuffix(pd.Location.Href, "-primary.xml.zst") {
		t.Errorf("primary is %s, want zstd", pd.Location.Href)
	}
	f, _ := os.Open(filepath.Join(dataCurrent(t, data), pd.Location.Href))
	pkgs, err := parsePrimary(f, pd.Location.Href)
	f.Close()
	if err != nil || len(pkgs) != 2 {
		t.Fatalf("primary: %v %v", pkgs, err)
	}

	// Nothing changed: up to date, nothing read.
	if res, err := m.Index(ctx, nil, nil); err != nil || !res[0].UpToDate || res[0].HeadersRead != 0 {
		t.Fatalf("second index: %+v %v", res, err)
	}
	// One added, one touched: two headers read, one reused.
	writeTestRPM(t, dir, "c", "3.0")
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(dir, "a-1.0-1.noarch.rpm"), later, later)
	res, err = m.Index(ctx, []string{"local"}, nil)
	if err != nil || res[0].HeadersRead != 2 || res[0].Reused != 1 || res[0].Packages != 3 {
		t.Fatalf("third index: %+v %v", res, err)
	}
	if got := m.Status().Repos[0]; got.Packages != 3 || got.HeadersRead != 2 || got.LastResult != "ok" {
		t.Errorf("status: %+v", got)
	}
}

func dataCurrent(t *testing.T, data string) string {
	cur, _ := mirror.RepoStore(data, "local").Current()
	return cur
}

func TestIndexRequiresFiltered(t *testing.T) {
	dir := t.TempDir()
	writeTestRPM(t, dir, "b", "2.0", "a >= 1:1.0-2", "rpmlib(Foo) <= 1", "/usr/bin/b", "b")
	fi, _ := os.Stat(filepath.Join(dir, "b-2.0-1.noarch.rpm"))
	e, err := readPackage(filepath.Join(dir, "b-2.0-1.noarch.rpm"), "b-2.0-1.noarch.rpm", fi)
	if err != nil {
		t.Fatal(err)
	}
	p := string(e.Primary)
	for _, want := range []string{`<rpm:entry name="a" flags="GE" epoch="1" ver="1.0" rel="2"/>`, `<file>/usr/bin/b</file>`, `<version epoch="0" ver="2.0" rel="1"/>`, `pkgid="YES">` + e.PkgID} {
		if !strings.Contains(p, want) {
			t.Errorf("primary lacks %s:\n%s", want, p)
		}
	}
	for _, not := range []string{"rpmlib(", `name="/usr/bin/b"`, `<rpm:entry name="b"/>`} {
		if strings.Contains(strings.SplitN(p, "<rpm:requires>", 2)[1], not) {
			t.Errorf("requires keeps %s (createrepo_c drops it):\n%s", not, p)
		}
	}
}

func TestIndexSigned(t *testing.T) {
	dir := t.TempDir()
	writeTestRPM(t, dir, "a", "1.0")
	m, data := newLocalMirror(t, Repo{Name: "local", Path: dir, Sign: true})
	if _, err := m.Index(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	md := readPublished(t, data, "repodata/repomd.xml")
	sig := readPublished(t, data, "repodata/repomd.xml.asc")
	key := readPublished(t, data, "repodata/repomd.xml.key")
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(key))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openpgp.CheckArmoredDetachedSignature(ring, bytes.NewReader(md), bytes.NewReader(sig), nil); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
	bad := bytes.Replace(md, []byte("<revision>"), []byte("<revision>9"), 1)
	if _, err := openpgp.CheckArmoredDetachedSignature(ring, bytes.NewReader(bad), bytes.NewReader(sig), nil); err == nil {
		t.Error("a tampered repomd.xml verifies")
	}
	if fi, err := os.Stat(defaultKeyPath(data)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("generated key: %v %v", fi, err)
	}
	// The key is made once: a second index (after a change) signs with it.
	writeTestRPM(t, dir, "b", "1.0")
	if _, err := m.Index(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readPublished(t, data, "repodata/repomd.xml.key"), key) {
		t.Error("the second index used another key")
	}
}
