package e2e

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// chartsInstance is an airgapd with a plain-HTTP registry (users admin /
// s3cret, anonymous pulls from loopback) and the chart service, extra
// being more of the charts: section and more sections.
func chartsInstance(t *testing.T, charts, extra string) (in *instance, host, mirror string) {
	t.Helper()
	section := "charts: {}"
	if charts != "" {
		section = "charts:" + charts // block keys, indented two spaces
	}
	in = start(t, t.TempDir(), `
mirror: { listen: "127.0.0.1:0" }
registry:
  listen: "127.0.0.1:0"
  tls: off
  users: [{name: admin, password_hash: "`+registryTestHash+`"}]
  pull_from: [127.0.0.1/32]
`+extra+`
`+section+`
`)
	st := in.status()
	reg := st.listener("registry")
	return in, reg[strings.Index(reg, "://")+3:], st.listener("mirror") + "/charts"
}

// stop ends an instance by SIGTERM and waits for it.
func (in *instance) stop() {
	in.t.Helper()
	in.signal(syscall.SIGTERM)
	in.waitExit(30 * time.Second)
}

var helmDigest = regexp.MustCompile(`Digest: (sha256:[0-9a-f]{64})`)

// helmPush pushes dir/NAME-VERSION.tgz to host's charts/ and returns the
// manifest digest helm reports.
func helmPush(t *testing.T, h *helmEnv, dir, host, tgz string) string {
	t.Helper()
	h.run(dir, "registry", "login", host, "-u", "admin", "-p", "s3cret", "--insecure")
	out := h.run(dir, "push", tgz, "oci://"+host+"/charts", "--plain-http")
	m := helmDigest.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("helm push %s said:\n%s", tgz, out)
	}
	return m[1]
}

// helmPullOCI pulls oci://host/charts/NAME --version V into a new folder
// and returns the .tgz's bytes and the digest helm reports.
func helmPullOCI(t *testing.T, h *helmEnv, host, chart, version string) ([]byte, string) {
	t.Helper()
	dir := t.TempDir()
	out := h.run(dir, "pull", "oci://"+host+"/charts/"+chart, "--version", version, "--plain-http", "-d", dir)
	m := helmDigest.FindStringSubmatch(out)
	b, err := os.ReadFile(filepath.Join(dir, chart+"-"+version+".tgz"))
	if err != nil || m == nil {
		t.Fatalf("helm pull oci:// %s %s: %v\n%s", chart, version, err, out)
	}
	return b, m[1]
}

// TestChartsBundle: charts helm pushed to instance A travel in a bundle
// (--charts, and --chart NAME@RANGE picking versions) to a fresh instance
// B; with A stopped, helm repo add + pull from B's /charts and helm pull
// oci:// from B's registry give the same .tgz, under the same digest.
func TestChartsBundle(t *testing.T) {
	h := newHelm(t)
	a, aHost, _ := chartsInstance(t, "", "")
	work := t.TempDir()
	digests := map[string]string{}
	for _, c := range [][2]string{{"demo", "0.1.0"}, {"demo", "0.2.0"}, {"other", "1.0.0"}} {
		writeChart(t, work, c[0], c[1], "1.0", "")
		h.run(work, "package", c[0])
		digests[c[0]+"-"+c[1]] = helmPush(t, h, work, aHost, c[0]+"-"+c[1]+".tgz")
	}
	out := filepath.Join(t.TempDir(), "charts.bundle")
	res, err := run(t, 60*time.Second, airgapdBin, "bundle", "create", "-q", "--charts", "--out", out, "--config", a.config)
	if err != nil || !strings.Contains(res, "3 images") {
		t.Fatalf("bundle create --charts: %v\n%s", err, res)
	}
	picked := filepath.Join(t.TempDir(), "picked.bundle")
	res, err = run(t, 60*time.Second, airgapdBin, "bundle", "create", "-q", "--chart", "demo@<0.2", "--chart", "other", "--out", picked, "--config", a.config)
	if err != nil {
		t.Fatalf("bundle create --chart: %v\n%s", err, res)
	}
	var names []string
	for _, im := range inspect(t, picked).Manifest.Images {
		names = append(names, im.Name+"@"+im.Digest)
	}
	if want := []string{"charts/demo:0.1.0@" + digests["demo-0.1.0"], "charts/other:1.0.0@" + digests["other-1.0.0"]}; strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("--chart demo@<0.2 --chart other carried %v, want %v", names, want)
	}
	if _, err := run(t, 30*time.Second, airgapdBin, "bundle", "create", "-q", "--chart", "nosuch", "--out", picked+"2", "--config", a.config); err == nil {
		t.Error("bundle create --chart nosuch succeeded")
	}
	a.stop()

	b, bHost, bCharts := chartsInstance(t, "", "")
	if res, err := run(t, 90*time.Second, airgapdBin, "bundle", "import", "-q", out, "--config", b.config); err != nil {
		t.Fatalf("bundle import: %v\n%s", err, res)
	}
	h.run(work, "repo", "add", "b", bCharts)
	if s := h.run(work, "search", "repo", "b/", "--versions"); !strings.Contains(s, "b/demo") || !strings.Contains(s, "0.1.0") || !strings.Contains(s, "b/other") {
		t.Errorf("helm search repo on B after import:\n%s", s)
	}
	pulled := t.TempDir()
	h.run(pulled, "pull", "b/demo", "--version", "0.2.0", "-d", pulled)
	orig, _ := os.ReadFile(filepath.Join(work, "demo-0.2.0.tgz"))
	if got, err := os.ReadFile(filepath.Join(pulled, "demo-0.2.0.tgz")); err != nil || string(got) != string(orig) {
		t.Fatalf("helm pull b/demo 0.2.0 differs from the pushed .tgz (%v)", err)
	}
	got, d := helmPullOCI(t, h, bHost, "demo", "0.2.0")
	if string(got) != string(orig) || d != digests["demo-0.2.0"] {
		t.Errorf("helm pull oci://B/charts/demo 0.2.0: digest %s (pushed to A as %s), same bytes %v", d, digests["demo-0.2.0"], string(got) == string(orig))
	}
}

