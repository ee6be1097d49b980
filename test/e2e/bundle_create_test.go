package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// imageBastion is an internet side that bundles images only: a config
// whose registry.mirrors says the stand-in plays registry.k8s.io.
func imageBastion(t *testing.T, k8s *standIn) *bastion {
	t.Helper()
	dir := t.TempDir()
	return &bastion{t: t, out: filepath.Join(dir, "out"), config: writeConfig(t, dir, fmt.Sprintf(`
registry:
  listen: 127.0.0.1:0
  tls: off
  mirrors: [{name: registry.k8s.io, url: %q}]
`, k8s.srv.URL))}
}

// createImages writes bundle name of the images with the extra flags.
func (b *bastion) createImages(name string, images []string, extra ...string) string {
	b.t.Helper()
	out := filepath.Join(b.out, name)
	args := []string{"bundle", "create", "-q", "--out", out}
	for _, im := range images {
		args = append(args, "--image", im)
	}
	if o, err := b.airgapd(append(args, extra...)...); err != nil {
		b.t.Fatalf("bundle create %s: %v\n%s", name, err, o)
	}
	return out
}

// served starts the target offline and returns its registry host, a
// skopeo runner that trusts its CA, and a transport for go-containerregistry.
func (tg *target) served(t *testing.T) (host string, skopeo func(args ...string) (string, error), ns *nsEnv) {
	t.Helper()
	in := start(t, tg.dir, tg.body)
	host, _, skopeo = anonSkopeo(t, in, tg.dir)
	return host, skopeo, startedNSEnv(t, in, tg.dir, host)
}

// anonSkopeo is skopeo as a node uses it against in's registry: anonymous,
// trusting only the instance's CA, which it writes to certDir under dir.
// Callers pass --cert-dir themselves: inspect and copy spell it differently.
func anonSkopeo(t *testing.T, in *instance, dir string) (host, certDir string, skopeo func(args ...string) (string, error)) {
	t.Helper()
	host = strings.TrimPrefix(in.status().listener("registry"), "https://")
	certDir = filepath.Join(dir, "certs")
	os.MkdirAll(certDir, 0o755)
	writeFile(t, filepath.Join(certDir, "ca.crt"), string(mustRead(t, filepath.Join(dir, "data", "pki", "ca.crt"))))
	e := &regEnv{anonDir: filepath.Join(dir, "anon")}
	os.MkdirAll(e.anonDir, 0o755)
	writeFile(t, filepath.Join(e.anonDir, "config.json"), `{"auths": {}}`)
	return host, certDir, func(args ...string) (string, error) { return e.skopeo(t, args...) }
}

// checkImageDigests has skopeo read every ref of want (ref → manifest
// digest) from in's registry and compares the digests; it returns the
// registry's host:port.
func checkImageDigests(t *testing.T, in *instance, dir string, want map[string]string) string {
	t.Helper()
	host, certDir, skopeo := anonSkopeo(t, in, dir)
	for ref, dg := range want {
		out, err := skopeo("inspect", "--raw", "--cert-dir", certDir, "docker://"+host+"/"+ref)
		if err != nil || sha256Of(out) != dg {
			t.Errorf("skopeo inspect --raw %s: %v; digest of what it printed is not %s\n%s", ref, err, dg, out)
		}
	}
	return host
}

