package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// bastion is the internet side: an airgapd config (never served) whose
// mirror syncs an rpmUpstream and whose registry.mirrors says the stand-in
// plays registry.k8s.io, and a folder of files.
type bastion struct {
	t      *testing.T
	config string
	files  string
	out    string // where bundles go
}

func newBastion(t *testing.T, u *rpmUpstream, k8s *standIn) *bastion {
	t.Helper()
	dir := t.TempDir()
	b := &bastion{t: t, files: filepath.Join(dir, "files-src"), out: filepath.Join(dir, "out")}
	b.config = writeConfig(t, dir, fmt.Sprintf(`
mirror:
  listen: 127.0.0.1:0
  repos:
    - { name: up, baseurl: %q }
registry:
  listen: 127.0.0.1:0
  tls: off
  mirrors: [{name: registry.k8s.io, url: %q}]
`, u.url(), k8s.srv.URL))
	os.MkdirAll(filepath.Join(b.files, "k8s", "v1.30"), 0o755)
	writeFile(t, filepath.Join(b.files, "README.txt"), "offline files\n")
	bin := make([]byte, 300<<10)
	for i := range bin {
		bin[i] = byte(i*7 + i/251)
	}
	writeFile(t, filepath.Join(b.files, "k8s", "v1.30", "kubeadm"), string(bin))
	return b
}

func (b *bastion) airgapd(args ...string) (string, error) {
	b.t.Helper()
	return run(b.t, 90*time.Second, airgapdBin, append(args, "--config", b.config)...)
}

func (b *bastion) sync() {
	b.t.Helper()
	if out, err := b.airgapd("mirror", "sync", "up"); err != nil {
		b.t.Fatalf("mirror sync: %v\n%s", err, out)
	}
}

// create writes bundle name with the repo, the files and images.
func (b *bastion) create(name string, images []string, extra ...string) string {
	b.t.Helper()
	out := filepath.Join(b.out, name)
	args := []string{"bundle", "create", "-q", "--repo", "up", "--files", b.files, "--out", out}
	for _, im := range images {
		args = append(args, "--image", im)
	}
	if o, err := b.airgapd(append(args, extra...)...); err != nil {
		b.t.Fatalf("bundle create %s: %v\n%s", name, err, o)
	}
	return out
}

// inspectBundle is `airgapd bundle inspect --json`.
type inspectBundle struct {
	ID       string   `json:"id"`
	Parts    []string `json:"parts"`
	Manifest struct {
		Base  string `json:"base"`
		Split *struct {
			Parts int   `json:"parts"`
			Size  int64 `json:"size"`
		} `json:"split"`
		Repos []struct {
			Format string `json:"format"`
			Name   string `json:"name"`
			Files  []struct {
				Path   string `json:"path"`
				Digest string `json:"digest"`
			} `json:"files"`
		} `json:"repos"`
		Images []struct {
			Name   string   `json:"name"`
			Digest string   `json:"digest"`
			Blobs  []string `json:"blobs"`
			InBase bool     `json:"in_base"`
		} `json:"images"`
		Blobs []struct {
			Digest string `json:"digest"`
			Size   int64  `json:"size"`
		} `json:"blobs"`
	} `json:"manifest"`
}

func inspect(t *testing.T, path string) inspectBundle {
	t.Helper()
	out, err := run(t, 30*time.Second, airgapdBin, "bundle", "inspect", "--json", path)
	if err != nil {
		t.Fatalf("bundle inspect %s: %v\n%s", path, err, out)
	}
	var ib inspectBundle
	if err := json.Unmarshal([]byte(out), &ib); err != nil {
		t.Fatalf("bundle inspect %s: %v\n%s", path, err, out)
	}
	return ib
}

func (ib inspectBundle) carries(digest string) bool {
	return slices.ContainsFunc(ib.Manifest.Blobs, func(b struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	}) bool {
		return b.Digest == digest
	})
}

func (ib inspectBundle) repoFile(path string) string {
	for _, r := range ib.Manifest.Repos {
		for _, f := range r.Files {
			if f.Path == path {
				return f.Digest
			}
		}
	}
	return ""
}

// target is the air-gapped side: an airgapd config with a mirror (files
// folder) and a registry without any upstream.
type target struct {
	t      *testing.T
	dir    string
	body   string
	config string
	files  string
}

