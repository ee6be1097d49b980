package e2e

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"log"
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

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/testpki"
)

// The ways a mirrored repo reaches its upstream (issue 6): mirrorlist and
// metalink with fail-over, a proxy per repo (a real tinyproxy), a client
// certificate and CA, and $releasever/$basearch in URLs.

// upstreamConfig is a mirror section with the given vars and repos lines.
func upstreamConfig(extra string) string {
	return `
advertise: { addresses: [127.0.0.1] }
mirror:
  listen: 127.0.0.1:0
  parallel: 2
` + extra
}

// deadURL is an http:// URL on loopback where nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
}

// textServer serves fixed bodies by path and records each request's URI.
type textServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	uris []string
}

func newTextServer(t *testing.T, bodies map[string]string) *textServer {
	t.Helper()
	s := &textServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.uris = append(s.uris, r.URL.RequestURI())
		s.mu.Unlock()
		body, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *textServer) requested() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.uris)
}

// upstreamRPMs builds an upstream with the named packages, indexed.
func upstreamRPMs(t *testing.T, names ...string) *rpmUpstream {
	t.Helper()
	u := newRPMUpstream(t)
	for i, n := range names {
		u.add(n, 20000+i*10000)
	}
	u.index()
	return u
}

func TestMirrorUpstreamMirrorlist(t *testing.T) {
	names := []string{"alpha", "bravo", "charlie"}
	u := upstreamRPMs(t, names...)
	dnf := newDNFRoot(t)
	// The first mirror is down; dnf, and airgapd, go on to the next.
	lists := newTextServer(t, map[string]string{"/mirrorlist": "# mirrors for up, best first\n" + deadURL(t) + "/el/$releasever/BaseOS/\n\n" + u.url() + "\n"})
	dir := t.TempDir()
	in := start(t, dir, upstreamConfig(fmt.Sprintf(`  vars: { releasever: "9" }
  repos:
    - { name: up, mirrorlist: "%s/mirrorlist?repo=up-$releasever" }
`, lists.srv.URL)))
	out, err := mirrorSync(t, in, "up")
	if err != nil || !strings.Contains(out, "up: published revision") || !strings.Contains(out, "3 packages, 3 fetched") {
		t.Fatalf("mirror sync through the mirrorlist: %v\n%s", err, out)
	}
	if got := lists.requested(); !slices.Equal(got, []string{"/mirrorlist?repo=up-9"}) {
		t.Errorf("mirrorlist requests %q, want one with $releasever substituted", got)
	}
	if line := in.waitLog("upstream mirror chosen", 5*time.Second); !strings.Contains(line, u.url()) {
		t.Errorf("chosen mirror: %s, want %s", line, u.url())
	}
	var st api.MirrorStatus
	in.status().detail(t, "mirror", &st)
	if len(st.Repos) != 1 || st.Repos[0].Upstream != u.url() {
		t.Errorf("status: %+v, want upstream %s", st.Repos, u.url())
	}
	dnf.useRepo(in.status().listener("mirror"), "up")
	if got := dnf.packages("up"); !slices.Equal(got, names) {
		t.Errorf("dnf repoquery through airgapd: %v, want %v", got, names)
	}
}

func TestMirrorUpstreamMetalink(t *testing.T) {
	u := upstreamRPMs(t, "alpha", "bravo")
	md := u.file("repodata/repomd.xml")
	s256, s512 := sha256.Sum256(md), sha512.Sum512(md)
	tmpl, err := os.ReadFile("testdata/upstream-metalink.xml")
	if err != nil {
		t.Fatal(err)
	}
	metalink := func(sha256, sha512 string) string {
		return strings.NewReplacer("@SIZE@", fmt.Sprint(len(md)), "@SHA256@", sha256, "@SHA512@", sha512,
			"@DEAD@", deadURL(t), "@GOOD@", strings.TrimSuffix(u.url(), "/")).Replace(string(tmpl))
	}
	links := newTextServer(t, map[string]string{
		"/good": metalink(hex.EncodeToString(s256[:]), hex.EncodeToString(s512[:])),
		"/bad":  metalink(strings.Repeat("0", 64), strings.Repeat("0", 128)), // what a tampered or stale mirror looks like
	})
	dir := t.TempDir()
	in := start(t, dir, upstreamConfig(fmt.Sprintf(`  repos:
    - { name: good, metalink: "%[1]s/good" }
    - { name: bad, metalink: "%[1]s/bad" }
`, links.srv.URL)))
	mirrorURL := in.status().listener("mirror")

	if out, err := mirrorSync(t, in, "good"); err != nil || !strings.Contains(out, "2 packages, 2 fetched") {
		t.Fatalf("sync with a matching metalink: %v\n%s", err, out)
	}
	if code, body, _ := mirrorGet(t, mirrorURL+"/repos/good/repodata/repomd.xml", nil); code != http.StatusOK || string(body) != string(md) {
		t.Errorf("good: repomd.xml %d, %d bytes; want the upstream's", code, len(body))
	}

	out, err := mirrorSync(t, in, "bad")
	if err == nil || !strings.Contains(out, "metalink "+links.srv.URL+"/bad") || !strings.Contains(out, "matches none of the metalink's hashes") {
		t.Errorf("sync with a metalink that does not match: %v\n%s", err, out)
	}
	if code, _, _ := mirrorGet(t, mirrorURL+"/repos/bad/repodata/repomd.xml", nil); code != http.StatusNotFound {
		t.Errorf("bad: repomd.xml %d after the failed sync; want 404, nothing published", code)
	}
	var st mirrorStatus
	in.status().detail(t, "mirror", &st)
	for _, r := range st.Repos {
		if r.Name == "bad" && (r.LastResult != "failed" || !strings.Contains(r.LastError, "metalink")) {
			t.Errorf("status of bad: %+v", r)
		}
	}
}