func sha256Of(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestBundleCreatePlatformZstd: --platform linux/arm64 carries a two-platform
// index byte for byte with only arm64's manifest, config and layer, in a
// zstd-compressed bundle split in parts. The zstd CLI reads the joined parts
// as a tar; import into a running instance stores the index unchanged,
// garbage collection keeps it, skopeo pulls arm64 with no upstream, and
// amd64 answers 404.
func TestBundleCreatePlatformZstd(t *testing.T) {
	need(t, "skopeo", "zstd", "tar")
	k8s := newStandIn(t)
	amd, arm := ociImage(t, nil, 200<<10), ociImage(t, nil, 120<<10)
	multi := pushIndex(t, k8s, "lab/multi:v1", amd, arm)
	b := imageBastion(t, k8s)
	out := b.createImages("arm.tar.zst", []string{"registry.k8s.io/lab/multi:v1"},
		"--platform", "linux/arm64", "--compress", "zstd", "--split-size", "32K")

	if o, err := b.airgapd("bundle", "create", "-q", "--out", filepath.Join(b.out, "none.tar"), "--image", "registry.k8s.io/lab/multi:v1", "--platform", "linux/s390x"); err == nil ||
		!strings.Contains(o, "linux/s390x") || !strings.Contains(o, "linux/amd64, linux/arm64") {
		t.Errorf("create with a platform the index lacks: %v\n%s; want a refusal naming what it offers", err, o)
	}

	ib := inspect(t, out+".part001")
	if len(ib.Manifest.Images) != 1 {
		t.Fatalf("bundle images: %+v", ib.Manifest.Images)
	}
	im := ib.Manifest.Images[0]
	var want []string
	want = append(want, indexDigest(t, multi), imageDigest(t, arm))
	want = append(want, blobDigests(t, arm)...)
	if im.Digest != indexDigest(t, multi) || !slices.Equal(im.Blobs, want) {
		t.Errorf("the filtered index lists %s with blobs %v; want %s with %v (the index, arm64's manifest, config, layer)", im.Digest, im.Blobs, indexDigest(t, multi), want)
	}
	for _, d := range append([]string{imageDigest(t, amd)}, blobDigests(t, amd)...) {
		if ib.carries(d) {
			t.Errorf("the bundle carries amd64's %s", d)
		}
	}
	if ib.Manifest.Split == nil || ib.Manifest.Split.Parts < 3 || len(ib.Parts) != ib.Manifest.Split.Parts {
		t.Fatalf("split: %d parts, manifest %+v", len(ib.Parts), ib.Manifest.Split)
	}
	if o, _ := run(t, 30*time.Second, airgapdBin, "bundle", "inspect", out+".part001"); !strings.Contains(o, "zstd-compressed") || !strings.Contains(o, "platforms linux/arm64") {
		t.Errorf("bundle inspect:\n%s", o)
	}

	// What someone without airgapd sees: cat, zstd -d, tar -t.
	joined := filepath.Join(t.TempDir(), "joined.tar.zst")
	sh := fmt.Sprintf("cat %s > %s && zstd -q -d -c %s | tar -tf -", strings.Join(ib.Parts, " "), joined, joined)
	listing, err := run(t, 30*time.Second, "sh", "-c", sh)
	if err != nil {
		t.Fatalf("zstd -d | tar -t: %v\n%s", err, listing)
	}
	names := strings.Fields(listing)
	if len(names) != 1+len(ib.Manifest.Blobs) || names[0] != "airgapd-bundle.json" {
		t.Errorf("zstd -d | tar -t lists %v; want airgapd-bundle.json and %d blobs", names, len(ib.Manifest.Blobs))
	}

	// Into a running instance (through its control socket), so the
	// registry serving pulls is the one that stored the index.
	k8s.srv.Close()
	tg := newTarget(t)
	host, skopeo, _ := tg.served(t)
	if o, err := tg.importBundle(out + ".part001"); err != nil {
		t.Fatalf("import: %v\n%s", err, o)
	}
	// Garbage collection must keep what a partial index holds.
	if o, err := run(t, 60*time.Second, airgapdBin, "registry", "gc", "--config", tg.config); err != nil {
		t.Fatalf("registry gc after the import: %v\n%s", err, o)
	}
	certDir := filepath.Join(tg.dir, "certs")
	ref := "docker://" + host + "/registry.k8s.io/lab/multi:v1"
	if o, err := skopeo("inspect", "--raw", "--cert-dir", certDir, ref); err != nil || sha256Of(o) != indexDigest(t, multi) {
		t.Errorf("skopeo inspect --raw of the index: %v, digest %s; want %s\n%s", err, sha256Of(o), indexDigest(t, multi), o)
	}
	for _, c := range []struct {
		arch string
		ok   bool
		img  v1.Image
	}{{"arm64", true, arm}, {"amd64", false, amd}} {
		dst := filepath.Join(t.TempDir(), c.arch)
		o, err := skopeo("--override-os", "linux", "--override-arch", c.arch, "copy", "--src-cert-dir", certDir, ref, "oci:"+dst+":v1")
		if c.ok != (err == nil) {
			t.Errorf("skopeo copy --override-arch %s: %v (want success %v)\n%s", c.arch, err, c.ok, o)
			continue
		}
		if !c.ok {
			if !strings.Contains(strings.ToLower(o), "manifest unknown") && !strings.Contains(o, "404") {
				t.Errorf("skopeo copy of the platform left out: %s; want manifest unknown (404)", o)
			}
			continue
		}
		if idx := string(mustRead(t, filepath.Join(dst, "index.json"))); !strings.Contains(idx, imageDigest(t, c.img)) {
			t.Errorf("skopeo copy --override-arch %s wrote %s; want manifest %s", c.arch, idx, imageDigest(t, c.img))
		}
	}
}

// TestBundleCreateSignatures: a cosign-style signature tag and an OCI
// referrer (an artifact whose subject is the image) in the upstream travel
// with the image; after import the offline registry answers the .sig tag
// and the referrers lookup with the same digests.
func TestBundleCreateSignatures(t *testing.T) {
	need(t, "skopeo")
	k8s := newStandIn(t)
	img := ociImage(t, nil, 64<<10)
	k8s.push(t, "lab/signed:v1", img)
	imgDigest := imageDigest(t, img)
	sigTag := "sha256-" + strings.TrimPrefix(imgDigest, "sha256:") + ".sig"
	sig := ociImage(t, nil, 1<<10)
	k8s.push(t, "lab/signed:"+sigTag, sig)

	mf, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	sbomLayer, err := random.Layer(2<<10, "application/vnd.example.sbom+json")
	if err != nil {
		t.Fatal(err)
	}
	art, err := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(ociImage(t, nil, 0), types.OCIManifestSchema1), "application/vnd.example.sbom.config+json"), sbomLayer)
	if err != nil {
		t.Fatal(err)
	}
	imgSize, err := img.Size()
	if err != nil {
		t.Fatal(err)
	}
	art = mutate.Subject(art, v1.Descriptor{MediaType: mf.MediaType, Digest: hashOf(t, imgDigest), Size: imgSize}).(v1.Image)
	artDigest := imageDigest(t, art)
	artRef, err := name.NewDigest(k8s.host+"/lab/signed@"+artDigest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(artRef, art, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: "admin", Password: "s3cret"}))); err != nil {
		t.Fatalf("push the referrer: %v", err)
	}

	b := imageBastion(t, k8s)
	out := b.createImages("signed.tar", []string{"registry.k8s.io/lab/signed:v1"})
	ib := inspect(t, out)
	got := map[string]string{}
	for _, im := range ib.Manifest.Images {
		got[im.Name] = im.Digest
	}
	want := map[string]string{
		"registry.k8s.io/lab/signed:v1":           imgDigest,
		"registry.k8s.io/lab/signed:" + sigTag:    imageDigest(t, sig),
		"registry.k8s.io/lab/signed@" + artDigest: artDigest,
	}
	for n, d := range want {
		if got[n] != d {
			t.Errorf("the bundle lists %s as %q; want %s (all: %v)", n, got[n], d, got)
		}
	}

	tg := newTarget(t)
	if o, err := tg.importBundle(out); err != nil {
		t.Fatalf("import: %v\n%s", err, o)
	}
	k8s.srv.Close()
	host, skopeo, ns := tg.served(t)
	certDir := filepath.Join(tg.dir, "certs")
	o, err := skopeo("inspect", "--raw", "--cert-dir", certDir, "docker://"+host+"/registry.k8s.io/lab/signed:"+sigTag)
	if err != nil || sha256Of(o) != imageDigest(t, sig) {
		t.Errorf("skopeo inspect --raw of the .sig tag: %v, digest %s; want %s\n%s", err, sha256Of(o), imageDigest(t, sig), o)
	}
	subject, err := name.NewDigest(host + "/registry.k8s.io/lab/signed@" + imgDigest)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := remote.Referrers(subject, remote.WithTransport(ns.tls))
	if err != nil {
		t.Fatalf("referrers of %s: %v", imgDigest, err)
	}
	idx, err := refs.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, d := range idx.Manifests {
		found = append(found, d.Digest.String())
	}
	if !slices.Equal(found, []string{artDigest}) {
		t.Errorf("referrers of the image on the offline registry: %v; want [%s]", found, artDigest)
	}
	if o, err := skopeo("inspect", "--raw", "--cert-dir", certDir, "docker://"+host+"/registry.k8s.io/lab/signed@"+artDigest); err != nil || sha256Of(o) != artDigest {
		t.Errorf("skopeo inspect --raw of the referrer: %v\n%s", err, o)
	}
}

