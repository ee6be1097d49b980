package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/airgapd/airgapd/api"
)

// registryTestHash is bcrypt("s3cret") at the lowest cost.
const registryTestHash = "$2a$04$lYoC4beu4Alb4/X14x5ONuq73PsfHm4dI6SKRoMTzkDSTwHNkj9XC"

// regEnv is an airgapd with its registry on loopback over TLS from the
// appliance CA, and what skopeo and crane need to trust it: the CA alone,
// never --insecure or --tls-verify=false.
type regEnv struct {
	in      *instance
	host    string // 127.0.0.1:PORT
	caFile  string // the appliance CA, for crane (SSL_CERT_FILE)
	certDir string // holds ca.crt, for skopeo --src/--dest-cert-dir
	authDir string // DOCKER_CONFIG with admin's credentials
	anonDir string // DOCKER_CONFIG with none
}

// startRegistry runs airgapd with a registry that admin (password s3cret)
// may push to and 127.0.0.1 may pull from anonymously.
func startRegistry(t *testing.T) *regEnv {
	t.Helper()
	need(t, "skopeo", "crane")
	return startRegistryWith(t, "")
}

// startRegistryWith is startRegistry with more keys of the registry
// section (indented two spaces).
func startRegistryWith(t *testing.T, more string) *regEnv {
	t.Helper()
	dir := t.TempDir()
	in := start(t, dir, `
registry:
  listen: "127.0.0.1:0"
  tls: auto
  users: [{name: admin, password_hash: "`+registryTestHash+`"}]
  pull_from: [127.0.0.1/32]
`+more)
	u := in.status().listener("registry")
	host, ok := strings.CutPrefix(u, "https://")
	if !ok {
		t.Fatalf("registry listener %q is not https", u)
	}
	e := &regEnv{in: in, host: host, caFile: filepath.Join(dir, "data", "pki", "ca.crt"),
		certDir: filepath.Join(dir, "certs"), authDir: filepath.Join(dir, "auth"), anonDir: filepath.Join(dir, "anon")}
	ca, err := os.ReadFile(e.caFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{e.certDir, e.authDir, e.anonDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(e.certDir, "ca.crt"), string(ca))
	auth := base64.StdEncoding.EncodeToString([]byte("admin:s3cret"))
	writeFile(t, filepath.Join(e.authDir, "config.json"), fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, auth))
	writeFile(t, filepath.Join(e.anonDir, "config.json"), `{"auths": {}}`)
	return e
}