// tinyproxy is a real HTTP proxy in the foreground, with its own config,
// pid file and log in a temp dir.
type tinyproxy struct {
	url, log string
}

func startTinyproxy(t *testing.T, user, password string) *tinyproxy {
	t.Helper()
	need(t, "tinyproxy")
	dir := t.TempDir()
	port := freePort(t)
	p := &tinyproxy{url: fmt.Sprintf("http://127.0.0.1:%d", port), log: filepath.Join(dir, "tinyproxy.log")}
	conf := filepath.Join(dir, "tinyproxy.conf")
	writeFile(t, conf, fmt.Sprintf(`Port %d
Listen 127.0.0.1
Timeout 30
Allow 127.0.0.1
MaxClients 20
PidFile %q
LogFile %q
LogLevel Connect
BasicAuth %s %s
`, port, filepath.Join(dir, "tinyproxy.pid"), p.log, user, password))
	cmd := exec.Command("tinyproxy", "-d", "-c", conf)
	out := newLogBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("tinyproxy output:\n%s\nlog:\n%s", out.String(), b)
		}
	})
	// Ready when its port answers.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(p.url, "http://"), time.Second)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-done:
			t.Fatalf("tinyproxy exited: %s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("tinyproxy did not listen on %s within 10s: %s", p.url, out.String())
		}
	}
}

// viaRecorder serves an upstream's folder under any prefix/ and records,
// per prefix, the Via header of each request ("" for none).
type viaRecorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	via map[string][]string
}

func newViaRecorder(t *testing.T, dir string) *viaRecorder {
	t.Helper()
	v := &viaRecorder{via: map[string][]string{}}
	files := http.FileServer(http.Dir(dir))
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		prefix, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		v.mu.Lock()
		v.via[prefix] = append(v.via[prefix], r.Header.Get("Via"))
		v.mu.Unlock()
		r.URL.Path = "/" + rest
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(v.srv.Close)
	return v
}

func (v *viaRecorder) seen(prefix string) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.via[prefix])
}

func TestMirrorUpstreamProxy(t *testing.T) {
	u := upstreamRPMs(t, "alpha", "bravo")
	up := newViaRecorder(t, u.dir)
	proxy := startTinyproxy(t, "alice", "s3cret")
	dir := t.TempDir()
	// (Go never takes a proxy from the environment for a loopback upstream,
	// so the environment's part of `_none_` is shown by the mirror's unit
	// tests; here `_none_` goes direct while a neighbour goes through.)
	in := start(t, dir, upstreamConfig(fmt.Sprintf(`  repos:
    - { name: proxied, baseurl: "%[1]s/a/", proxy: "%[2]s", proxy_username: alice, proxy_password: s3cret }
    - { name: direct, baseurl: "%[1]s/b/", proxy: _none_ }
    - { name: wronglogin, baseurl: "%[1]s/c/", proxy: "%[2]s", proxy_username: alice, proxy_password: guess }
`, up.srv.URL, proxy.url)))

	for _, name := range []string{"proxied", "direct"} {
		if out, err := mirrorSync(t, in, name); err != nil || !strings.Contains(out, "2 packages, 2 fetched") {
			t.Fatalf("sync %s: %v\n%s", name, err, out)
		}
	}
	// repomd.xml, its metadata files, two packages: each through the proxy.
	proxied := up.seen("a")
	if len(proxied) < 4 || slices.ContainsFunc(proxied, func(via string) bool { return !strings.Contains(via, "tinyproxy") }) {
		t.Errorf("requests of the proxied repo with Via %q; want every one through tinyproxy", proxied)
	}
	proxyLog, _ := os.ReadFile(proxy.log)
	if !strings.Contains(string(proxyLog), "GET "+up.srv.URL+"/a/repodata/repomd.xml") || strings.Contains(string(proxyLog), up.srv.URL+"/b/") {
		t.Errorf("tinyproxy's log does not show exactly the proxied repo's requests:\n%s", proxyLog)
	}
	if direct := up.seen("b"); len(direct) < 4 || slices.ContainsFunc(direct, func(via string) bool { return via != "" }) {
		t.Errorf("requests of the _none_ repo with Via %q; want every one direct", direct)
	}
	// tinyproxy 1.11 refuses a wrong login with 401 (RFC 9110 says 407).
	out, err := mirrorSync(t, in, "wronglogin")
	if err == nil || !(strings.Contains(out, "401 Unauthorized") || strings.Contains(out, "407 Proxy Authentication Required")) {
		t.Errorf("sync with a wrong proxy password: %v\n%s", err, out)
	}
	if n := len(up.seen("c")); n != 0 {
		t.Errorf("the upstream saw %d requests past a proxy that refused the login", n)
	}
}

