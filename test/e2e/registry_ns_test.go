package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/registry"
)

// standIn is an upstream registry on loopback: airgapd's own registry
// package (distribution/v3) in this process, on plain HTTP, counting the
// blob and manifest GETs it answers.
type standIn struct {
	srv       *httptest.Server
	host      string
	blobGets  atomic.Int64
	manifests atomic.Int64
}

// upstreamRegistry runs airgapd's registry package as a stand-in for an
// upstream registry: plain HTTP, pushes as admin, anonymous pulls from
// pullFrom; it stops when the test ends. Callers serve its Handler.
func upstreamRegistry(t *testing.T, pullFrom ...string) *registry.Registry {
	t.Helper()
	cfg := registry.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.TLS = conf.TLS{Mode: conf.TLSOff}
	cfg.Users = []registry.User{{Name: "admin", PasswordHash: registryTestHash}}
	cfg.PullFrom = pullFrom
	r, err := registry.New(cfg, registry.Deps{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func newStandIn(t *testing.T) *standIn {
	t.Helper()
	s := &standIn{}
	h := upstreamRegistry(t, "127.0.0.0/8").Handler()
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/sha256:"):
			s.blobGets.Add(1)
		case req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/manifests/"):
			s.manifests.Add(1)
		}
		h.ServeHTTP(w, req)
	}))
	s.host = strings.TrimPrefix(s.srv.URL, "http://")
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standIn) push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(s.host+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: "admin", Password: "s3cret"}))); err != nil {
		t.Fatalf("push %s to stand-in: %v", ref, err)
	}
}

// nsTransport adds ?ns= to every request, as containerd does for a mirror.
type nsTransport struct {
	ns   string
	base http.RoundTripper
}

func (n nsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	q := req.URL.Query()
	q.Set("ns", n.ns)
	req.URL.RawQuery = q.Encode()
	return n.base.RoundTrip(req)
}

// nsEnv is airgapd with a registry over TLS mirroring stand-in upstreams,
// and a transport that trusts only its CA.
type nsEnv struct {
	in   *instance
	host string
	ca   string
	tls  *http.Transport
}

func startNSRegistry(t *testing.T, mirrors map[string]string) *nsEnv {
	t.Helper()
	dir := t.TempDir()
	var ms strings.Builder
	for name, url := range mirrors {
		fmt.Fprintf(&ms, "    - {name: %s, url: %q}\n", name, url)
	}
	in := start(t, dir, `
registry:
  listen: "127.0.0.1:0"
  tls: auto
  users: [{name: admin, password_hash: "`+registryTestHash+`"}]
  pull_from: [127.0.0.1/32]
  mirrors:
`+ms.String())
	u := in.status().listener("registry")
	host, ok := strings.CutPrefix(u, "https://")
	if !ok {
		t.Fatalf("registry listener %q is not https", u)
	}
	caFile := filepath.Join(dir, "data", "pki", "ca.crt")
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate in", caFile)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &nsEnv{in: in, host: host, ca: caFile, tls: tr}
}

