package registry

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/airgapd/airgapd/internal/conf"
)

// testHash is bcrypt("s3cret") at the lowest cost, so tests stay fast.
const testHash = "$2a$04$lYoC4beu4Alb4/X14x5ONuq73PsfHm4dI6SKRoMTzkDSTwHNkj9XC"

var pusher = authn.FromConfig(authn.AuthConfig{Username: "admin", Password: "s3cret"})

func testConfig(pullFrom ...string) Config {
	c := DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.TLS = conf.TLS{Mode: conf.TLSOff}
	c.Users = []User{{Name: "admin", PasswordHash: testHash}}
	c.PullFrom = pullFrom
	return c
}

// testRegistry is a registry served by httptest on loopback, with Run
// going.
type testRegistry struct {
	*Registry
	srv     *httptest.Server
	host    string
	metrics *prometheus.Registry
}

func newTestRegistry(t *testing.T, cfg Config) *testRegistry {
	t.Helper()
	m := prometheus.NewRegistry()
	r, err := New(cfg, Deps{DataDir: t.TempDir(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &testRegistry{Registry: r, srv: srv, host: strings.TrimPrefix(srv.URL, "http://"), metrics: m}
}

func (tr *testRegistry) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(tr.host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// images returns two images sharing a base layer, each with a layer of its
// own.
func images(t *testing.T) (a, b v1.Image, base v1.Layer) {
	t.Helper()
	layer := func() v1.Layer {
		l, err := random.Layer(4096, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	base = layer()
	a, err := mutate.AppendLayers(empty.Image, base, layer())
	if err != nil {
		t.Fatal(err)
	}
	b, err = mutate.AppendLayers(empty.Image, base, layer())
	if err != nil {
		t.Fatal(err)
	}
	return a, b, base
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// blobsOnlyIn lists the blobs (config and layers) of img that other lacks.
func blobsOnlyIn(t *testing.T, img, other v1.Image) []string {
	t.Helper()
	all := func(i v1.Image) []string {
		m, err := i.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		out := []string{m.Config.Digest.String()}
		for _, l := range m.Layers {
			out = append(out, l.Digest.String())
		}
		return out
	}
	theirs := all(other)
	var out []string
	for _, d := range all(img) {
		if !slices.Contains(theirs, d) {
			out = append(out, d)
		}
	}
	return out
}

func TestValidateStorage(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		name    string
		storage map[string]map[string]any
		want    string // in the error; "" = valid
		gc      *bool  // registry.gc.enabled
	}{
		{"default", nil, "", nil},
		{"filesystem", map[string]map[string]any{"filesystem": {"rootdirectory": "/srv/registry"}}, "", nil},
		{"relative root", map[string]map[string]any{"filesystem": {"rootdirectory": "srv"}}, "not an absolute path", nil},
		{"s3", map[string]map[string]any{"s3": {"region": "us-east-1", "bucket": "images", "regionendpoint": "http://127.0.0.1:9000"}, "redirect": {"disable": true}}, "", &yes},
		{"s3 another host", map[string]map[string]any{"s3": {"region": "r", "bucket": "b"}}, "", &no},
		{"s3 without gc", map[string]map[string]any{"s3": {"region": "r", "bucket": "b"}}, "registry.gc.enabled is not set", nil},
		{"filesystem, gc off", nil, "", &no},
		{"s3 without bucket", map[string]map[string]any{"s3": {"region": "us-east-1"}}, "missing bucket", nil},
		{"two drivers", map[string]map[string]any{"s3": {"region": "r", "bucket": "b"}, "filesystem": {}}, "more than one storage driver", nil},
		{"unknown driver", map[string]map[string]any{"azure": {}}, `unknown storage driver "azure"`, nil},
		{"delete", map[string]map[string]any{"delete": {"enabled": false}}, "airgapd manages storage.delete", nil},
		{"cache", map[string]map[string]any{"cache": {"blobdescriptor": "inmemory"}}, "not supported", nil},
		{"redirect not bool", map[string]map[string]any{"redirect": {"disable": "yes"}}, "not a boolean", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig("127.0.0.0/8")
			c.Storage = tc.storage
			c.GC.Enabled = tc.gc
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want an error with %q, got %v", tc.want, err)
			}
		})
	}
}

func TestParseRoute(t *testing.T) {
	cases := []struct {
		path, method string
		kind         routeKind
		repo, ref    string
		act          action
	}{
		{"/v2/", "GET", routeBase, "", "", actionPull},
		{"/v2", "GET", routeBase, "", "", actionPull},
		{"/v2/_catalog", "GET", routeCatalog, "", "", actionPull},
		{"/v2/lab/app/tags/list", "GET", routeTags, "lab/app", "", actionPull},
		{"/v2/lab/app/manifests/v1", "GET", routeManifest, "lab/app", "v1", actionPull},
		{"/v2/lab/app/manifests/v1", "HEAD", routeManifest, "lab/app", "v1", actionPull},
		{"/v2/lab/app/manifests/v1", "PUT", routeManifest, "lab/app", "v1", actionPush},
		{"/v2/lab/app/manifests/sha256:ab", "DELETE", routeManifest, "lab/app", "sha256:ab", actionDelete},
		{"/v2/a/b/c/blobs/sha256:ab", "GET", routeBlob, "a/b/c", "sha256:ab", actionPull},
		{"/v2/a/blobs/sha256:ab", "DELETE", routeBlob, "a", "sha256:ab", actionDelete},
		{"/v2/a/blobs/uploads/", "POST", routeUpload, "a", "", actionPush},
		{"/v2/a/blobs/uploads/0f1e", "GET", routeUpload, "a", "0f1e", actionPush},
		{"/v2/a/blobs/uploads/0f1e", "DELETE", routeUpload, "a", "0f1e", actionPush},
		{"/v2/a/referrers/sha256:ab", "GET", routeReferrers, "a", "sha256:ab", actionPull},
		{"/v2/a/other", "POST", routeOther, "", "", actionPush},
		// A repository named like an endpoint still parses from the right.
		{"/v2/manifests/blobs/manifests/v1", "GET", routeManifest, "manifests/blobs", "v1", actionPull},
	}
	for _, tc := range cases {
		rt := parseRoute(tc.path)
		if rt.kind != tc.kind || rt.repo != tc.repo || rt.ref != tc.ref || rt.action(tc.method) != tc.act {
			t.Errorf("%s %s: got %v %q %q action %d; want %v %q %q action %d", tc.method, tc.path, rt.kind, rt.repo, rt.ref, rt.action(tc.method), tc.kind, tc.repo, tc.ref, tc.act)
		}
	}
}

// do sends one request and returns the status and WWW-Authenticate.
func do(t *testing.T, method, url string, user, pass string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

func TestAuthorization(t *testing.T) {
	inside := newTestRegistry(t, testConfig("127.0.0.1/32"))
	outside := newTestRegistry(t, testConfig("192.0.2.0/24"))
	img, _, _ := images(t)
	if err := remote.Write(inside.ref(t, "lab/app:v1"), img, remote.WithAuth(pusher)); err != nil {
		t.Fatalf("push with credentials: %v", err)
	}
	if err := remote.Write(outside.ref(t, "lab/app:v1"), img, remote.WithAuth(pusher)); err != nil {
		t.Fatalf("push with credentials: %v", err)
	}
	const want = `Basic realm="airgapd registry"`
	cases := []struct {
		name         string
		r            *testRegistry
		method, path string
		user, pass   string
		code         int
		challenge    bool
	}{
		{"ping inside pull_from", inside, "GET", "/v2/", "", "", 200, true},
		{"ping outside pull_from", outside, "GET", "/v2/", "", "", 401, true},
		{"ping with credentials", outside, "GET", "/v2/", "admin", "s3cret", 200, false},
		{"anonymous pull inside", inside, "GET", "/v2/lab/app/manifests/v1", "", "", 200, false},
		{"anonymous pull inside, empty credentials (skopeo)", inside, "GET", "/v2/lab/app/manifests/v1", "", "", 200, false},
		{"anonymous tags inside", inside, "GET", "/v2/lab/app/tags/list", "", "", 200, false},
		{"anonymous pull outside", outside, "GET", "/v2/lab/app/manifests/v1", "", "", 401, true},
		{"pull outside with credentials", outside, "GET", "/v2/lab/app/manifests/v1", "admin", "s3cret", 200, false},
		{"pull inside with a wrong password", inside, "GET", "/v2/lab/app/manifests/v1", "admin", "nope", 401, true},
		{"anonymous push inside", inside, "POST", "/v2/lab/app/blobs/uploads/", "", "", 401, true},
		{"push with a wrong password", inside, "POST", "/v2/lab/app/blobs/uploads/", "admin", "wrong", 401, true},
		{"push as an unknown user", inside, "POST", "/v2/lab/app/blobs/uploads/", "root", "s3cret", 401, true},
		{"push with credentials", inside, "POST", "/v2/lab/app/blobs/uploads/", "admin", "s3cret", 202, false},
		{"anonymous delete inside", inside, "DELETE", "/v2/lab/app/manifests/v1", "", "", 401, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, ch := do(t, tc.method, tc.r.srv.URL+tc.path, tc.user, tc.pass)
			if code != tc.code {
				t.Errorf("status %d, want %d", code, tc.code)
			}
			if tc.challenge && ch != want {
				t.Errorf("WWW-Authenticate %q, want %q", ch, want)
			}
		})
	}
	if n := testutil.ToFloat64(collectorFor(t, inside, "airgapd_registry_auth_failures_total", "wrong_credentials")); n != 3 {
		t.Errorf("wrong_credentials failures: %v, want 3", n)
	}
}

// collectorFor returns one labelled series of the registry's metrics as a
// collector testutil can read.
func collectorFor(t *testing.T, tr *testRegistry, metric string, label string) prometheus.Collector {
	t.Helper()
	mfs, err := tr.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
				}
			}
		}
	}
	t.Fatalf("no %s{%s}", metric, label)
	return nil
}

