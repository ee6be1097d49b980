package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airgapd/airgapd/api"
)

// mkrepo is the stand-in APT upstream's maker (dpkg-deb, apt-ftparchive,
// gpg), shared with mirror/apt's tests.
const mkrepo = "../../mirror/apt/testdata/mkrepo.sh"

// aptUpstream is an APT repo made in the test, signed with a test key in
// its own GNUPGHOME, served on loopback; a held path sends half its bytes
// and stalls until the client goes.
type aptUpstream struct {
	t          *testing.T
	dir, gnupg string
	srv        *httptest.Server
	mu         sync.Mutex
	hold       map[string]bool
	ranges     map[string][]string
}

func newAptUpstream(t *testing.T) *aptUpstream {
	t.Helper()
	need(t, "dpkg-deb", "apt-ftparchive", "gpg", "apt-get")
	gnupg, err := os.MkdirTemp("", "agpg") // short: gpg-agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", gnupg, "--kill", "all").Run()
		os.RemoveAll(gnupg)
	})
	u := &aptUpstream{t: t, dir: t.TempDir(), gnupg: gnupg, hold: map[string]bool{}, ranges: map[string][]string{}}
	u.mkrepo(nil, "key")
	files := http.FileServer(http.Dir(u.dir))
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		if rg := r.Header.Get("Range"); rg != "" {
			u.ranges[r.URL.Path] = append(u.ranges[r.URL.Path], rg)
		}
		hold := u.hold[r.URL.Path] && r.Header.Get("Range") == ""
		u.mu.Unlock()
		if hold {
			b, _ := os.ReadFile(filepath.Join(u.dir, filepath.FromSlash(r.URL.Path)))
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.WriteHeader(http.StatusOK)
			w.Write(b[:len(b)/2])
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *aptUpstream) mkrepo(env []string, args ...string) {
	u.t.Helper()
	cmd := exec.Command(mkrepo, args...)
	cmd.Env = append(append(os.Environ(), "GNUPGHOME="+u.gnupg), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		u.t.Fatalf("mkrepo.sh %v: %v\n%s", args, err, out)
	}
}

// deb builds pool/main/NAME_VERSION_amd64.deb; index signs a new Release.
func (u *aptUpstream) deb(name, version, dep string) string {
	u.mkrepo(nil, "deb", filepath.Join(u.dir, "pool", "main"), name, version, dep)
	return "pool/main/" + name + "_" + version + "_amd64.deb"
}

func (u *aptUpstream) index() { u.mkrepo(nil, "index", u.dir, "jammy") }

func aptConfig(u *aptUpstream, extra string) string {
	return fmt.Sprintf(`
advertise: { addresses: [127.0.0.1] }
mirror: { listen: 127.0.0.1:0, repos: [] }
apt:
  parallel: 3
  repos:
    - { name: up, url: %q, suites: [jammy], components: [main], architectures: [amd64], keyring: %q%s }
`, u.srv.URL+"/", filepath.Join(u.gnupg, "key.gpg"), extra)
}

func aptSync(t *testing.T, in *instance, verb string, names ...string) (string, error) {
	t.Helper()
	return run(t, 90*time.Second, airgapdBin, append([]string{"apt", verb, "--config", in.config}, names...)...)
}

// aptBox is an apt-get sandbox (-o Dir=…): its own sources.list.d, lists,
// cache and an empty dpkg status, so the host's apt is never touched.
// Packages are fetched with install --download-only (verified by apt
// against the signed indexes), not unpacked.
type aptBox struct {
	t   *testing.T
	dir string
}

func newAptBox(t *testing.T) *aptBox {
	t.Helper()
	b := &aptBox{t: t, dir: t.TempDir()}
	for _, d := range []string{"etc/apt/sources.list.d", "etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/trusted.gpg.d", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/lib/dpkg"} {
		os.MkdirAll(filepath.Join(b.dir, d), 0o755)
	}
	writeFile(t, filepath.Join(b.dir, "var/lib/dpkg/status"), "")
	return b
}

// useSources puts airgapd's NAME.sources (Signed-By inline) in the box.
func (b *aptBox) useSources(mirrorURL, name string) string {
	b.t.Helper()
	code, body, _ := mirrorGet(b.t, mirrorURL+"/apt/"+name+".sources", nil)
	if code != http.StatusOK || !strings.Contains(string(body), "Signed-By:") {
		b.t.Fatalf("GET %s.sources: %d %s", name, code, body)
	}
	writeFile(b.t, filepath.Join(b.dir, "etc/apt/sources.list.d", name+".sources"), string(body))
	return string(body)
}