// TestBundleCreateSinceLayers: after a base bundle with image A, image B
// (another repository, A's base layer plus one of its own) and one RPM
// are added; the --since bundle carries the RPM, the changed repodata and
// B's own layer, config and manifest, not the shared layer, and imports on
// top of the base: B pulls whole from the offline registry.
func TestBundleCreateSinceLayers(t *testing.T) {
	need(t, "createrepo_c", "skopeo")
	u := newRPMUpstream(t)
	u.add("alpha", 16<<10)
	u.index()
	k8s := newStandIn(t)
	shared, err := random.Layer(400<<10, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	a := ociImage(t, shared, 32<<10)
	k8s.push(t, "lab/a:v1", a)
	b := newBastion(t, u, k8s)
	b.sync()
	base := b.create("base.tar", []string{"registry.k8s.io/lab/a:v1"})

	u.add("bravo", 16<<10)
	u.index()
	b.sync()
	imgB := ociImage(t, shared, 24<<10)
	k8s.push(t, "lab/b:v1", imgB)
	incr := b.create("incr.tar", []string{"registry.k8s.io/lab/a:v1", "registry.k8s.io/lab/b:v1"}, "--since", base+".manifest.json")
	ic := inspect(t, incr)

	sharedHash, err := shared.Digest()
	if err != nil {
		t.Fatal(err)
	}
	sharedDigest := sharedHash.String()
	bBlobs := blobDigests(t, imgB) // config, shared layer, own layer
	ownLayer := bBlobs[len(bBlobs)-1]
	wantCarried := []string{imageDigest(t, imgB), bBlobs[0], ownLayer}
	if d := ic.repoFile("Packages/bravo-1.0-1.noarch.rpm"); d == "" {
		t.Fatal("the incremental bundle does not list bravo")
	} else {
		wantCarried = append(wantCarried, d)
	}
	for _, r := range ic.Manifest.Repos {
		for _, f := range r.Files {
			if strings.HasPrefix(f.Path, "repodata/") && ic.carries(f.Digest) {
				wantCarried = append(wantCarried, f.Digest)
			}
		}
	}
	var carried []string
	var carriedBytes int64
	for _, bl := range ic.Manifest.Blobs {
		carried = append(carried, bl.Digest)
		carriedBytes += bl.Size
	}
	slices.Sort(carried)
	slices.Sort(wantCarried)
	if !slices.Equal(slices.Compact(carried), slices.Compact(wantCarried)) {
		t.Errorf("the incremental bundle carries %v; want %v (bravo, the new repodata, B's manifest, config and own layer)", carried, wantCarried)
	}
	for _, im := range ic.Manifest.Images {
		if im.Name == "registry.k8s.io/lab/b:v1" && (im.InBase || !slices.Contains(im.Blobs, sharedDigest)) {
			t.Errorf("image B in the incremental manifest: %+v; want it listed with the shared layer %s", im, sharedDigest)
		}
	}
	if ic.carries(sharedDigest) {
		t.Errorf("the incremental bundle carries the shared layer %s", sharedDigest)
	}
	if size := fileSize(t, incr); size > carriedBytes+64<<10 || size > 300<<10 {
		t.Errorf("the incremental bundle is %d bytes for %d bytes of blobs; the shared layer alone is 400 KiB", size, carriedBytes)
	}

	tg := newTarget(t)
	if o, err := tg.importBundle(incr); err == nil || !strings.Contains(o, "import that bundle first") {
		t.Errorf("the incremental bundle without its base: %v\n%s", err, o)
	}
	for _, p := range []string{base, incr} {
		if o, err := tg.importBundle(p); err != nil {
			t.Fatalf("import %s: %v\n%s", filepath.Base(p), err, o)
		}
	}
	u.srv.Close()
	k8s.srv.Close()
	host, skopeo, ns := tg.served(t)
	o, err := skopeo("inspect", "--raw", "--cert-dir", filepath.Join(tg.dir, "certs"), "docker://"+host+"/registry.k8s.io/lab/b:v1")
	if err != nil || sha256Of(o) != imageDigest(t, imgB) {
		t.Errorf("skopeo inspect --raw of B: %v, digest %s; want %s\n%s", err, sha256Of(o), imageDigest(t, imgB), o)
	}
	if got, err := ns.pull(t, "registry.k8s.io", "lab/b:v1"); err != nil || got != imageDigest(t, imgB) {
		t.Errorf("ns=registry.k8s.io pull of lab/b:v1 (every blob read): %s, %v", got, err)
	}
	if _, err := exec.LookPath("dnf"); err == nil {
		d := newDNFRoot(t)
		d.useRepo(ns.in.status().listener("mirror"), "up")
		if got := d.packages("up"); !slices.Equal(got, []string{"alpha", "bravo"}) {
			t.Errorf("dnf repoquery on the imported repo: %v", got)
		}
	}
}

func hashOf(t *testing.T, d string) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(d)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestBundleCreateFromRegistry: a bastion whose registry cached an image
// through an ns= pull bundles it with --from-registry after its upstream
// is gone (without the flag, create asks the upstream and fails); the image
// imports elsewhere with its digest.
func TestBundleCreateFromRegistry(t *testing.T) {
	need(t, "skopeo")
	k8s := newStandIn(t)
	app := ociImage(t, nil, 64<<10)
	k8s.push(t, "lab/app:v1", app)

	bastion := newTarget(t)
	bastion.body += fmt.Sprintf("  mirrors: [{name: registry.k8s.io, url: %q}]\n", k8s.srv.URL)
	bastion.config = writeConfig(t, bastion.dir, bastion.body)
	in := start(t, bastion.dir, bastion.body)
	host := strings.TrimPrefix(in.status().listener("registry"), "https://")
	ns := startedNSEnv(t, in, bastion.dir, host)
	if got, err := ns.pull(t, "registry.k8s.io", "lab/app:v1"); err != nil || got != imageDigest(t, app) {
		t.Fatalf("ns= pull through the bastion: %s, %v", got, err)
	}
	k8s.srv.Close()

	out := filepath.Join(t.TempDir(), "cached.tar")
	create := func(extra ...string) (string, error) {
		args := append([]string{"bundle", "create", "-q", "--config", bastion.config, "--image", "registry.k8s.io/lab/app:v1", "--out", out}, extra...)
		return run(t, 60*time.Second, airgapdBin, args...)
	}
	if o, err := create(); err == nil {
		t.Fatalf("bundle create from a stopped upstream succeeded:\n%s", o)
	}
	if o, err := create("--from-registry"); err != nil {
		t.Fatalf("bundle create --from-registry: %v\n%s", err, o)
	}
	ib := inspect(t, out)
	if len(ib.Manifest.Images) != 1 || ib.Manifest.Images[0].Name != "registry.k8s.io/lab/app:v1" || ib.Manifest.Images[0].Digest != imageDigest(t, app) {
		t.Fatalf("bundle images: %+v; want registry.k8s.io/lab/app:v1 %s", ib.Manifest.Images, imageDigest(t, app))
	}

	tg := newTarget(t)
	if o, err := tg.importBundle(out); err != nil {
		t.Fatalf("import: %v\n%s", err, o)
	}
	checkImageDigests(t, start(t, tg.dir, tg.body), tg.dir, map[string]string{"registry.k8s.io/lab/app:v1": imageDigest(t, app)})
}