// TestChartsSyncOCI: an upstream OCI registry (another airgapd's, plain
// HTTP, charts helm pushed, an image in it) is synced with a range and
// images: true; with the upstream stopped, helm pull oci:// gives the
// charts under their upstream digests, and the chart's image pulls by
// digest from airgapd.
func TestChartsSyncOCI(t *testing.T) {
	h := newHelm(t)
	up, upHost, _ := chartsInstance(t, "", "")
	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	imgRef, _ := name.NewTag(upHost+"/lab/small:1", name.Insecure)
	if err := remote.Write(imgRef, img, remote.WithAuth(&authn.Basic{Username: "admin", Password: "s3cret"})); err != nil {
		t.Fatalf("push the image to the upstream: %v", err)
	}
	imgDigest, _ := img.Digest()
	work := t.TempDir()
	digests := map[string]string{}
	for _, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
		d := writeChart(t, work, "app", v, "1", "")
		writeFile(t, filepath.Join(d, "values.yaml"), "image:\n  registry: up.lab.internal\n  repository: lab/small\n  tag: \"1\"\n")
		h.run(work, "package", "app")
		digests[v] = helmPush(t, h, work, upHost, "app-"+v+".tgz")
	}

	in, host, mirror := chartsInstance(t, `
  repos:
  - { name: up, url: "oci://`+upHost+`/charts", plain_http: true, charts: ["app@^1.0"], images: true }`, `
  mirrors: [{ name: up.lab.internal, url: "http://`+upHost+`" }]`)
	out, err := run(t, 90*time.Second, airgapdBin, "charts", "sync", "--config", in.config)
	if err != nil || !strings.Contains(out, "up: 2 chart versions, 2 copied into the registry") {
		t.Fatalf("charts sync of the oci:// upstream: %v\n%s", err, out)
	}
	up.stop()

	for _, v := range []string{"1.0.0", "1.1.0"} {
		got, d := helmPullOCI(t, h, host, "app", v)
		orig, _ := os.ReadFile(filepath.Join(work, "app-"+v+".tgz"))
		if string(got) != string(orig) || d != digests[v] {
			t.Errorf("app %s from airgapd: digest %s, upstream's %s; same bytes %v", v, d, digests[v], string(got) == string(orig))
		}
	}
	if _, err := h.try(t.TempDir(), "pull", "oci://"+host+"/charts/app", "--version", "2.0.0", "--plain-http"); err == nil {
		t.Error("app 2.0.0 is outside ^1.0 but was copied")
	}
	code, idx := httpGet(t, nil, mirror+"/index.yaml")
	if code != 200 || !strings.Contains(idx, "app-1.1.0.tgz") {
		t.Errorf("index.yaml (%d) misses app 1.1.0:\n%s", code, idx)
	}
	ref, _ := name.NewDigest(host+"/up.lab.internal/lab/small@"+imgDigest.String(), name.Insecure)
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("the chart's image by digest from airgapd, upstream gone: %v", err)
	}
	layers, _ := got.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err == nil {
			_, err = ioCopyDiscard(rc)
		}
		if err != nil {
			t.Errorf("a layer of the chart's image: %v", err)
		}
	}
}

func ioCopyDiscard(rc io.ReadCloser) (int64, error) {
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}