func newTarget(t *testing.T) *target {
	t.Helper()
	dir := t.TempDir()
	tg := &target{t: t, dir: dir, files: filepath.Join(dir, "files")}
	tg.body = fmt.Sprintf(`
advertise: { addresses: [127.0.0.1] }
mirror:
  listen: 127.0.0.1:0
  files: %s
registry:
  listen: "127.0.0.1:0"
  tls: auto
  users: [{name: admin, password_hash: "%s"}]
  pull_from: [127.0.0.1/32]
`, tg.files, registryTestHash)
	tg.config = writeConfig(t, dir, tg.body)
	return tg
}

func (tg *target) importBundle(path string) (string, error) {
	tg.t.Helper()
	return run(tg.t, 90*time.Second, airgapdBin, "bundle", "import", "-q", path, "--config", tg.config)
}

// published reports whether anything reached the places nodes read from.
func (tg *target) published() []string {
	tg.t.Helper()
	var got []string
	if es, _ := os.ReadDir(tg.files); len(es) > 0 {
		got = append(got, fmt.Sprintf("files folder holds %d entries", len(es)))
	}
	if _, err := os.Lstat(filepath.Join(tg.dir, "data", "mirror", "repos", "up", "current")); err == nil {
		got = append(got, "repo up is published")
	}
	if es, _ := os.ReadDir(filepath.Join(tg.dir, "data", "registry", "docker", "registry", "v2", "repositories")); len(es) > 0 {
		got = append(got, fmt.Sprintf("registry holds %d repositories", len(es)))
	}
	return got
}

// pushIndex pushes a two-platform index of imgs under ref to the stand-in.
func pushIndex(t *testing.T, s *standIn, ref string, imgs ...v1.Image) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for i, img := range imgs {
		arch := []string{"amd64", "arm64"}[i%2]
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	r, err := name.ParseReference(s.host+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: "admin", Password: "s3cret"}))); err != nil {
		t.Fatalf("push index %s: %v", ref, err)
	}
	return idx
}

