package apt

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// upstream is a stand-in APT repo made by testdata/mkrepo.sh (dpkg-deb,
// apt-ftparchive, gpg), served over loopback HTTP.
type upstream struct {
	t          *testing.T
	dir, gnupg string
	srv        *httptest.Server
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	for _, tool := range []string{"dpkg-deb", "apt-ftparchive", "gpg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run scripts/install-test-deps.sh", tool)
		}
	}
	gnupg, err := os.MkdirTemp("", "agpg") // short: gpg-agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", gnupg, "--kill", "all").Run()
		os.RemoveAll(gnupg)
	})
	u := &upstream{t: t, dir: t.TempDir(), gnupg: gnupg}
	u.run("key")
	u.srv = httptest.NewServer(http.FileServer(http.Dir(u.dir)))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) run(args ...string) {
	u.t.Helper()
	cmd := exec.Command("testdata/mkrepo.sh", args...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+u.gnupg)
	if out, err := cmd.CombinedOutput(); err != nil {
		u.t.Fatalf("mkrepo.sh %v: %v\n%s", args, err, out)
	}
}

func (u *upstream) deb(name, version, dep string) {
	u.run("deb", filepath.Join(u.dir, "pool", "main"), name, version, dep)
}

func (u *upstream) index() { u.run("index", u.dir, "jammy") }

func (u *upstream) repo(name string) Repo {
	return Repo{Name: name, URL: u.srv.URL + "/", Suites: []string{"jammy"}, Keyring: filepath.Join(u.gnupg, "key.gpg")}
}

func newApt(t *testing.T, repos ...Repo) *Apt {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Repos = repos
	a, err := New(cfg, Deps{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tree lists the published tree of repo name.
func tree(t *testing.T, a *Apt, name string) map[string]bool {
	t.Helper()
	cur, err := a.Store(name).Current()
	if err != nil || cur == "" {
		t.Fatalf("nothing published: %v", err)
	}
	out := map[string]bool{}
	filepath.WalkDir(cur, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(cur, p)
			out[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	return out
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestAptSyncServesTheUpstreamVerified(t *testing.T) {
	u := newUpstream(t)
	u.deb("hello", "1.0", "")
	u.deb("hello", "2.0", "libgreet (>= 1.0)")
	u.deb("libgreet", "1.0", "")
	u.index()
	a := newApt(t, u.repo("up"))
	res, err := a.Sync(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Packages != 3 || res[0].Fetched != 3 {
		t.Fatalf("result %+v, want 3 packages fetched", res[0])
	}
	got := tree(t, a, "up")
	for _, want := range []string{"dists/jammy/InRelease", "dists/jammy/main/binary-amd64/Packages", "dists/jammy/main/binary-amd64/Packages.gz",
		"pool/main/hello_1.0_amd64.deb", "pool/main/hello_2.0_amd64.deb", "pool/main/libgreet_1.0_amd64.deb"} {
		if !got[want] {
			t.Errorf("tree lacks %s: %v", want, got)
		}
	}
	byHash := 0
	for p := range got {
		if strings.Contains(p, "/by-hash/SHA256/") {
			byHash++
		}
	}
	if byHash != 2 {
		t.Errorf("by-hash paths: %d, want 2", byHash)
	}
	h := a.Handler()
	up, _ := os.ReadFile(filepath.Join(u.dir, "dists/jammy/InRelease"))
	if code, body := get(t, h, "/apt/up/dists/jammy/InRelease"); code != 200 || body != string(up) {
		t.Errorf("InRelease: %d, byte for byte %v", code, body == string(up))
	}
	code, src := get(t, h, "/apt/up.sources")
	if code != 200 || !strings.Contains(src, "Suites: jammy\n") || !strings.Contains(src, "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----") {
		t.Errorf(".sources: %d\n%s", code, src)
	}
	if res, err := a.Sync(context.Background(), []string{"up"}, nil); err != nil || !res[0].UpToDate {
		t.Errorf("second sync: %+v %v, want up to date", res, err)
	}
}

func TestAptSyncRefusesAndKeepsThePublishedTree(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(u *upstream)
		want   string // in the error: the file refused
	}{
		{"tampered deb", func(u *upstream) {
			os.WriteFile(filepath.Join(u.dir, "pool/main/hello_3.0_amd64.deb"), []byte("not the package the index names"), 0o644)
		}, "pool/main/hello_3.0_amd64.deb"},
		{"tampered Packages", func(u *upstream) {
			for _, f := range []string{"Packages", "Packages.gz"} {
				p := filepath.Join(u.dir, "dists/jammy/main/binary-amd64", f)
				os.WriteFile(p, []byte("Package: evil\n"), 0o644)
			}
			os.RemoveAll(filepath.Join(u.dir, "dists/jammy/main/binary-amd64/by-hash"))
		}, "dists/jammy/main/binary-amd64/Packages"},
		{"tampered InRelease", func(u *upstream) {
			p := filepath.Join(u.dir, "dists/jammy/InRelease")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), "Suite: jammy", "Suite: jammz", 1)), 0o644)
		}, "dists/jammy/InRelease"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t)
			u.deb("hello", "1.0", "")
			u.index()
			a := newApt(t, u.repo("up"))
			if _, err := a.Sync(context.Background(), nil, nil); err != nil {
				t.Fatal(err)
			}
			before, _ := a.Store("up").Current()
			u.deb("hello", "3.0", "")
			u.index()
			tt.tamper(u)
			_, err := a.Sync(context.Background(), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("sync: %v, want a refusal naming %s", err, tt.want)
			}
			if after, _ := a.Store("up").Current(); after != before {
				t.Errorf("published %s, want the previous %s still", after, before)
			}
			if tree(t, a, "up")["pool/main/hello_3.0_amd64.deb"] {
				t.Error("the refused package is served")
			}
		})
	}
}