// pull fetches ref from airgapd (with ?ns=ns when ns is set) and reads
// every blob, checking each against its digest; it returns the manifest
// digest.
func (e *nsEnv) pull(t *testing.T, ns, ref string) (string, error) {
	t.Helper()
	r, err := name.ParseReference(e.host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	var rt http.RoundTripper = e.tls
	if ns != "" {
		rt = nsTransport{ns: ns, base: e.tls}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	img, err := remote.Image(r, remote.WithTransport(rt), remote.WithContext(ctx))
	if err != nil {
		return "", err
	}
	if err := readBlobs(img); err != nil {
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	d, err := img.Digest()
	return d.String(), err
}

func (e *nsEnv) registryStatus(t *testing.T) api.RegistryStatus {
	t.Helper()
	var st api.RegistryStatus
	e.in.status().detail(t, "registry", &st)
	return st
}

// TestRegistryNamespaces: two stand-in upstreams playing docker.io and
// registry.k8s.io hold different images under the same name; ns= and the
// path-prefix layout each get their upstream's image, with OCI-Namespace;
// with both upstreams stopped the same pulls succeed from the store; an
// image pushed under registry.k8s.io/ is served to ns=registry.k8s.io.
func TestRegistryNamespaces(t *testing.T) {
	hub, k8s := newStandIn(t), newStandIn(t)
	hubImg, k8sImg := ociImage(t, nil, 256<<10), ociImage(t, nil, 256<<10)
	hub.push(t, "lab/app:v1", hubImg)
	k8s.push(t, "lab/app:v1", k8sImg)
	hub.push(t, "library/hello:1", hubImg)
	e := startNSRegistry(t, map[string]string{"docker.io": hub.srv.URL, "registry.k8s.io": k8s.srv.URL})

	want := map[string]string{"docker.io": imageDigest(t, hubImg), "registry.k8s.io": imageDigest(t, k8sImg)}
	check := func(stage string) {
		t.Helper()
		for ns, d := range want {
			if got, err := e.pull(t, ns, "lab/app:v1"); err != nil || got != d {
				t.Errorf("%s: ns=%s lab/app:v1: %s, %v; want %s", stage, ns, got, err, d)
			}
			if got, err := e.pull(t, "", ns+"/lab/app:v1"); err != nil || got != d {
				t.Errorf("%s: path prefix %s/lab/app:v1: %s, %v; want %s", stage, ns, got, err, d)
			}
		}
		// Docker Hub's official images: library/ implied, as docker spells them.
		if got, err := e.pull(t, "", "docker.io/hello:1"); err != nil || got != want["docker.io"] {
			t.Errorf("%s: docker.io/hello:1: %s, %v", stage, got, err)
		}
	}
	check("online")
	if hub.blobGets.Load() == 0 || k8s.blobGets.Load() == 0 {
		t.Errorf("upstream blob GETs: docker.io %d, registry.k8s.io %d; want pulls through both", hub.blobGets.Load(), k8s.blobGets.Load())
	}
	hubBlobs := hub.blobGets.Load()

	// OCI-Namespace on a manifest answered for ns=.
	req, _ := http.NewRequest(http.MethodHead, "https://"+e.host+"/v2/lab/app/manifests/v1?ns=registry.k8s.io", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := (&http.Client{Transport: e.tls, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("OCI-Namespace") != "registry.k8s.io" || resp.Header.Get("Docker-Content-Digest") != want["registry.k8s.io"] {
		t.Errorf("HEAD ?ns=registry.k8s.io: %s, OCI-Namespace %q, digest %q", resp.Status, resp.Header.Get("OCI-Namespace"), resp.Header.Get("Docker-Content-Digest"))
	}

	// Pulled again while online: blobs come from the store.
	check("online again")
	if n := hub.blobGets.Load(); n != hubBlobs {
		t.Errorf("a second pull fetched %d more blobs from docker.io", n-hubBlobs)
	}
	st := e.registryStatus(t)
	if len(st.Upstreams) != 2 {
		t.Fatalf("status mirrors: %+v", st.Upstreams)
	}
	for _, m := range st.Upstreams {
		if !m.Reachable || m.Misses == 0 || m.Hits == 0 || m.BytesFetched == 0 {
			t.Errorf("status of %s online: %+v", m.Name, m)
		}
	}

	// The uplink goes: every pull still succeeds, from the store, and fast.
	hub.srv.Close()
	k8s.srv.Close()
	began := time.Now()
	check("offline")
	t.Logf("offline: %d pulls (manifests and every blob) in %s", 5, time.Since(began).Round(time.Millisecond))
	if d := time.Since(began); d > 20*time.Second {
		t.Errorf("offline pulls took %s: an unreachable upstream must fail fast", d)
	}
	for _, m := range e.registryStatus(t).Upstreams {
		if m.Reachable || m.LastError == "" {
			t.Errorf("status of %s offline: %+v", m.Name, m)
		}
	}

	// Pushed under registry.k8s.io/ by an authorised user, served to
	// ns=registry.k8s.io with no upstream running.
	own := ociImage(t, nil, 64<<10)
	ref, err := name.ParseReference(e.host + "/registry.k8s.io/lab/pushed:v9")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, own, remote.WithTransport(e.tls),
		remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: "admin", Password: "s3cret"}))); err != nil {
		t.Fatalf("push under registry.k8s.io/: %v", err)
	}
	if got, err := e.pull(t, "registry.k8s.io", "lab/pushed:v9"); err != nil || got != imageDigest(t, own) {
		t.Errorf("ns=registry.k8s.io lab/pushed:v9: %s, %v; want %s", got, err, imageDigest(t, own))
	}
	if _, err := e.pull(t, "docker.io", "lab/pushed:v9"); err == nil {
		t.Error("the image pushed under registry.k8s.io/ is served to ns=docker.io too")
	}
}

// TestRegistryPullThroughStream: a 200 MB layer pulled cold by two clients
// at once. The stand-in upstream sends the first quarter, then holds the
// rest back until both clients have received bytes through airgapd: so
// both get their first bytes while the upstream transfer is still running
// (else the test times out), and the upstream sees one GET for the blob.
func TestRegistryPullThroughStream(t *testing.T) {
	const size = 200 << 20
	blob := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{9})
	rng.Read(blob)
	sum := sha256.Sum256(blob)
	dgst := "sha256:" + hex.EncodeToString(sum[:])

	var gets atomic.Int64
	var upstreamStart, upstreamEnd atomic.Int64
	bothStarted := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.URL.Path == "/v2/" || req.URL.Path == "/v2":
			w.WriteHeader(http.StatusOK)
		case req.URL.Path == "/v2/lab/big/blobs/"+dgst:
			w.Header().Set("Content-Length", fmt.Sprint(size))
			w.Header().Set("Docker-Content-Digest", dgst)
			if req.Method == http.MethodHead {
				return
			}
			gets.Add(1)
			upstreamStart.Store(time.Now().UnixNano())
			w.Write(blob[:size/4])
			w.(http.Flusher).Flush()
			select {
			case <-bothStarted:
			case <-time.After(30 * time.Second):
				// Not streamed: let the transfer end so the test reports it.
			case <-req.Context().Done():
				return
			}
			w.Write(blob[size/4:])
			upstreamEnd.Store(time.Now().UnixNano())
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(up.Close)
	e := startNSRegistry(t, map[string]string{"docker.io": up.URL})

	type result struct {
		ttfb, total time.Duration
		first       time.Time
		digest      string
		n           int64
		err         error
	}
	client := &http.Client{Transport: e.tls, Timeout: 90 * time.Second}
	get := func(started func()) result {
		var r result
		begin := time.Now()
		resp, err := client.Get("https://" + e.host + "/v2/lab/big/blobs/" + dgst + "?ns=docker.io")
		if err != nil {
			r.err = err
			return r
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			r.err = fmt.Errorf("%s", resp.Status)
			return r
		}
		h := sha256.New()
		buf := make([]byte, 256<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				if r.n == 0 {
					r.first = time.Now()
					r.ttfb = r.first.Sub(begin)
					started()
				}
				h.Write(buf[:n])
				r.n += int64(n)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				r.err = err
				return r
			}
		}
		r.total = time.Since(begin)
		r.digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
		return r
	}
	var wg sync.WaitGroup
	var startedN atomic.Int32
	started := func() {
		if startedN.Add(1) == 2 {
			close(bothStarted)
		}
	}
	results := make([]result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = get(started)
		}()
	}
	wg.Wait()
	end := time.Unix(0, upstreamEnd.Load())
	t.Logf("upstream transfer: %s", end.Sub(time.Unix(0, upstreamStart.Load())).Round(time.Millisecond))
	for i, r := range results {
		if r.err != nil || r.digest != dgst || r.n != size {
			t.Fatalf("client %d: %d bytes, %s, %v", i, r.n, r.digest, r.err)
		}
		if !r.first.Before(end) {
			t.Errorf("client %d got its first byte %s after the upstream transfer ended", i, r.first.Sub(end))
		}
		t.Logf("client %d: 200 MiB cold: first byte after %s, %s before the upstream transfer ended; last byte after %s",
			i, r.ttfb.Round(time.Millisecond), end.Sub(r.first).Round(time.Millisecond), r.total.Round(time.Millisecond))
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("two concurrent cold pulls made %d upstream fetches, want 1", n)
	}

	// Cached: a third pull does not reach the upstream, and it is there
	// with the upstream gone.
	up.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := get(func() {})
		if r.err == nil && r.digest == dgst {
			t.Logf("cached: 200 MiB in %s", r.total.Round(time.Millisecond))
			break
		}
		// The store gets the blob once the download is verified; until
		// then a client arriving late would have joined it.
		if time.Now().After(deadline) {
			t.Fatalf("cached pull: %v", r.err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("upstream fetches after the cached pull: %d, want 1", n)
	}
}