func indexDigest(t *testing.T, idx v1.ImageIndex) string {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// flipByteOf copies bundle src to dst with one byte flipped inside the
// first place chunk occurs.
func flipByteOf(t *testing.T, src, dst string, chunk []byte) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, chunk)
	if i < 0 {
		t.Fatalf("%s does not hold the chunk to damage", src)
	}
	b[i+len(chunk)/2] ^= 0x01
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBundle: a bastion bundles a synced createrepo_c repo, a folder of
// files and two images (one a multi-arch index) from a loopback registry
// playing registry.k8s.io; a fresh instance imports it offline and serves
// the same repo to dnf, the same files byte for byte and the same digests
// to skopeo, and to a ns= pull with no upstream anywhere. A tiny
// --split-size bundle imports from its parts, and with a part missing
// names it and publishes nothing; one flipped byte in a package or a layer
// is refused, naming the item, publishing nothing; an incremental bundle
// after one new RPM and one new image holds only what changed and imports
// on top of the first.
func TestBundle(t *testing.T) {
	need(t, "createrepo_c", "dnf", "skopeo")
	u := newRPMUpstream(t)
	for _, n := range []string{"alpha", "bravo", "charlie"} {
		u.add(n, 24<<10)
	}
	u.index()
	k8s := newStandIn(t)
	app := ociImage(t, nil, 96<<10)
	k8s.push(t, "lab/app:v1", app)
	multi := pushIndex(t, k8s, "lab/multi:v1", ociImage(t, nil, 32<<10), ociImage(t, nil, 32<<10))
	want := map[string]string{"registry.k8s.io/lab/app:v1": imageDigest(t, app), "registry.k8s.io/lab/multi:v1": indexDigest(t, multi)}

	b := newBastion(t, u, k8s)
	b.sync()
	list := filepath.Join(t.TempDir(), "images.list")
	writeFile(t, list, "# kubespray-offline style\nregistry.k8s.io/lab/multi:v1\n\n")
	full := b.create("full.tar", []string{"registry.k8s.io/lab/app:v1"}, "--image-list", list)
	ib := inspect(t, full)
	if len(ib.Manifest.Images) != 2 || len(ib.Manifest.Repos) != 1 || ib.Manifest.Split != nil {
		t.Fatalf("full bundle manifest: %+v", ib.Manifest)
	}
	for _, im := range ib.Manifest.Images {
		if want[im.Name] != im.Digest {
			t.Errorf("bundle names %s %s; want %s", im.Name, im.Digest, want[im.Name])
		}
	}
	if out, _ := run(t, 30*time.Second, airgapdBin, "bundle", "inspect", full); !strings.Contains(out, "repo   up") || !strings.Contains(out, "image  registry.k8s.io/lab/multi:v1") {
		t.Errorf("bundle inspect:\n%s", out)
	}

	// One flipped byte in a package, then in a layer: refused, named,
	// nothing published.
	bravo := u.file("Packages/bravo-1.0-1.noarch.rpm")
	layer := firstLayer(t, app)
	for _, c := range []struct {
		what, item string
		chunk      []byte
	}{
		{"package", "repo up Packages/bravo-1.0-1.noarch.rpm", bravo[len(bravo)-4096 : len(bravo)-4096+64]},
		{"layer", "image registry.k8s.io/lab/app:v1", layer[len(layer)/2 : len(layer)/2+64]},
	} {
		bad := filepath.Join(t.TempDir(), "bad.tar")
		flipByteOf(t, full, bad, c.chunk)
		tg := newTarget(t)
		out, err := tg.importBundle(bad)
		if err == nil || !strings.Contains(out, c.item) || !strings.Contains(out, "nothing was published") {
			t.Errorf("import with a flipped byte in a %s: %v\n%s\nwant a refusal naming %q", c.what, err, out, c.item)
		}
		if p := tg.published(); len(p) > 0 {
			t.Errorf("import with a flipped byte in a %s published: %v", c.what, p)
		}
	}

	// Split: a tiny --split-size; a part missing is named, nothing is
	// published; with all parts it imports.
	split := b.create("split.tar", []string{"registry.k8s.io/lab/app:v1", "registry.k8s.io/lab/multi:v1"}, "--split-size", "64K")
	sb := inspect(t, split+".part001")
	if sb.Manifest.Split == nil || sb.Manifest.Split.Parts < 4 || len(sb.Parts) != sb.Manifest.Split.Parts {
		t.Fatalf("split bundle: %d part files, manifest %+v", len(sb.Parts), sb.Manifest.Split)
	}
	for _, p := range sb.Parts {
		if fi, err := os.Stat(p); err != nil || fi.Size() > 64<<10 {
			t.Errorf("part %s: %v, %d bytes; want at most 64 KiB", p, err, fi.Size())
		}
	}
	tg := newTarget(t)
	aside := filepath.Join(t.TempDir(), "part002")
	if err := os.Rename(sb.Parts[1], aside); err != nil {
		t.Fatal(err)
	}
	out, err := tg.importBundle(split + ".part001")
	if err == nil || !strings.Contains(out, "part 2 of") || !strings.Contains(out, "split.tar.part002") || !strings.Contains(out, "missing") {
		t.Errorf("import with part 2 missing: %v\n%s", err, out)
	}
	if p := tg.published(); len(p) > 0 {
		t.Errorf("import with a part missing published: %v", p)
	}
	if err := os.Rename(aside, sb.Parts[1]); err != nil {
		t.Fatal(err)
	}
	if out, err := tg.importBundle(filepath.Dir(split)); err == nil || !strings.Contains(out, "bundles") {
		t.Errorf("import of a folder holding two bundles: %v\n%s; want it to ask which", err, out)
	}
	if out, err := tg.importBundle(split + ".part001"); err != nil {
		t.Fatalf("import of the split bundle: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(tg.files, "k8s", "v1.30", "kubeadm"))
	if err != nil || !bytes.Equal(got, mustRead(t, filepath.Join(b.files, "k8s", "v1.30", "kubeadm"))) {
		t.Errorf("file from the split bundle: %v, %d bytes", err, len(got))
	}

	// Incremental: one more RPM and one more image; the bundle --since the
	// full one holds only those (and the new repodata).
	u.add("delta", 24<<10)
	u.index()
	b.sync()
	extra := ociImage(t, nil, 48<<10)
	k8s.push(t, "lab/extra:v1", extra)
	want["registry.k8s.io/lab/extra:v1"] = imageDigest(t, extra)
	incr := b.create("incr.tar", []string{"registry.k8s.io/lab/app:v1", "registry.k8s.io/lab/multi:v1", "registry.k8s.io/lab/extra:v1"},
		"--since", full+".manifest.json")
	ic := inspect(t, incr)
	if ic.Manifest.Base != ib.ID {
		t.Errorf("incremental base %q; want %q", ic.Manifest.Base, ib.ID)
	}
	for _, n := range []string{"alpha", "bravo", "charlie"} {
		if d := ic.repoFile("Packages/" + n + "-1.0-1.noarch.rpm"); d == "" || ic.carries(d) {
			t.Errorf("incremental bundle: package %s listed %q, carried %v; want listed, not carried", n, d, ic.carries(d))
		}
	}
	if d := ic.repoFile("Packages/delta-1.0-1.noarch.rpm"); d == "" || !ic.carries(d) {
		t.Errorf("incremental bundle does not carry the new package delta")
	}
	var newImageBlobs int
	for _, im := range ic.Manifest.Images {
		switch im.Name {
		case "registry.k8s.io/lab/extra:v1":
			if im.InBase || len(im.Blobs) != 3 {
				t.Errorf("incremental: new image %+v", im)
			}
			newImageBlobs = len(im.Blobs)
		default:
			if !im.InBase {
				t.Errorf("incremental: %s is carried again", im.Name)
			}
		}
	}
	repodata := 0
	for _, bl := range ic.Manifest.Blobs {
		for _, r := range ic.Manifest.Repos {
			for _, f := range r.Files {
				if f.Digest == bl.Digest && strings.HasPrefix(f.Path, "repodata/") {
					repodata++
				}
			}
		}
	}
	if n := len(ic.Manifest.Blobs); n != 1+newImageBlobs+repodata {
		t.Errorf("incremental bundle carries %d blobs; want 1 package + %d image blobs + %d repodata files", n, newImageBlobs, repodata)
	}
	fullSize, incrSize := fileSize(t, full), fileSize(t, incr)
	if incrSize*2 > fullSize {
		t.Errorf("incremental bundle is %d bytes, the full one %d", incrSize, fullSize)
	}
	// Without its base it is refused.
	if out, err := newTarget(t).importBundle(incr); err == nil || !strings.Contains(out, "import that bundle first") {
		t.Errorf("incremental import without its base: %v\n%s", err, out)
	}

	// The fresh instance: the full bundle, then the incremental on top,
	// then served with no upstream anywhere.
	fresh := newTarget(t)
	for _, p := range []string{full, incr} {
		if out, err := fresh.importBundle(p); err != nil {
			t.Fatalf("import %s: %v\n%s", filepath.Base(p), err, out)
		}
	}
	u.srv.Close()
	k8s.srv.Close()
	in := start(t, fresh.dir, fresh.body)
	mirrorURL := in.status().listener("mirror")
	d := newDNFRoot(t)
	d.useRepo(mirrorURL, "up")
	if got := d.packages("up"); !slices.Equal(got, []string{"alpha", "bravo", "charlie", "delta"}) {
		t.Errorf("dnf repoquery on the imported repo: %v", got)
	}
	for _, rel := range []string{"README.txt", "k8s/v1.30/kubeadm"} {
		code, body, _ := mirrorGet(t, mirrorURL+"/files/"+rel, nil)
		if code != http.StatusOK || !bytes.Equal(body, mustRead(t, filepath.Join(b.files, filepath.FromSlash(rel)))) {
			t.Errorf("GET /files/%s: %d, %d bytes; want the bastion's file byte for byte", rel, code, len(body))
		}
	}
	host := checkImageDigests(t, in, fresh.dir, want)
	ns := startedNSEnv(t, in, fresh.dir, host)
	if got, err := ns.pull(t, "registry.k8s.io", "lab/app:v1"); err != nil || got != want["registry.k8s.io/lab/app:v1"] {
		t.Errorf("ns=registry.k8s.io pull of lab/app:v1 with no upstream: %s, %v", got, err)
	}
}

// startedNSEnv is an nsEnv for a running instance's registry.
func startedNSEnv(t *testing.T, in *instance, dir, host string) *nsEnv {
	t.Helper()
	e := &nsEnv{in: in, host: host, ca: filepath.Join(dir, "data", "pki", "ca.crt")}
	e.tls = caClient(t, e.ca, "").Transport.(*http.Transport)
	t.Cleanup(e.tls.CloseIdleConnections)
	return e
}

// firstLayer is the compressed bytes of img's first layer, as a registry
// stores them.
func firstLayer(t *testing.T, img v1.Image) []byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestBundleImportKill9: an import killed with -9 while it verifies, run
// again, completes: what it had verified is reused, every file is whole,
// nothing is left in staging.
func TestBundleImportKill9(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	const n = 64
	for i := range n {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(i*31 + j*7 + j>>9)
		}
		writeFile(t, filepath.Join(src, fmt.Sprintf("f%02d.bin", i)), string(b))
	}
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "mirror: { listen: 127.0.0.1:0 }\n")
	out := filepath.Join(dir, "b.tar")
	if o, err := run(t, 60*time.Second, airgapdBin, "bundle", "create", "-q", "--files", src, "--out", out, "--config", cfg); err != nil {
		t.Fatalf("bundle create: %v\n%s", err, o)
	}

	tg := newTarget(t)
	cmd := exec.Command(airgapdBin, "bundle", "import", "-q", out, "--config", tg.config)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	staging := filepath.Join(tg.dir, "data", "bundle", "staging")
	killed := false
	deadline := time.Now().Add(30 * time.Second)
wait:
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Logf("the import finished (%v) before it could be killed; checking a second run instead", err)
			break wait
		default:
		}
		if staged, _ := filepath.Glob(filepath.Join(staging, "*", "blobs", "sha256", "*")); len(staged) >= 3 {
			cmd.Process.Kill()
			<-exited
			killed = true
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if killed {
		if p := tg.published(); len(p) > 0 {
			t.Errorf("an import killed while verifying published: %v", p)
		}
	}
	o, err := tg.importBundle(out)
	if err != nil {
		t.Fatalf("import after kill -9: %v\n%s", err, o)
	}
	if killed && strings.Contains(o, " 0 reused") {
		t.Errorf("the second import reused nothing the first had verified:\n%s", o)
	}
	for i := range n {
		rel := fmt.Sprintf("f%02d.bin", i)
		if got, want := mustRead(t, filepath.Join(tg.files, rel)), mustRead(t, filepath.Join(src, rel)); !bytes.Equal(got, want) {
			t.Errorf("%s differs after the resumed import", rel)
		}
	}
	if es, _ := os.ReadDir(staging); len(es) != 0 {
		t.Errorf("staging left behind: %d entries", len(es))
	}
}