func (b *aptBox) run(args ...string) (string, error) {
	b.t.Helper()
	opts := []string{"-o", "Dir=" + b.dir, "-o", "Dir::State::status=" + filepath.Join(b.dir, "var/lib/dpkg/status"),
		"-o", "Dir::Etc::SourceList=/dev/null", "-o", "Dir::Etc::SourceParts=" + filepath.Join(b.dir, "etc/apt/sources.list.d"),
		"-o", "Dir::Etc::Parts=" + filepath.Join(b.dir, "etc/apt/apt.conf.d"), "-o", "Dir::Etc::TrustedParts=" + filepath.Join(b.dir, "etc/apt/trusted.gpg.d"),
		"-o", "Dir::Etc::Trusted=" + filepath.Join(b.dir, "etc/apt/trusted.gpg"),
		"-o", "APT::Architecture=amd64", "-o", "APT::Architectures=amd64", "-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1"}
	return run(b.t, 60*time.Second, "apt-get", append(opts, args...)...)
}

// forgetLists drops the index files apt-get update fetched.
func (b *aptBox) forgetLists() {
	lists := filepath.Join(b.dir, "var/lib/apt/lists")
	os.RemoveAll(lists)
	os.MkdirAll(filepath.Join(lists, "partial"), 0o755)
}

