package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The formats beside RPM cross the gap in a bundle like the repos: made
// on the instance that synced them (`bundle create --apt/--goproxy`),
// imported through the control socket of a fresh one whose upstreams are
// gone, and used there by the real apt-get and go commands.

// bundleAcross writes a bundle on from with args and imports it into to.
func bundleAcross(t *testing.T, from, to *instance, args ...string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "formats.bundle")
	res, err := run(t, 2*time.Minute, airgapdBin, append([]string{"bundle", "create", "--config", from.config, "--out", out, "-q"}, args...)...)
	if err != nil {
		t.Fatalf("bundle create %v: %v\n%s", args, err, res)
	}
	if res, err = run(t, 2*time.Minute, airgapdBin, "bundle", "import", "--config", to.config, "-q", out); err != nil {
		t.Fatalf("bundle import: %v\n%s", err, res)
	}
}

func TestBundleCarriesAptRepo(t *testing.T) {
	u := newAptUpstream(t)
	u.deb("hello", "2.0", "libgreet (>= 1.0)")
	u.deb("libgreet", "1.0", "")
	u.index()
	bastion := start(t, t.TempDir(), aptConfig(u, ""))
	if out, err := aptSync(t, bastion, "sync", "up"); err != nil {
		t.Fatalf("apt sync: %v\n%s", err, out)
	}
	u.srv.Close()
	admin := start(t, t.TempDir(), aptConfig(u, ""))
	bundleAcross(t, bastion, admin, "--apt", "up")
	box := newAptBox(t)
	box.useSources(admin.status().listener("mirror"), "up")
	if out, err := box.run("update"); err != nil || strings.Contains(out, "W:") {
		t.Fatalf("apt-get update against the imported repo: %v\n%s", err, out)
	}
	if out, err := box.run("install", "--download-only", "-y", "hello"); err != nil {
		t.Fatalf("apt-get install: %v\n%s", err, out)
	}
	if got := strings.Join(box.downloaded(), " "); got != "hello_2.0_amd64.deb libgreet_1.0_amd64.deb" {
		t.Errorf("apt downloaded %q from the imported repo, want hello 2.0 and libgreet", got)
	}
}

func TestBundleCarriesGoModules(t *testing.T) {
	need(t, "go")
	u := newGoUpstream(t)
	name, _, _ := strings.Cut(u.key, "+")
	src := goProject(t)
	if out, err := goRun(t, src, goEnv(t, "", u.proxy.URL, u.key+" "+u.sumdb.URL), "mod", "tidy"); err != nil {
		t.Fatalf("go mod tidy against the upstream: %v\n%s", err, out)
	}
	cfg := goproxyConfig(u.proxy.URL, filepath.Join(src, "go.mod"), u)
	bastion := start(t, t.TempDir(), cfg)
	if out, err := run(t, 2*time.Minute, airgapdBin, "goproxy", "sync", "--config", bastion.config); err != nil {
		t.Fatalf("goproxy sync: %v\n%s", err, out)
	}
	u.proxy.Close()
	u.sumdb.Close()
	admin := start(t, t.TempDir(), cfg)
	bundleAcross(t, bastion, admin, "--goproxy")
	base := admin.status().listener("mirror") + "/goproxy"
	app := goProject(t)
	if out, err := goRun(t, app, goEnv(t, t.TempDir(), base, u.key+" "+base+"/sumdb/"+name), "build", "-o", "app", "."); err != nil {
		t.Fatalf("go build through the imported proxy: %v\n%s", err, out)
	}
	if got, err := exec.Command(filepath.Join(app, "app")).CombinedOutput(); err != nil || !strings.Contains(string(got), "hello from the gap") {
		t.Fatalf("the program: %v: %s", err, got)
	}
}