// readBlobs reads img's config and every layer, checking each against its
// digest.
func readBlobs(img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if got := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(got[:]) != m.Config.Digest.String() {
		return fmt.Errorf("config does not match %s", m.Config.Digest)
	}
	for _, d := range m.Layers {
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d.Digest, err)
		}
		if "sha256:"+hex.EncodeToString(h.Sum(nil)) != d.Digest.String() || n != d.Size {
			return fmt.Errorf("layer %s: %d bytes that do not match", d.Digest, n)
		}
	}
	return nil
}

// TestRegistryContainerdNS: Debian's containerd (1.6) pulls and unpacks
// docker.io/library/hello:v1 with `ctr images pull --hosts-dir` and the
// hosts.toml airgapd generates (server = airgapd, its CA, no upstream
// address): it sends ?ns=docker.io, which airgapd pulls through from the
// stand-in playing docker.io; then, with the stand-in stopped, a containerd
// with an empty root pulls the same image from airgapd's store.
func TestRegistryContainerdNS(t *testing.T) {
	need(t, "containerd", "ctr")
	hub := newStandIn(t)
	img := ociImage(t, nil, 128<<10)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: runtime.GOARCH, RootFS: mustConfig(t, img).RootFS})
	if err != nil {
		t.Fatal(err)
	}
	hub.push(t, "library/hello:v1", img)
	e := startNSRegistry(t, map[string]string{"docker.io": hub.srv.URL})

	dir := t.TempDir()
	hostsDir := filepath.Join(dir, "hosts")
	h, err := registry.HostsTOML("docker.io", registry.NodeOptions{Host: e.host, CAPath: e.ca, Upstreams: []registry.Mirror{{Name: "docker.io", URL: hub.srv.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	// containerd falls back to the upstream itself when it cannot use the
	// file; this test must never let it try the real docker.io.
	if !strings.Contains(h, `server = "https://`+e.host+`"`) || !strings.Contains(h, "\n[host]\n") {
		t.Fatalf("generated hosts.toml does not send containerd to airgapd alone:\n%s", h)
	}
	if err := os.MkdirAll(filepath.Join(hostsDir, "docker.io"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(hostsDir, "docker.io", "hosts.toml"), h)
	want := imageDigest(t, img)

	pull := func(stage string) {
		t.Helper()
		sock := startContainerd(t, filepath.Join(dir, stage))
		out, err := run(t, 60*time.Second, "ctr", "--address", sock, "images", "pull", "--hosts-dir", hostsDir, "docker.io/library/hello:v1")
		if err != nil {
			t.Fatalf("%s: ctr images pull: %v\n%s\nhosts.toml:\n%s", stage, err, out, h)
		}
		ls, err := run(t, 30*time.Second, "ctr", "--address", sock, "images", "ls")
		if err != nil || !strings.Contains(ls, want) {
			t.Errorf("%s: ctr images ls lacks %s: %v\n%s", stage, want, err, ls)
		}
		t.Logf("%s: ctr pulled and unpacked docker.io/library/hello:v1 %s", stage, want)
	}
	pull("online")
	if lines := e.in.log.linesWith("ns=docker.io"); len(lines) > 0 {
		t.Logf("airgapd saw %d requests with ns=docker.io, e.g. %s", len(lines), lines[0])
	}
	st := e.registryStatus(t)
	if len(st.Upstreams) != 1 || st.Upstreams[0].Misses == 0 || hub.blobGets.Load() == 0 {
		t.Errorf("containerd's pull did not go through the docker.io mirror: %+v, upstream blob GETs %d", st.Upstreams, hub.blobGets.Load())
	}
	hub.srv.Close()
	pull("offline")
}

func mustConfig(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

// startContainerd runs containerd with its own root, state and socket
// under dir, and returns the socket once ctr reaches it.
func startContainerd(t *testing.T, dir string) string {
	t.Helper()
	sock := filepath.Join(dir, "containerd.sock")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.toml")
	writeFile(t, cfg, fmt.Sprintf("version = 2\nroot = %q\nstate = %q\n[grpc]\n  address = %q\n", filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock))
	cmd := exec.Command("containerd", "--config", cfg)
	log := newLogBuffer()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("containerd output:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := run(t, 5*time.Second, "ctr", "--address", sock, "version"); err == nil {
			return sock
		}
		select {
		case <-exited:
			t.Fatalf("containerd exited:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd not answering on %s after 20s:\n%s", sock, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