// candidate is the version apt would install of pkg.
func (b *aptBox) candidate(pkg string) string {
	b.t.Helper()
	out, err := b.run("install", "--simulate", "-y", pkg)
	if err != nil {
		b.t.Fatalf("apt-get install --simulate %s: %v\n%s", pkg, err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "Inst" && f[1] == pkg {
			return strings.Trim(f[2], "()")
		}
	}
	b.t.Fatalf("apt-get would not install %s:\n%s", pkg, out)
	return ""
}

func (b *aptBox) downloaded() []string {
	m, _ := filepath.Glob(filepath.Join(b.dir, "var/cache/apt/archives/*.deb"))
	var out []string
	for _, p := range m {
		out = append(out, filepath.Base(p))
	}
	return out
}

func TestAptSyncThenAptGetInstallsOffline(t *testing.T) {
	u := newAptUpstream(t)
	u.deb("hello", "1.0", "")
	u.deb("hello", "2.0", "libgreet (>= 1.0)")
	u.deb("libgreet", "1.0", "")
	u.index()
	dir := t.TempDir()
	in := start(t, dir, aptConfig(u, ""))
	if out, err := aptSync(t, in, "sync", "up"); err != nil || !strings.Contains(out, "up: published revision") || !strings.Contains(out, "3 packages, 3 fetched") {
		t.Fatalf("apt sync: %v\n%s", err, out)
	}
	u.srv.Close() // the upstream is gone
	box := newAptBox(t)
	mirrorURL := in.status().listener("mirror")
	src := box.useSources(mirrorURL, "up")
	if !strings.Contains(src, "URIs: "+mirrorURL+"/apt/up/\n") {
		t.Errorf(".sources:\n%s", src)
	}
	if out, err := box.run("update"); err != nil || strings.Contains(out, "W:") {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	if out, err := box.run("install", "--download-only", "-y", "hello"); err != nil {
		t.Fatalf("apt-get install: %v\n%s", err, out)
	}
	if got := strings.Join(box.downloaded(), " "); got != "hello_2.0_amd64.deb libgreet_1.0_amd64.deb" {
		t.Errorf("apt downloaded %q, want hello 2.0 and its dependency", got)
	}
	var st api.AptStatus
	in.status().detail(t, "apt", &st)
	if len(st.Repos) != 1 || st.Repos[0].Packages != 3 || st.Repos[0].LastResult != "ok" {
		t.Errorf("status: %+v", st)
	}
	code, body, _ := mirrorGet(t, mirrorURL+"/apt/up/pool/main/hello_2.0_amd64.deb", map[string]string{"Range": "bytes=0-7"})
	if code != http.StatusPartialContent || string(body) != "!<arch>\n" {
		t.Errorf("Range on a .deb: %d %q", code, body)
	}
	m, err := run(t, 10*time.Second, "curl", "-fsS", "--unix-socket", filepath.Join(in.dir, "run", "api.sock"), "http://airgapd/metrics")
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	for _, want := range []string{`airgapd_apt_syncs_total{repo="up",result="ok"} 1`, `airgapd_apt_repo_packages{repo="up"} 3`, `airgapd_apt_last_sync_success{repo="up"} 1`, `airgapd_apt_requests_total{code="206"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestAptRefusesATamperedUpstream(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(u *aptUpstream, deb string)
		want   string
	}{
		{"deb", func(u *aptUpstream, deb string) {
			writeFile(t, filepath.Join(u.dir, deb), "!<arch>\nnot the package the index names")
		}, "pool/main/hello_3.0_amd64.deb"},
		{"Packages", func(u *aptUpstream, _ string) {
			for _, f := range []string{"Packages", "Packages.gz"} {
				writeFile(t, filepath.Join(u.dir, "dists/jammy/main/binary-amd64", f), "Package: evil\n")
			}
			os.RemoveAll(filepath.Join(u.dir, "dists/jammy/main/binary-amd64/by-hash"))
		}, "dists/jammy/main/binary-amd64/Packages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newAptUpstream(t)
			u.deb("hello", "2.0", "")
			u.index()
			in := start(t, t.TempDir(), aptConfig(u, ""))
			if out, err := aptSync(t, in, "sync"); err != nil {
				t.Fatalf("first sync: %v\n%s", err, out)
			}
			deb := u.deb("hello", "3.0", "")
			u.index()
			tt.tamper(u, deb)
			out, err := aptSync(t, in, "sync", "up")
			if err == nil || !strings.Contains(out, "FAILED") || !strings.Contains(out, tt.want) {
				t.Fatalf("sync of a tampered %s: %v, want a refusal naming %s\n%s", tt.name, err, tt.want, out)
			}
			box := newAptBox(t)
			box.useSources(in.status().listener("mirror"), "up")
			if out, err := box.run("update"); err != nil {
				t.Fatalf("apt-get update: %v\n%s", err, out)
			}
			if v := box.candidate("hello"); v != "2.0" {
				t.Errorf("apt's candidate is %s, want the previous snapshot's 2.0", v)
			}
		})
	}
}

func TestAptKeepOneServesOnlyTheNewest(t *testing.T) {
	u := newAptUpstream(t)
	old := u.deb("hello", "1.0", "")
	newer := u.deb("hello", "1:0.9", "") // the epoch wins
	u.index()
	in := start(t, t.TempDir(), aptConfig(u, ", keep: 1"))
	if out, err := aptSync(t, in, "sync", "up"); err != nil || !strings.Contains(out, "1 packages, 1 fetched") {
		t.Fatalf("apt sync: %v\n%s", err, out)
	}
	mirrorURL := in.status().listener("mirror")
	for p, want := range map[string]int{old: http.StatusNotFound, newer: http.StatusOK} {
		if code, _, _ := mirrorGet(t, mirrorURL+"/apt/up/"+p, nil); code != want {
			t.Errorf("GET %s: %d, want %d", p, code, want)
		}
	}
	box := newAptBox(t)
	box.useSources(mirrorURL, "up")
	if out, err := box.run("update"); err != nil {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	if out, err := box.run("install", "--download-only", "-y", "hello"); err != nil || strings.Join(box.downloaded(), " ") != "hello_1%3a0.9_amd64.deb" {
		t.Errorf("apt-get install: %v %v\n%s", err, box.downloaded(), out)
	}
}

func TestAptLocalFolderSignedWithTheSiteKey(t *testing.T) {
	u := newAptUpstream(t) // dpkg-deb only
	debs := t.TempDir()
	u.mkrepo(nil, "deb", debs, "hello", "1.0", "libgreet")
	u.mkrepo(nil, "deb", filepath.Join(debs, "libs"), "libgreet", "1.0", "")
	dir := t.TempDir()
	in := start(t, dir, fmt.Sprintf(`
advertise: { addresses: [127.0.0.1] }
mirror: { listen: 127.0.0.1:0, repos: [] }
apt:
  repos:
    - { name: local, path: %q, suites: [bookworm] }
`, debs))
	if out, err := aptSync(t, in, "index"); err != nil || !strings.Contains(out, "local:") {
		t.Fatalf("apt index: %v\n%s", err, out)
	}
	box := newAptBox(t)
	mirrorURL := in.status().listener("mirror")
	box.useSources(mirrorURL, "local")
	if out, err := box.run("update"); err != nil || strings.Contains(out, "W:") {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	if out, err := box.run("install", "--download-only", "-y", "hello"); err != nil || len(box.downloaded()) != 2 {
		t.Fatalf("apt-get install: %v %v\n%s", err, box.downloaded(), out)
	}
	// A Release changed after signing: apt refuses it.
	cur, err := filepath.EvalSymlinks(filepath.Join(dir, "data/mirror/apt/local/current"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"InRelease", "Release"} {
		p := filepath.Join(cur, "dists/bookworm", f)
		b, _ := os.ReadFile(p)
		os.Remove(p) // the pool's copy stays as it was
		writeFile(t, p, strings.Replace(string(b), "Label: local", "Label: changed", 1))
		// A later mtime, as a real edit would have: within the same second
		// the server rightly answers apt's If-Modified-Since with 304.
		later := time.Now().Add(time.Minute)
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	out, err := box.run("update")
	if err == nil && !strings.Contains(out, "W:") && !strings.Contains(out, "E:") {
		t.Fatalf("apt-get update accepted a changed Release:\n%s", out)
	}
	if !strings.Contains(out, "BADSIG") && !strings.Contains(out, "signatures were invalid") && !strings.Contains(out, "not signed") {
		t.Errorf("apt-get update did not say the signature is bad:\n%s", out)
	}
}

func TestAptKill9ThenResumedSyncCompletes(t *testing.T) {
	u := newAptUpstream(t)
	u.deb("hello", "1.0", "")
	u.index()
	dir := t.TempDir()
	body := aptConfig(u, "")
	in := start(t, dir, body)
	if out, err := aptSync(t, in, "sync", "up"); err != nil {
		t.Fatalf("first sync: %v\n%s", err, out)
	}
	u.deb("libgreet", "1.0", "")
	u.mkrepo([]string{"SIZE=3000000"}, "deb", filepath.Join(u.dir, "pool", "main"), "zbig", "1.0", "")
	held := "/pool/main/zbig_1.0_amd64.deb"
	u.index()
	u.mu.Lock()
	u.hold[held] = true
	u.mu.Unlock()
	syncCmd := exec.Command(airgapdBin, "apt", "sync", "--config", in.config, "up")
	var syncOut bytes.Buffer
	syncCmd.Stdout, syncCmd.Stderr = &syncOut, &syncOut
	if err := syncCmd.Start(); err != nil {
		t.Fatal(err)
	}
	syncDone := make(chan error, 1)
	go func() { syncDone <- syncCmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st api.AptStatus
		in.status().detail(t, "apt", &st)
		if p := st.Repos[0].Progress; p != nil && p.Phase == "packages" && p.Fetched == p.ToFetch-1 && p.BytesDone >= 1_400_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync did not reach the held package in 30s: %+v\n%s", st, syncOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.cmd.Process.Kill() // kill -9, mid-sync
	in.waitExit(10 * time.Second)
	if err := <-syncDone; err == nil {
		t.Errorf("apt sync succeeded though the server was killed:\n%s", syncOut.String())
	}
	in = start(t, dir, body)
	box := newAptBox(t)
	box.useSources(in.status().listener("mirror"), "up")
	if out, err := box.run("update"); err != nil {
		t.Fatalf("apt-get update after kill -9: %v\n%s", err, out)
	}
	if out, err := box.run("install", "--simulate", "-y", "zbig"); err == nil {
		t.Errorf("after kill -9 apt sees the unpublished zbig:\n%s", out)
	}
	u.mu.Lock()
	u.hold[held] = false
	u.mu.Unlock()
	out, err := aptSync(t, in, "sync", "up")
	if err != nil || !strings.Contains(out, "3 packages, 1 fetched") {
		t.Fatalf("sync after restart: %v\n%s", err, out)
	}
	u.mu.Lock()
	rg := u.ranges[held]
	u.mu.Unlock()
	if len(rg) != 1 || rg[0] == "bytes=0-" {
		t.Errorf("held package resumed with Range %q, want one bytes=N- with N > 0", rg)
	}
	// Both snapshots may be published within one second here, where the
	// new InRelease's Last-Modified equals what apt has and earns a 304
	// (as from nginx); apt starts from no lists, as on a new node.
	box.forgetLists()
	if out, err := box.run("update"); err != nil {
		t.Fatalf("apt-get update: %v\n%s", err, out)
	}
	if out, err := box.run("install", "--download-only", "-y", "zbig"); err != nil || len(box.downloaded()) != 1 {
		t.Fatalf("apt-get install zbig: %v %v\n%s", err, box.downloaded(), out)
	}
}