// crane runs crane trusting only the appliance CA, as admin or anonymous.
func (e *regEnv) crane(t *testing.T, asAdmin bool, args ...string) (string, error) {
	t.Helper()
	cfg := e.anonDir
	if asAdmin {
		cfg = e.authDir
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "crane", args...)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+e.caFile, "SSL_CERT_DIR=/nonexistent", "DOCKER_CONFIG="+cfg)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// skopeo runs skopeo with a private HOME, so no credentials of the host's
// apply.
func (e *regEnv) skopeo(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "skopeo", append([]string{"--insecure-policy"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+e.anonDir, "REGISTRY_AUTH_FILE="+filepath.Join(e.anonDir, "config.json"))
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// ociImage builds an image with OCI media types: one layer shared with
// others made from the same base, one of its own of size bytes.
func ociImage(t *testing.T, base v1.Layer, size int64) v1.Image {
	t.Helper()
	own, err := random.Layer(size, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	layers := []v1.Layer{own}
	if base != nil {
		layers = []v1.Layer{base, own}
	}
	img, err = mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func imageDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// blobDigests are img's config and layer digests.
func blobDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{m.Config.Digest.String()}
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

// writeLayout writes img into an OCI layout folder under dir, named by tag.
func writeLayout(t *testing.T, dir string, img v1.Image, tag string) string {
	t.Helper()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeTarball(t *testing.T, path, ref string, img v1.Image) string {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRegistrySkopeoCraneTLS: skopeo and crane push over TLS trusting only
// airgapd's CA, then pull back the same digests; skopeo copies every blob
// into dir:.
func TestRegistrySkopeoCraneTLS(t *testing.T) {
	e := startRegistry(t)
	dir := t.TempDir()
	a := ociImage(t, nil, 64<<10)
	b := ociImage(t, nil, 64<<10)

	// skopeo pushes from an OCI layout.
	lay := writeLayout(t, filepath.Join(dir, "layout"), a, "v1")
	if out, err := e.skopeo(t, "copy", "--dest-cert-dir", e.certDir, "--dest-creds", "admin:s3cret",
		"oci:"+lay+":v1", "docker://"+e.host+"/lab/skopeo:v1"); err != nil {
		t.Fatalf("skopeo push: %v\n%s", err, out)
	}
	// crane pushes another layout (a docker save tarball would lose the
	// OCI media types, and with them the digest).
	if out, err := e.crane(t, true, "push", writeLayout(t, filepath.Join(dir, "b"), b, "v1"), e.host+"/lab/crane:v1"); err != nil {
		t.Fatalf("crane push: %v\n%s", err, out)
	}

	// Pull back, anonymously from 127.0.0.1: the same manifest digests.
	for ref, want := range map[string]string{"lab/skopeo:v1": imageDigest(t, a), "lab/crane:v1": imageDigest(t, b)} {
		got, err := e.crane(t, false, "digest", e.host+"/"+ref)
		if err != nil || got != want {
			t.Errorf("crane digest %s = %q (%v), want %s", ref, got, err, want)
		}
		out, err := e.skopeo(t, "inspect", "--cert-dir", e.certDir, "--format", "{{.Digest}}", "docker://"+e.host+"/"+ref)
		if err != nil || out != want {
			t.Errorf("skopeo inspect %s = %q (%v), want %s", ref, out, err, want)
		}
	}
	// crane pull verifies every blob against its digest as it reads.
	if out, err := e.crane(t, false, "pull", "--format", "oci", e.host+"/lab/skopeo:v1", filepath.Join(dir, "pulled")); err != nil {
		t.Fatalf("crane pull: %v\n%s", err, out)
	}
	// skopeo copy to dir: gets every blob, and the manifest unchanged.
	out := filepath.Join(dir, "dir")
	if o, err := e.skopeo(t, "copy", "--src-cert-dir", e.certDir, "docker://"+e.host+"/lab/crane:v1", "dir:"+out); err != nil {
		t.Fatalf("skopeo copy to dir: %v\n%s", err, o)
	}
	for _, d := range blobDigests(t, b) {
		if _, err := os.Stat(filepath.Join(out, strings.TrimPrefix(d, "sha256:"))); err != nil {
			t.Errorf("skopeo dir: lacks blob %s", d)
		}
	}
	raw, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := "sha256:" + sha256Hex(raw); got != imageDigest(t, b) {
		t.Errorf("dir: manifest digest %s, want %s", got, imageDigest(t, b))
	}
	// Tags and the catalog list what was pushed.
	if got, err := e.crane(t, false, "catalog", e.host); err != nil || !strings.Contains(got, "lab/skopeo") || !strings.Contains(got, "lab/crane") {
		t.Errorf("crane catalog = %q (%v)", got, err)
	}
	// Status counts the pushes and pulls.
	var st api.RegistryStatus
	e.in.status().detail(t, "registry", &st)
	if st.Pushes < 2 || st.Pulls < 2 {
		t.Errorf("registry status: %+v, want at least 2 pushes and 2 pulls", st)
	}
}

// TestRegistryAuth: pushes need right credentials; anonymous pulls only
// from pull_from.
func TestRegistryAuth(t *testing.T) {
	e := startRegistry(t)
	dir := t.TempDir()
	img := ociImage(t, nil, 16<<10)
	tb := writeLayout(t, filepath.Join(dir, "crane"), img, "v1")

	if out, err := e.crane(t, false, "push", tb, e.host+"/lab/app:v1"); err == nil || !strings.Contains(out, "UNAUTHORIZED") {
		t.Errorf("crane push without credentials: %v, want a 401:\n%s", err, out)
	}
	lay := writeLayout(t, filepath.Join(dir, "layout"), img, "v1")
	if out, err := e.skopeo(t, "copy", "--dest-cert-dir", e.certDir, "--dest-creds", "admin:wrong",
		"oci:"+lay+":v1", "docker://"+e.host+"/lab/app:v1"); err == nil || !strings.Contains(strings.ToLower(out), "unauthorized") {
		t.Errorf("skopeo push with a wrong password: %v, want unauthorized:\n%s", err, out)
	}
	if out, err := e.crane(t, true, "push", tb, e.host+"/lab/app:v1"); err != nil {
		t.Fatalf("crane push as admin: %v\n%s", err, out)
	}

	// The same request from 127.0.0.1 and from 127.0.0.9.
	manifest := "https://" + e.host + "/v2/lab/app/manifests/v1"
	for _, tc := range []struct {
		from      string
		code      int
		challenge string
	}{
		{"127.0.0.1", http.StatusOK, ""},
		{"127.0.0.9", http.StatusUnauthorized, `Basic realm="airgapd registry"`},
	} {
		code, ch, body := getFrom(t, e.caFile, tc.from, manifest)
		if code != tc.code || ch != tc.challenge {
			t.Errorf("pull from %s: %d %q, want %d %q", tc.from, code, ch, tc.code, tc.challenge)
		}
		if tc.code == http.StatusUnauthorized && strings.Contains(body, "schemaVersion") {
			t.Errorf("pull from %s got the manifest with its 401", tc.from)
		}
	}
	// Wrong credentials and a push without any: 401 with the challenge.
	for _, tc := range []struct{ method, user, pass string }{{"GET", "admin", "wrong"}, {"POST", "", ""}} {
		req, _ := http.NewRequest(tc.method, "https://"+e.host+"/v2/lab/app/blobs/uploads/", nil)
		if tc.method == "GET" {
			req.URL.Path = "/v2/lab/app/manifests/v1"
		}
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		resp, err := caClient(t, e.caFile, "").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="airgapd registry"` {
			t.Errorf("%s %s user %q: %d %q", tc.method, req.URL.Path, tc.user, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
}

// caClient trusts only the appliance CA and, when from is set, connects
// from that loopback address.
func caClient(t *testing.T, caFile, from string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:     d.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
}

func getFrom(t *testing.T, caFile, from, url string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := caClient(t, caFile, from).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), b.String()
}

// TestRegistryImport: `airgapd registry import` of an OCI layout tar and of
// a docker save tarball, through the running server and offline; the
// images pull back with the same digests.
func TestRegistryImport(t *testing.T) {
	e := startRegistry(t)
	dir := t.TempDir()
	a := ociImage(t, nil, 32<<10)
	b := ociImage(t, nil, 32<<10)
	c := ociImage(t, nil, 32<<10)

	lay := writeLayout(t, filepath.Join(dir, "layout"), a, "v1")
	ociTar := filepath.Join(dir, "oci.tar")
	if out, err := run(t, 30*time.Second, "tar", "-C", lay, "-cf", ociTar, "."); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	saveTar := writeTarball(t, filepath.Join(dir, "save.tar"), "lab/saved:v2", b)
	// docker save keeps no manifest: the one import stores is the one the
	// tarball describes (docker media types), whatever b's was.
	saved, err := tarball.ImageFromPath(saveTar, nil)
	if err != nil {
		t.Fatal(err)
	}
	b = saved

	out, err := run(t, 60*time.Second, airgapdBin, "registry", "import", ociTar, "--repo", "lab/oci", "--config", e.in.config)
	if err != nil || !strings.Contains(out, "lab/oci:v1@"+imageDigest(t, a)) {
		t.Fatalf("import OCI layout: %v\n%s", err, out)
	}
	out, err = run(t, 60*time.Second, airgapdBin, "registry", "import", saveTar, "--config", e.in.config)
	if err != nil || !strings.Contains(out, "lab/saved:v2@"+imageDigest(t, b)) {
		t.Fatalf("import docker save: %v\n%s", err, out)
	}
	if !strings.Contains(e.in.log.String(), "registry import done") {
		t.Error("the imports did not go through the server")
	}
	for ref, want := range map[string]string{"lab/oci:v1": imageDigest(t, a), "lab/saved:v2": imageDigest(t, b)} {
		if got, err := e.crane(t, false, "digest", e.host+"/"+ref); err != nil || got != want {
			t.Errorf("%s: digest %q (%v), want %s", ref, got, err, want)
		}
		if out, err := e.crane(t, false, "pull", e.host+"/"+ref, filepath.Join(dir, strings.ReplaceAll(ref, "/", "_")+".tar")); err != nil {
			t.Errorf("crane pull %s: %v\n%s", ref, err, out)
		}
	}

	// Offline: stop the server, import into its data_dir, start it again.
	e.in.signal(syscall.SIGTERM)
	if code := e.in.waitExit(5 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	offTar := writeTarball(t, filepath.Join(dir, "c.tar"), "lab/offline:v3", c)
	if c, err = tarball.ImageFromPath(offTar, nil); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, 60*time.Second, airgapdBin, "registry", "import", offTar, "--config", e.in.config)
	if err != nil || !strings.Contains(out, "lab/offline:v3@"+imageDigest(t, c)) {
		t.Fatalf("offline import: %v\n%s", err, out)
	}
	body, err := os.ReadFile(e.in.config)
	if err != nil {
		t.Fatal(err)
	}
	again := start(t, e.in.dir, strings.SplitN(string(body), "\n", 4)[3])
	host := strings.TrimPrefix(again.status().listener("registry"), "https://")
	e.host = host
	if got, err := e.crane(t, false, "digest", host+"/lab/offline:v3"); err != nil || got != imageDigest(t, c) {
		t.Errorf("after offline import: digest %q (%v), want %s", got, err, imageDigest(t, c))
	}
	// With the server back, an offline import must not touch its storage.
	off := exec.Command(airgapdBin, "registry", "import", offTar, "--config", again.config, "--socket", filepath.Join(dir, "no.sock"))
	if o, err := off.CombinedOutput(); err == nil || !strings.Contains(string(o), "held by a running airgapd") {
		t.Errorf("offline import beside a server: %v\n%s", err, o)
	}
}

// TestRegistryGC: delete one of two images sharing a layer; gc --dry-run
// lists only the deleted image's own blobs, gc removes exactly those, the
// other image still pulls; a push beside gc completes intact or is refused
// with a clear error.
func TestRegistryGC(t *testing.T) {
	e := startRegistry(t)
	dir := t.TempDir()
	base, err := random.Layer(64<<10, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	a := ociImage(t, base, 64<<10)
	b := ociImage(t, base, 64<<10)
	for tag, img := range map[string]v1.Image{"a": a, "b": b} {
		tb := writeLayout(t, filepath.Join(dir, tag), img, tag)
		if out, err := e.crane(t, true, "push", tb, e.host+"/lab/gc:"+tag); err != nil {
			t.Fatalf("push %s: %v\n%s", tag, err, out)
		}
	}
	if out, err := e.crane(t, true, "delete", e.host+"/lab/gc@"+imageDigest(t, a)); err != nil {
		t.Fatalf("crane delete: %v\n%s", err, out)
	}
	// a's own blobs: its config, its own layer and its manifest.
	var want []string
	shared := blobDigests(t, b)
	for _, d := range blobDigests(t, a) {
		if !slices.Contains(shared, d) {
			want = append(want, d)
		}
	}
	want = append(want, imageDigest(t, a))
	slices.Sort(want)

	gc := func(args ...string) []string {
		t.Helper()
		out, err := run(t, 60*time.Second, airgapdBin, append([]string{"registry", "gc", "--config", e.in.config}, args...)...)
		if err != nil {
			t.Fatalf("gc %v: %v\n%s", args, err, out)
		}
		var got []string
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 2 && strings.HasPrefix(f[0], "sha256:") {
				got = append(got, f[0])
			}
		}
		slices.Sort(got)
		return got
	}
	blobFile := func(d string) string {
		hex := strings.TrimPrefix(d, "sha256:")
		return filepath.Join(e.in.dir, "data", "registry", "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
	}
	if got := gc("--dry-run"); !slices.Equal(got, want) {
		t.Fatalf("gc --dry-run lists %v, want %v", got, want)
	}
	for _, d := range want {
		if _, err := os.Stat(blobFile(d)); err != nil {
			t.Fatalf("dry run removed %s", d)
		}
	}
	if got := gc(); !slices.Equal(got, want) {
		t.Fatalf("gc removed %v, want %v", got, want)
	}
	for _, d := range want {
		if _, err := os.Stat(blobFile(d)); !os.IsNotExist(err) {
			t.Errorf("%s still on disk after gc (%v)", d, err)
		}
	}
	for _, d := range shared {
		if _, err := os.Stat(blobFile(d)); err != nil {
			t.Errorf("b's blob %s gone after gc: %v", d, err)
		}
	}
	if out, err := e.crane(t, false, "pull", e.host+"/lab/gc:b", filepath.Join(dir, "b-pulled.tar")); err != nil {
		t.Fatalf("b after gc: %v\n%s", err, out)
	}

	// A push beside gc: several layers, so the two overlap.
	big := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	for range 6 {
		l, err := random.Layer(2<<20, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		if big, err = mutate.AppendLayers(big, l); err != nil {
			t.Fatal(err)
		}
	}
	tb := writeLayout(t, filepath.Join(dir, "big"), big, "v1")
	type result struct {
		out string
		err error
	}
	pushed := make(chan result, 1)
	go func() {
		out, err := e.crane(t, true, "push", tb, e.host+"/lab/big:v1")
		pushed <- result{out, err}
	}()
	for range 3 {
		gc()
	}
	p := <-pushed
	if p.err != nil {
		if !strings.Contains(p.out, "garbage collection is running") {
			t.Fatalf("push beside gc failed without saying why: %v\n%s", p.err, p.out)
		}
		t.Logf("push beside gc refused: %s", p.out)
		return
	}
	if got, err := e.crane(t, false, "digest", e.host+"/lab/big:v1"); err != nil || got != imageDigest(t, big) {
		t.Fatalf("push beside gc: digest %q (%v), want %s", got, err, imageDigest(t, big))
	}
	if out, err := e.crane(t, false, "pull", e.host+"/lab/big:v1", filepath.Join(dir, "big-pulled.tar")); err != nil {
		t.Fatalf("push beside gc left a broken image: %v\n%s", err, out)
	}
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
