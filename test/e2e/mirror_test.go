package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/rpmpack"

	"github.com/airgapd/airgapd/api"
)

// rpmUpstream is "the internet" for the mirror tests: a folder of RPMs built
// with rpmpack, indexed by createrepo_c, served on 127.0.0.1 by an HTTP
// server that counts requests and can hold a package's response half-way.
type rpmUpstream struct {
	t   *testing.T
	dir string
	srv *httptest.Server

	mu     sync.Mutex
	gets   map[string]int      // path → requests
	ranges map[string][]string // path → Range headers seen
	hold   map[string]bool     // path → send half, then stall until the client goes
	held   map[string]bool     // a held response is stalling now
}

func newRPMUpstream(t *testing.T) *rpmUpstream {
	t.Helper()
	need(t, "createrepo_c")
	u := &rpmUpstream{t: t, dir: t.TempDir(), gets: map[string]int{}, ranges: map[string][]string{}, hold: map[string]bool{}, held: map[string]bool{}}
	files := http.FileServer(http.Dir(u.dir))
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.gets[r.URL.Path]++
		if rg := r.Header.Get("Range"); rg != "" {
			u.ranges[r.URL.Path] = append(u.ranges[r.URL.Path], rg)
		}
		hold := u.hold[r.URL.Path] && r.Header.Get("Range") == ""
		if hold {
			u.held[r.URL.Path] = true
		}
		u.mu.Unlock()
		if hold {
			b, err := os.ReadFile(filepath.Join(u.dir, filepath.FromSlash(r.URL.Path)))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.WriteHeader(http.StatusOK)
			w.Write(b[:len(b)/2])
			http.NewResponseController(w).Flush()
			<-r.Context().Done() // the client goes (killed)
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// add builds name-1.0-1.noarch.rpm with size bytes of incompressible content.
func (u *rpmUpstream) add(name string, size int) string {
	u.t.Helper()
	r, err := rpmpack.NewRPM(rpmpack.RPMMetaData{Name: name, Version: "1.0", Release: "1", Arch: "noarch",
		Summary: "airgapd test package " + name, Description: "test", Licence: "MIT", BuildTime: time.Unix(1700000000, 0)})
	if err != nil {
		u.t.Fatal(err)
	}
	body := make([]byte, size)
	rng := rand.NewChaCha8([32]byte([]byte(fmt.Sprintf("%-32s", name))))
	rng.Read(body)
	r.AddFile(rpmpack.RPMFile{Name: "/opt/" + name + "/data", Body: body, Mode: 0o644, MTime: 1700000000})
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		u.t.Fatal(err)
	}
	rel := "Packages/" + name + "-1.0-1.noarch.rpm"
	os.MkdirAll(filepath.Join(u.dir, "Packages"), 0o755)
	if err := os.WriteFile(filepath.Join(u.dir, rel), buf.Bytes(), 0o644); err != nil {
		u.t.Fatal(err)
	}
	return rel
}

// index runs createrepo_c (with --update once there is repodata).
func (u *rpmUpstream) index() {
	u.t.Helper()
	args := []string{"--quiet"}
	if _, err := os.Stat(filepath.Join(u.dir, "repodata")); err == nil {
		args = append(args, "--update")
	}
	if out, err := run(u.t, 60*time.Second, "createrepo_c", append(args, u.dir)...); err != nil {
		u.t.Fatalf("createrepo_c: %v\n%s", err, out)
	}
}

func (u *rpmUpstream) url() string { return u.srv.URL + "/" }

func (u *rpmUpstream) count(rel string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.gets["/"+rel]
}

func (u *rpmUpstream) file(rel string) []byte {
	u.t.Helper()
	b, err := os.ReadFile(filepath.Join(u.dir, filepath.FromSlash(rel)))
	if err != nil {
		u.t.Fatal(err)
	}
	return b
}

// dnfRoot is a throwaway dnf setup: repos.d holding airgapd's .repo files
// and an installroot, both under one temp dir.
type dnfRoot struct {
	t   *testing.T
	dir string
}

func newDNFRoot(t *testing.T) *dnfRoot {
	t.Helper()
	need(t, "dnf")
	d := &dnfRoot{t: t, dir: t.TempDir()}
	os.MkdirAll(filepath.Join(d.dir, "repos.d"), 0o755)
	return d
}

// useRepo fetches airgapd's NAME.repo into repos.d.
func (d *dnfRoot) useRepo(mirrorURL, name string) string {
	d.t.Helper()
	code, body, _ := mirrorGet(d.t, mirrorURL+"/repos/"+name+".repo", nil)
	if code != http.StatusOK {
		d.t.Fatalf("GET %s.repo: %d %s", name, code, body)
	}
	writeFile(d.t, filepath.Join(d.dir, "repos.d", name+".repo"), string(body))
	return string(body)
}

func (d *dnfRoot) run(args ...string) (string, error) {
	d.t.Helper()
	base := []string{"--setopt=reposdir=" + filepath.Join(d.dir, "repos.d"), "--installroot=" + filepath.Join(d.dir, "root"),
		"--releasever=9", "--setopt=skip_if_unavailable=False", "--disableplugin=local", "-y", "-q"}
	return run(d.t, 90*time.Second, "dnf", append(base, args...)...)
}

// packages lists what dnf sees in repo, fresh from the server.
func (d *dnfRoot) packages(repo string) []string {
	d.t.Helper()
	out, err := d.run("--refresh", "repoquery", "--repo", repo, "--qf", "%{name}")
	if err != nil {
		d.t.Fatalf("dnf repoquery: %v\n%s", err, out)
	}
	var names []string
	for _, l := range strings.Fields(out) {
		names = append(names, l)
	}
	slices.Sort(names)
	return names
}

func mirrorGet(t *testing.T, url string, hdr map[string]string) (int, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// rawGet sends path exactly as given (no client-side cleaning) and returns
// the status line and body.
func rawGet(t *testing.T, addr, path string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	b, _ := io.ReadAll(c)
	return string(b)
}

// mirrorSync runs `airgapd mirror sync` against in.
func mirrorSync(t *testing.T, in *instance, names ...string) (string, error) {
	t.Helper()
	return run(t, 90*time.Second, airgapdBin, append([]string{"mirror", "sync", "--config", in.config}, names...)...)
}

// mirrorStatus is the mirror's status.
type mirrorStatus = api.MirrorStatus

func mirrorConfig(u *rpmUpstream, files string) string {
	return fmt.Sprintf(`
advertise: { addresses: [127.0.0.1] }
mirror:
  listen: 127.0.0.1:0
  parallel: 3
  files: %s
  repos:
    - { name: up, baseurl: %q }
`, files, u.url())
}

func TestMirrorSyncServeDNF(t *testing.T) {
	u := newRPMUpstream(t)
	names := []string{"alpha", "bravo", "charlie", "delta"}
	for i, n := range names {
		u.add(n, 20000+i*70000)
	}
	u.index()
	dnf := newDNFRoot(t)
	dir := t.TempDir()
	files := filepath.Join(dir, "files")
	os.MkdirAll(filepath.Join(files, "sub"), 0o755)
	writeFile(t, filepath.Join(files, "sub", "kubectl"), "not really kubectl\n")
	os.Symlink("/etc/passwd", filepath.Join(files, "passwd"))
	os.Symlink("/etc", filepath.Join(files, "etc"))
	os.Symlink("sub/kubectl", filepath.Join(files, "inside"))
	in := start(t, dir, mirrorConfig(u, files))
	mirrorURL := in.status().listener("mirror")
	addr := strings.TrimPrefix(mirrorURL, "http://")

	if code, body, _ := mirrorGet(t, mirrorURL+"/repos/up/repodata/repomd.xml", nil); code != http.StatusNotFound || !strings.Contains(string(body), "airgapd mirror sync up") {
		t.Errorf("before any sync: %d %s", code, body)
	}
	out, err := mirrorSync(t, in, "up")
	if err != nil || !strings.Contains(out, "up: published revision") || !strings.Contains(out, "4 packages, 4 fetched") {
		t.Fatalf("mirror sync: %v\n%s", err, out)
	}

	// The published metadata is the upstream's, byte for byte.
	md, _ := os.ReadDir(filepath.Join(u.dir, "repodata"))
	for _, e := range md {
		code, body, _ := mirrorGet(t, mirrorURL+"/repos/up/repodata/"+e.Name(), nil)
		if code != http.StatusOK || !bytes.Equal(body, u.file("repodata/"+e.Name())) {
			t.Errorf("repodata/%s: %d, %d bytes; want the upstream's %d bytes", e.Name(), code, len(body), len(u.file("repodata/"+e.Name())))
		}
	}

	// dnf through airgapd's .repo file: makecache, repoquery, download.
	repo := dnf.useRepo(mirrorURL, "up")
	if !strings.Contains(repo, "baseurl="+mirrorURL+"/repos/up/") {
		t.Errorf(".repo file does not point at the mirror (%s):\n%s", mirrorURL, repo)
	}
	if out, err := dnf.run("makecache"); err != nil {
		t.Fatalf("dnf makecache: %v\n%s", err, out)
	}
	if got := dnf.packages("up"); !slices.Equal(got, names) {
		t.Errorf("dnf repoquery: %v, want %v", got, names)
	}
	dl := filepath.Join(dnf.dir, "dl")
	if out, err := dnf.run("download", "--destdir", dl, "charlie"); err != nil {
		t.Fatalf("dnf download: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(dl, "charlie-1.0-1.noarch.rpm")); !bytes.Equal(got, u.file("Packages/charlie-1.0-1.noarch.rpm")) {
		t.Errorf("downloaded charlie differs from the upstream's (%d bytes)", len(got))
	}

	// Range, ETag, Content-Type, listing.
	pkgURL := mirrorURL + "/repos/up/Packages/delta-1.0-1.noarch.rpm"
	code, body, h := mirrorGet(t, pkgURL, map[string]string{"Range": "bytes=100-199"})
	if code != http.StatusPartialContent || !bytes.Equal(body, u.file("Packages/delta-1.0-1.noarch.rpm")[100:200]) {
		t.Errorf("Range 100-199: %d, %d bytes", code, len(body))
	}
	if h.Get("Content-Type") != "application/x-rpm" || h.Get("ETag") == "" {
		t.Errorf("headers: Content-Type %q ETag %q", h.Get("Content-Type"), h.Get("ETag"))
	}
	if code, _, _ := mirrorGet(t, pkgURL, map[string]string{"If-None-Match": h.Get("ETag")}); code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", code)
	}
	if code, body, _ := mirrorGet(t, mirrorURL+"/repos/up/", nil); code != http.StatusOK || !strings.Contains(string(body), `href="repodata/"`) || !strings.Contains(string(body), `href="Packages/"`) {
		t.Errorf("listing: %d %s", code, body)
	}

	// Nothing outside the trees: traversal and symlinks that lead out.
	for _, p := range []string{"/repos/up/../../etc/passwd", "/repos/up/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/files/../../../../etc/passwd", "/files/sub/../../../etc/passwd", "/repos/../../etc/passwd"} {
		if resp := rawGet(t, addr, p); strings.HasPrefix(resp, "HTTP/1.1 200") || strings.Contains(resp, "root:") {
			t.Errorf("GET %s was served:\n%.300s", p, resp)
		}
	}
	for _, p := range []string{"/files/passwd", "/files/etc/passwd", "/files/etc/"} {
		if code, body, _ := mirrorGet(t, mirrorURL+p, nil); code == http.StatusOK || strings.Contains(string(body), "root:") {
			t.Errorf("GET %s through a symlink out of the folder: %d", p, code)
		}
	}
	if code, body, _ := mirrorGet(t, mirrorURL+"/files/inside", nil); code != http.StatusOK || string(body) != "not really kubectl\n" {
		t.Errorf("symlink inside the folder: %d %q", code, body)
	}

	// Status and metrics.
	var st mirrorStatus
	in.status().detail(t, "mirror", &st)
	if len(st.Repos) != 1 || st.Repos[0].Packages != 4 || st.Repos[0].LastResult != "ok" {
		t.Errorf("status: %+v", st)
	}
	metrics, err := run(t, 10*time.Second, "curl", "-fsS", "--unix-socket", filepath.Join(in.dir, "run", "api.sock"), "http://airgapd/metrics")
	if err != nil || !strings.Contains(metrics, `airgapd_mirror_repo_packages{repo="up"} 4`) || !strings.Contains(metrics, `airgapd_mirror_syncs_total{repo="up",result="ok"} 1`) {
		t.Errorf("metrics: %v\n%s", err, grepLines(metrics, "airgapd_mirror"))
	}

	// A package corrupted upstream (same size, one byte flipped) fails the
	// sync, named; dnf keeps seeing the previous state.
	u.add("echo", 30000)
	bad := u.add("foxtrot", 40000)
	u.index()
	good := u.file(bad)
	flipped := bytes.Clone(good)
	flipped[len(flipped)-10] ^= 0xff
	writeFile(t, filepath.Join(u.dir, bad), string(flipped))
	out, err = mirrorSync(t, in, "up")
	if err == nil || !strings.Contains(out, "foxtrot-1.0-1.noarch.rpm") || !strings.Contains(out, "checksum mismatch") {
		t.Errorf("sync of a corrupted package: %v\n%s", err, out)
	}
	if got := dnf.packages("up"); !slices.Equal(got, names) {
		t.Errorf("after the failed sync dnf sees %v, want the previous %v", got, names)
	}
	in.status().detail(t, "mirror", &st)
	if st.Repos[0].LastResult != "failed" || !strings.Contains(st.Repos[0].LastError, "foxtrot") {
		t.Errorf("status after the failed sync: %+v", st.Repos[0])
	}
	// Fixed upstream: the next sync fetches only what is missing.
	writeFile(t, filepath.Join(u.dir, bad), string(good))
	echoGets := u.count("Packages/echo-1.0-1.noarch.rpm")
	if out, err := mirrorSync(t, in, "up"); err != nil || !strings.Contains(out, "6 packages, 1 fetched") {
		t.Errorf("sync after the fix: %v\n%s", err, out)
	}
	if n := u.count("Packages/echo-1.0-1.noarch.rpm"); n != echoGets {
		t.Errorf("echo fetched again (%d → %d requests)", echoGets, n)
	}
	if got := dnf.packages("up"); len(got) != 6 {
		t.Errorf("dnf after the fix: %v", got)
	}
	if out, err := mirrorSync(t, in, "up"); err != nil || !strings.Contains(out, "up: up to date") {
		t.Errorf("sync with nothing new: %v\n%s", err, out)
	}
}

func TestMirrorKill9Resume(t *testing.T) {
	u := newRPMUpstream(t)
	first := []string{"base1", "base2"}
	for _, n := range first {
		u.add(n, 50000)
	}
	u.index()
	dnf := newDNFRoot(t)
	dir := t.TempDir()
	body := mirrorConfig(u, filepath.Join(dir, "files"))
	in := start(t, dir, body)
	if out, err := mirrorSync(t, in, "up"); err != nil {
		t.Fatalf("first sync: %v\n%s", err, out)
	}

	// A new upstream state; one package's response stalls half-way.
	var others []string
	for i, n := range []string{"new1", "new2", "new3", "new4"} {
		others = append(others, u.add(n, 100000+i*50000))
	}
	held := u.add("zbig", 3_000_000)
	u.index()
	u.mu.Lock()
	u.hold["/"+held] = true
	u.mu.Unlock()

	syncCmd := exec.Command(airgapdBin, "mirror", "sync", "--config", in.config, "up")
	var syncOut bytes.Buffer
	syncCmd.Stdout, syncCmd.Stderr = &syncOut, &syncOut
	if err := syncCmd.Start(); err != nil {
		t.Fatal(err)
	}
	var syncErr error
	syncDone := make(chan struct{})
	go func() { syncErr = syncCmd.Wait(); close(syncDone) }()
	t.Cleanup(func() {
		select {
		case <-syncDone:
		default:
			syncCmd.Process.Kill()
			<-syncDone
		}
	})
	// Wait until everything but the held package is in, and half of it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st mirrorStatus
		in.status().detail(t, "mirror", &st)
		if p := st.Repos[0].Progress; p != nil && p.Phase == "packages" && p.Fetched == p.ToFetch-1 && p.BytesDone >= p.Bytes-int64(len(u.file(held)))/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sync did not reach the held package in 30s: %+v\n%s", st, syncOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.cmd.Process.Kill() // kill -9, mid-sync
	in.waitExit(10 * time.Second)
	select {
	case <-syncDone:
		if syncErr == nil {
			t.Errorf("mirror sync succeeded though the server was killed:\n%s", syncOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("mirror sync still running 10s after the server was killed")
	}

	// Restarted: the last published state is served, valid for dnf.
	in = start(t, dir, body)
	mirrorURL := in.status().listener("mirror")
	dnf.useRepo(mirrorURL, "up")
	if got := dnf.packages("up"); !slices.Equal(got, first) {
		t.Errorf("after kill -9 dnf sees %v, want the last published %v", got, first)
	}

	// The next sync resumes: nothing fetched twice, the held file by Range.
	u.mu.Lock()
	u.hold["/"+held] = false
	u.mu.Unlock()
	before := map[string]int{}
	for _, p := range others {
		before[p] = u.count(p)
		if before[p] != 1 {
			t.Errorf("%s fetched %d times before the kill, want 1", p, before[p])
		}
	}
	out, err := mirrorSync(t, in, "up")
	if err != nil || !strings.Contains(out, "7 packages, 1 fetched") {
		t.Fatalf("sync after restart: %v\n%s", err, out)
	}
	for _, p := range others {
		if n := u.count(p); n != before[p] {
			t.Errorf("%s fetched again after restart (%d requests)", p, n)
		}
	}
	u.mu.Lock()
	rg := u.ranges["/"+held]
	u.mu.Unlock()
	if len(rg) != 1 || rg[0] == "bytes=0-" || !strings.HasPrefix(rg[0], "bytes=") {
		t.Errorf("held package resumed with Range %q, want one bytes=N- with N > 0", rg)
	}
	if got := dnf.packages("up"); len(got) != 7 {
		t.Errorf("dnf after the resumed sync: %v", got)
	}
	dl := filepath.Join(dnf.dir, "dl")
	if out, err := dnf.run("download", "--destdir", dl, "zbig"); err != nil {
		t.Fatalf("dnf download: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(dl, filepath.Base(held))); !bytes.Equal(got, u.file(held)) {
		t.Errorf("resumed package differs from the upstream's")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