// TestBundleCreateSync: a repo never synced is refused with a hint, and
// --sync syncs it first; a later --sync carries what the upstream added
// since.
func TestBundleCreateSync(t *testing.T) {
	need(t, "createrepo_c")
	u := newRPMUpstream(t)
	u.add("alpha", 16<<10)
	u.index()
	b := newBastion(t, u, newStandIn(t))

	out := filepath.Join(b.out, "first.tar")
	if o, err := b.airgapd("bundle", "create", "-q", "--repo", "up", "--out", out); err == nil || !strings.Contains(o, "nothing published") || !strings.Contains(o, "--sync") {
		t.Fatalf("bundle create of a repo never synced: %v; want a refusal naming --sync\n%s", err, o)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a refused create left %s", out)
	}
	if o, err := b.airgapd("bundle", "create", "-q", "--sync", "--repo", "up", "--out", out); err != nil {
		t.Fatalf("bundle create --sync: %v\n%s", err, o)
	}
	if d := inspect(t, out).repoFile("Packages/alpha-1.0-1.noarch.rpm"); d == "" {
		t.Errorf("the --sync bundle lacks alpha")
	}

	u.add("bravo", 16<<10)
	u.index()
	second := filepath.Join(b.out, "second.tar")
	if o, err := b.airgapd("bundle", "create", "-q", "--sync", "--repo", "up", "--out", second); err != nil {
		t.Fatalf("second bundle create --sync: %v\n%s", err, o)
	}
	ib := inspect(t, second)
	for _, p := range []string{"Packages/alpha-1.0-1.noarch.rpm", "Packages/bravo-1.0-1.noarch.rpm"} {
		if ib.repoFile(p) == "" {
			t.Errorf("the second --sync bundle lacks %s", p)
		}
	}
}