func TestPushPullDeleteGC(t *testing.T) {
	tr := newTestRegistry(t, testConfig("127.0.0.0/8"))
	a, b, _ := images(t)
	for tag, img := range map[string]v1.Image{"a": a, "b": b} {
		if err := remote.Write(tr.ref(t, "lab/app:"+tag), img, remote.WithAuth(pusher)); err != nil {
			t.Fatal(err)
		}
	}
	// Anonymous pull from loopback: same digest.
	got, err := remote.Image(tr.ref(t, "lab/app:b"))
	if err != nil {
		t.Fatal(err)
	}
	if d := digestOf(t, got); d != digestOf(t, b) {
		t.Fatalf("pulled %s, pushed %s", d, digestOf(t, b))
	}

	// Delete a by digest, then collect.
	if err := remote.Delete(tr.ref(t, "lab/app@"+digestOf(t, a).String()), remote.WithAuth(pusher)); err != nil {
		t.Fatal(err)
	}
	want := blobsOnlyIn(t, a, b)
	// a's manifest is a blob too: unreferenced once deleted.
	want = append(want, digestOf(t, a).String())
	slices.Sort(want)

	dry, err := tr.GC(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if got := gcDigests(dry); !slices.Equal(got, want) {
		t.Fatalf("dry run lists %v, want %v", got, want)
	}
	// Nothing went.
	for _, d := range want {
		if _, err := tr.ns.BlobStatter().Stat(context.Background(), parseDigest(t, d)); err != nil {
			t.Fatalf("dry run removed %s: %v", d, err)
		}
	}
	res, err := tr.GC(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := gcDigests(res); !slices.Equal(got, want) {
		t.Fatalf("gc removed %v, want %v", got, want)
	}
	if res.Bytes <= 0 || res.LayerLinks == 0 {
		t.Errorf("gc result %+v: want bytes and layer links", res)
	}
	for _, d := range want {
		if _, err := tr.ns.BlobStatter().Stat(context.Background(), parseDigest(t, d)); err == nil {
			t.Errorf("%s still stored after gc", d)
		}
	}
	// b still pulls whole.
	img, err := remote.Image(tr.ref(t, "lab/app:b"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validateImage(img); err != nil {
		t.Fatalf("b after gc: %v", err)
	}
	// Nothing more to collect.
	again, err := tr.GC(context.Background(), true)
	if err != nil || len(again.Blobs) != 0 {
		t.Fatalf("second dry run: %v, %v", again.Blobs, err)
	}
}

func gcDigests(res GCResult) []string {
	var out []string
	for _, b := range res.Blobs {
		out = append(out, b.Digest)
	}
	slices.Sort(out)
	return out
}

// validateImage reads every layer to the end (ggcr checks each digest).
func validateImage(img v1.Image) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	if _, err := img.RawConfigFile(); err != nil {
		return err
	}
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func TestGCKeepsBlobsOfAPushInProgress(t *testing.T) {
	tr := newTestRegistry(t, testConfig("127.0.0.0/8"))
	img, _, _ := images(t)
	ref := tr.ref(t, "lab/half:v1")
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	// The blobs arrive; the manifest has not yet.
	for _, l := range ls {
		if err := remote.WriteLayer(ref.Context(), l, remote.WithAuth(pusher)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := tr.GC(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Blobs) != 0 || len(res.Kept) != len(ls) {
		t.Fatalf("gc removed %v and kept %v; want nothing removed and the %d layers kept", res.Blobs, res.Kept, len(ls))
	}
	// The push finishes (its layers are there, so only config and
	// manifest go up) and the image is whole.
	if err := remote.Write(ref, img, remote.WithAuth(pusher)); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateImage(got); err != nil {
		t.Fatal(err)
	}
}

func TestGCRefusesWritesMeanwhile(t *testing.T) {
	tr := newTestRegistry(t, testConfig("127.0.0.0/8"))
	if err := tr.gate.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, _ := do(t, "POST", tr.srv.URL+"/v2/lab/app/blobs/uploads/", "admin", "s3cret")
	if code != http.StatusServiceUnavailable {
		t.Errorf("push during gc: %d, want 503", code)
	}
	if code, _ := do(t, "GET", tr.srv.URL+"/v2/", "", ""); code != 200 {
		t.Errorf("read during gc: %d, want 200", code)
	}
	if _, err := tr.GC(context.Background(), true); !errors.Is(err, errGCRunning) {
		t.Errorf("second gc: %v, want %v", err, errGCRunning)
	}
	tr.gate.open()
	if code, _ := do(t, "POST", tr.srv.URL+"/v2/lab/app/blobs/uploads/", "admin", "s3cret"); code != http.StatusAccepted {
		t.Errorf("push after gc: %d, want 202", code)
	}
}

func TestGCWaitsForWritesInFlight(t *testing.T) {
	var g writeGate
	if !g.enter() {
		t.Fatal("gate closed at start")
	}
	closed := make(chan error, 1)
	go func() { closed <- g.close(context.Background()) }()
	// close waits while the write is in flight; new writes are refused.
	deadline := time.Now().Add(5 * time.Second)
	for !g.closed() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if g.enter() {
		t.Fatal("a write got in while gc waited")
	}
	select {
	case err := <-closed:
		t.Fatalf("close returned (%v) with a write in flight", err)
	default:
	}
	g.leave()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	g.open()
	// Bounded by its context.
	g.enter()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := g.close(ctx); err == nil {
		t.Fatal("close did not give up")
	}
	if g.closed() {
		t.Fatal("gate left closed after giving up")
	}
}

func TestImport(t *testing.T) {
	a, b, _ := images(t)
	dir := t.TempDir()

	// An OCI layout with one image named by a tag only, one by a full name.
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(a, layout.WithAnnotations(map[string]string{annotationRefName: "v1"})); err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(b, layout.WithAnnotations(map[string]string{annotationContainerdName: "docker.io/library/b:2"})); err != nil {
		t.Fatal(err)
	}
	ociTar := filepath.Join(dir, "oci.tar")
	tarDir(t, filepath.Join(dir, "layout"), ociTar)

	// A docker save tarball.
	saveTar := filepath.Join(dir, "save.tar")
	tag, _ := name.NewTag("lab/saved:v3")
	if err := tarball.WriteToFile(saveTar, tag, a); err != nil {
		t.Fatal(err)
	}

	tr := newTestRegistry(t, testConfig("127.0.0.0/8"))
	ctx := context.Background()
	if _, err := tr.Import(ctx, ociTar, ImportOptions{}); err == nil || !strings.Contains(err.Error(), "--repo") {
		t.Fatalf("a tag-only name without --repo: %v, want a hint at --repo", err)
	}
	var mu sync.Mutex
	var last [2]int64
	res, err := tr.Import(ctx, ociTar, ImportOptions{Repo: "lab/oci", Progress: func(c, tot int64) {
		mu.Lock()
		last = [2]int64{c, tot}
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != "oci-layout" || len(res.Images) != 2 {
		t.Fatalf("result %+v", res)
	}
	if last[0] == 0 || last[0] != last[1] {
		t.Errorf("last progress %v, want complete == total > 0", last)
	}
	res2, err := tr.Import(ctx, saveTar, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Format != "docker-save" || len(res2.Images) != 1 || res2.Images[0].Name != "lab/saved:v3" {
		t.Fatalf("result %+v", res2)
	}
	for ref, want := range map[string]v1.Image{"lab/oci:v1": a, "lab/oci:2": b, "lab/saved:v3": a} {
		img, err := remote.Image(tr.ref(t, ref))
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if digestOf(t, img) != digestOf(t, want) {
			t.Errorf("%s: digest %s, want %s", ref, digestOf(t, img), digestOf(t, want))
		}
		if err := validateImage(img); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
	}
	// Again: everything is there, nothing is uploaded twice.
	before := tr.stats.bytesReceived.Load()
	if _, err := tr.Import(ctx, ociTar, ImportOptions{Repo: "lab/oci"}); err != nil {
		t.Fatal(err)
	}
	if after := tr.stats.bytesReceived.Load(); after-before > 16<<10 {
		t.Errorf("re-import sent %d bytes; want only manifests", after-before)
	}
}

// tarDir writes the files under dir into a tar at out, as `tar -C dir -cf
// out .` would.
func tarDir(t *testing.T, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func parseDigest(t *testing.T, s string) digest.Digest {
	t.Helper()
	d, err := digest.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestNodeConfig(t *testing.T) {
	o := NodeOptions{Host: "admin.lab.internal:5000", Upstreams: []Mirror{{Name: "docker.io"}, {Name: "quay.io", URL: "https://quay.example/"}}}
	h, err := HostsTOML("docker.io", o)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`server = "https://admin.lab.internal:5000"`, `capabilities = ["pull", "resolve"]`, `ca = "` + DefaultNodeCAPath + `"`} {
		if !strings.Contains(h, want) {
			t.Errorf("docker.io hosts.toml lacks %q:\n%s", want, h)
		}
	}
	if !strings.Contains(h, "\n[host]\n") || strings.Contains(h, "[host.") || strings.Contains(h, `server = "https://registry-1`) {
		t.Errorf("docker.io hosts.toml sends nodes to the upstream:\n%s", h)
	}
	if h, _ := HostsTOML("quay.io", o); !strings.Contains(h, `server = "https://admin.lab.internal:5000"`) || !strings.Contains(h, "https://quay.example") {
		t.Errorf("quay.io hosts.toml:\n%s", h)
	}
	if h, _ := HostsTOML(o.Host, o); !strings.Contains(h, `"push"`) || !strings.Contains(h, `server = "https://admin.lab.internal:5000"`) {
		t.Errorf("self hosts.toml:\n%s", h)
	}
	if _, err := HostsTOML("ghcr.io", o); err == nil {
		t.Error("hosts.toml for an upstream not in mirrors")
	}
	plain := o
	plain.PlainHTTP = true
	if h, _ := HostsTOML("docker.io", plain); strings.Contains(h, "ca =") || !strings.Contains(h, `server = "http://admin.lab.internal:5000"`) {
		t.Errorf("plain HTTP hosts.toml:\n%s", h)
	}
	v2, _ := ContainerdConfig(2)
	v3, _ := ContainerdConfig(3)
	if !strings.Contains(v2, `io.containerd.grpc.v1.cri".registry]`) || !strings.Contains(v3, `io.containerd.cri.v1.images'.registry]`) {
		t.Errorf("config snippets:\n%s\n%s", v2, v3)
	}
	rc := RegistriesConf(o)
	for _, want := range []string{`location = "admin.lab.internal:5000"`, `prefix = "docker.io"`, `location = "admin.lab.internal:5000/docker.io"`} {
		if !strings.Contains(rc, want) {
			t.Errorf("registries.conf lacks %q:\n%s", want, rc)
		}
	}
	srv := httptest.NewServer(NodeConfigHandler(func() NodeOptions { return o }))
	defer srv.Close()
	for path, code := range map[string]int{
		"/bootstrap/containerd/certs.d/docker.io/hosts.toml":               200,
		"/bootstrap/containerd/certs.d/admin.lab.internal:5000/hosts.toml": 200,
		"/bootstrap/containerd/certs.d/ghcr.io/hosts.toml":                 404,
		"/bootstrap/containerd/config-v2.toml":                             200,
		"/bootstrap/containerd/config-v3.toml":                             200,
		"/bootstrap/containers/registries.conf":                            200,
		"/bootstrap/nothing":                                               404,
	} {
		if got, _ := do(t, "GET", srv.URL+path, "", ""); got != code {
			t.Errorf("GET %s: %d, want %d", path, got, code)
		}
	}
	if n := len(NodeFiles(o)); n != 4 {
		t.Errorf("NodeFiles: %d files, want 4", n)
	}
}

func TestNewTurnsBadStorageIntoAnError(t *testing.T) {
	c := testConfig()
	// Valid to Validate, refused by the s3 driver (no credentials, bad
	// chunk size): New must fail, not panic.
	c.Storage = map[string]map[string]any{"s3": {"region": "us-east-1", "bucket": "b", "chunksize": "many"}}
	c.GC.Enabled = &[]bool{true}[0]
	if _, err := New(c, Deps{DataDir: t.TempDir()}); err == nil {
		t.Fatal("New accepted an unusable storage")
	}
}

func TestBlobFilesMatchDistribution(t *testing.T) {
	tr := newTestRegistry(t, testConfig("127.0.0.0/8"))
	img, other, _ := images(t)
	if err := remote.Write(tr.ref(t, "lab/a:v1"), img, remote.WithAuth(pusher)); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tr.ref(t, "lab/b:v1"), other, remote.WithAuth(pusher)); err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	d, _ := ls[len(ls)-1].Digest() // a's own layer, not in lab/b
	rc, _ := ls[len(ls)-1].Compressed()
	want, _ := io.ReadAll(rc)
	get := func(method, path, rng string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, tr.srv.URL+path, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	resp, body := get("GET", "/v2/lab/a/blobs/"+d.String(), "")
	if resp.StatusCode != 200 || string(body) != string(want) || resp.Header.Get("Docker-Content-Digest") != d.String() ||
		resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("GET: %d, %d bytes, headers %v", resp.StatusCode, len(body), resp.Header)
	}
	if resp, _ := get("HEAD", "/v2/lab/a/blobs/"+d.String(), ""); resp.StatusCode != 200 || resp.ContentLength != int64(len(want)) {
		t.Errorf("HEAD: %d, length %d", resp.StatusCode, resp.ContentLength)
	}
	if resp, body := get("GET", "/v2/lab/a/blobs/"+d.String(), "bytes=10-19"); resp.StatusCode != 206 || string(body) != string(want[10:20]) {
		t.Errorf("range: %d %q", resp.StatusCode, body)
	}
	// Not linked into lab/b: distribution's 404, not the file.
	if resp, _ := get("GET", "/v2/lab/b/blobs/"+d.String(), ""); resp.StatusCode != 404 {
		t.Errorf("blob of another repository: %d, want 404", resp.StatusCode)
	}
	if n := tr.stats.bytesSent.Load(); n < int64(len(want)) {
		t.Errorf("bytes sent %d, want at least %d", n, len(want))
	}
}