func TestMirrorUpstreamClientCertificate(t *testing.T) {
	names := []string{"alpha", "bravo"}
	u := upstreamRPMs(t, names...)
	dir := t.TempDir()
	pki := testpki.New(t, dir)
	// Like RHEL's CDN or a Satellite: no client certificate, no content.
	srv := httptest.NewUnstartedServer(http.FileServer(http.Dir(u.dir)))
	srv.TLS = pki.ServerTLS(t)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dnf := newDNFRoot(t)
	proxy := startTinyproxy(t, "alice", "s3cret")
	in := start(t, dir, upstreamConfig(fmt.Sprintf(`  repos:
    - { name: nocert, baseurl: "%[1]s/", sslcacert: %[2]s }
    - { name: withcert, baseurl: "%[1]s/", sslcacert: %[2]s, sslclientcert: %[3]s, sslclientkey: %[4]s }
    - { name: proxied, baseurl: "%[1]s/", sslcacert: %[2]s, sslclientcert: %[3]s, sslclientkey: %[4]s, proxy: "%[5]s", proxy_username: alice, proxy_password: s3cret }
`, srv.URL, pki.CAFile, pki.ClientCert, pki.ClientKey, proxy.url)))

	out, err := mirrorSync(t, in, "nocert")
	if err == nil || !strings.Contains(out, "certificate required") || !strings.Contains(out, "set sslclientcert and sslclientkey") {
		t.Errorf("sync without a client certificate: %v\n%s", err, out)
	}
	if out, err := mirrorSync(t, in, "withcert"); err != nil || !strings.Contains(out, "2 packages, 2 fetched") {
		t.Fatalf("sync with the client certificate: %v\n%s", err, out)
	}
	dnf.useRepo(in.status().listener("mirror"), "withcert")
	if got := dnf.packages("withcert"); !slices.Equal(got, names) {
		t.Errorf("dnf repoquery: %v, want %v", got, names)
	}
	// The same through a proxy: a CONNECT tunnel, logged in, TLS inside.
	if out, err := mirrorSync(t, in, "proxied"); err != nil || !strings.Contains(out, "2 packages") {
		t.Fatalf("sync through the proxy's CONNECT: %v\n%s", err, out)
	}
	if proxyLog, _ := os.ReadFile(proxy.log); !strings.Contains(string(proxyLog), "CONNECT "+strings.TrimPrefix(srv.URL, "https://")) {
		t.Errorf("tinyproxy's log shows no CONNECT to %s:\n%s", srv.URL, proxyLog)
	}
}

func TestMirrorUpstreamVars(t *testing.T) {
	u := upstreamRPMs(t, "alpha")
	// The upstream lays its repos out by release and arch, as Rocky does.
	srv := httptest.NewServer(http.StripPrefix("/9/x86_64", http.FileServer(http.Dir(u.dir))))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	// The repo's releasever overrides the mirror's.
	in := start(t, dir, upstreamConfig(fmt.Sprintf(`  vars: { releasever: "8", basearch: x86_64 }
  repos:
    - { name: el, baseurl: "%s/$releasever/${basearch}/", vars: { releasever: "9" } }
`, srv.URL)))
	if out, err := mirrorSync(t, in, "el"); err != nil || !strings.Contains(out, "1 packages, 1 fetched") {
		t.Fatalf("sync of %s/$releasever/${basearch}/: %v\n%s", srv.URL, err, out)
	}

	// A variable with no value: `airgapd check` names the line, exits 1.
	conf := filepath.Join(dir, "novars.yaml")
	writeFile(t, conf, `mirror:
  listen: 127.0.0.1:0
  repos:
    - name: el
      baseurl: http://127.0.0.1:1/$releasever/$basearch/
`)
	out, err := exec.Command(airgapdBin, "check", "--config", conf).CombinedOutput()
	want := conf + `:5:16: mirror.repos[0].baseurl: baseurl uses $releasever, $basearch with no value`
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), want) {
		t.Errorf("airgapd check: %v\n%s\nwant exit 1 and %q", err, out, want)
	}
}