func TestAptKeepServesOnlyTheNewest(t *testing.T) {
	u := newUpstream(t)
	u.deb("hello", "1.0", "")
	u.deb("hello", "1.0-2", "")
	u.deb("hello", "1:0.5", "") // the epoch wins
	u.deb("libgreet", "1.0", "")
	u.index()
	r := u.repo("up")
	r.Keep = 1
	a := newApt(t, r)
	if _, err := a.Sync(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	got := tree(t, a, "up")
	for p, want := range map[string]bool{"pool/main/hello_1:0.5_amd64.deb": true, "pool/main/hello_1.0-2_amd64.deb": false, "pool/main/hello_1.0_amd64.deb": false, "pool/main/libgreet_1.0_amd64.deb": true} {
		if got[p] != want {
			t.Errorf("%s served: %v, want %v", p, got[p], want)
		}
	}
}

func TestAptIndexSignsALocalFolder(t *testing.T) {
	u := newUpstream(t) // for dpkg-deb only
	dir := t.TempDir()
	u.run("deb", dir, "hello", "1.0", "")
	u.run("deb", filepath.Join(dir, "sub"), "libgreet", "2.0", "")
	a := newApt(t, Repo{Name: "local", Path: dir})
	res, err := a.Index(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Packages != 2 || res[0].HeadersRead != 2 {
		t.Fatalf("first index %+v", res[0])
	}
	got := tree(t, a, "local")
	for _, want := range []string{"dists/stable/InRelease", "dists/stable/Release", "dists/stable/Release.gpg", "dists/stable/main/binary-amd64/Packages.gz", "pool/main/hello_1.0_amd64.deb", "pool/main/sub/libgreet_2.0_amd64.deb"} {
		if !got[want] {
			t.Errorf("tree lacks %s", want)
		}
	}
	_, key := get(t, a.Handler(), "/apt/local.asc")
	ring, err := openpgp.ReadArmoredKeyRing(strings.NewReader(key))
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := a.Store("local").Current()
	in, _ := os.ReadFile(filepath.Join(cur, "dists/stable/InRelease"))
	signed, err := verifyInRelease(in, ring)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := parseRelease(signed)
	if err != nil || len(rel.files) != 2 {
		t.Fatalf("Release: %v %v", rel, err)
	}
	_, pk := get(t, a.Handler(), "/apt/local/dists/stable/main/binary-amd64/Packages")
	if !strings.Contains(pk, "Filename: pool/main/sub/libgreet_2.0_amd64.deb\n") || !strings.Contains(pk, "Description: test package hello\n Built by") {
		t.Errorf("Packages:\n%s", pk)
	}
	u.run("deb", dir, "hello", "2.0", "")
	res, err = a.Index(context.Background(), nil, nil)
	if err != nil || res[0].HeadersRead != 1 || res[0].Reused != 2 {
		t.Fatalf("second index %+v %v: want 1 read, 2 reused", res, err)
	}
	if res, err := a.Index(context.Background(), nil, nil); err != nil || !res[0].UpToDate {
		t.Fatalf("third index %+v %v: want up to date", res, err)
	}
}

func TestAptWantedIndexes(t *testing.T) {
	comps, arches := []string{"main", "universe"}, []string{"amd64"}
	tests := []struct {
		path string
		want bool
	}{
		{"main/binary-amd64/Packages.xz", true},
		{"main/binary-amd64/Release", true},
		{"main/binary-all/Packages.gz", true},
		{"main/binary-arm64/Packages.xz", false},
		{"main/binary-amd64/Packages.diff/Index", false},
		{"main/source/Sources.xz", false},
		{"main/i18n/Translation-en.bz2", true},
		{"main/cnf/Commands-amd64.xz", true},
		{"main/cnf/Commands-arm64.xz", false},
		{"main/dep11/Components-amd64.yml.gz", true},
		{"main/dep11/icons-64x64.tar.gz", true},
		{"main/debian-installer/binary-amd64/Packages.gz", false},
		{"main/Contents-amd64.gz", true},
		{"Contents-amd64.gz", true},
		{"Contents-arm64.gz", false},
		{"restricted/binary-amd64/Packages.gz", false},
	}
	for _, tt := range tests {
		if got := wanted(tt.path, comps, arches); got != tt.want {
			t.Errorf("wanted(%s) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestAptSyncReleaseAndReleaseGPG(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(u *upstream, r *Repo)
		want    string // "" = the sync succeeds
	}{
		{"detached signature only", func(u *upstream, r *Repo) {
			os.Remove(filepath.Join(u.dir, "dists/jammy/InRelease"))
		}, ""},
		{"Release changed after signing", func(u *upstream, r *Repo) {
			os.Remove(filepath.Join(u.dir, "dists/jammy/InRelease"))
			p := filepath.Join(u.dir, "dists/jammy/Release")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b, "Label: changed\n"...), 0o644)
		}, "dists/jammy/Release: Release.gpg: signature does not verify"},
		{"unsigned Release", func(u *upstream, r *Repo) {
			os.Remove(filepath.Join(u.dir, "dists/jammy/InRelease"))
			os.Remove(filepath.Join(u.dir, "dists/jammy/Release.gpg"))
		}, "an unsigned Release is not mirrored"},
		{"another key", func(u *upstream, r *Repo) {
			other := newUpstream(t)
			r.Keyring = filepath.Join(other.gnupg, "key.gpg")
		}, "dists/jammy/InRelease: InRelease: signature does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUpstream(t)
			u.deb("hello", "1.0", "")
			u.index()
			r := u.repo("up")
			tt.prepare(u, &r)
			a := newApt(t, r)
			_, err := a.Sync(context.Background(), nil, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := tree(t, a, "up"); !got["dists/jammy/Release.gpg"] || !got["pool/main/hello_1.0_amd64.deb"] {
					t.Errorf("tree %v", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("sync: %v, want %q", err, tt.want)
			}
			if cur, _ := a.Store("up").Current(); cur != "" {
				t.Errorf("published %s though the Release was refused", cur)
			}
		})
	}
}
