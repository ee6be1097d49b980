package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/dirhash"
)

// addModule puts one more module version in the stand-in GOPROXY and
// gives the checksum database its hashes (the test database reads them
// when asked).
func (u *goUpstream) addModule(t *testing.T, m goModule) {
	t.Helper()
	zip := u.write(t, m)
	h1, err := dirhash.HashZip(zip, dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	gm := []byte(m.files["go.mod"])
	mh, _ := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gm)), nil })
	u.hashes[m.path+" "+m.version] = h1
	u.hashes[m.path+" "+m.version+"/go.mod"] = mh
}

// langConfig is a bastion's pypi: and goproxy: sections.
func langConfig(py *pypiStandIn, gu *goUpstream, projects, modules []string) string {
	return fmt.Sprintf("mirror: { listen: \"127.0.0.1:0\" }\npypi:\n  upstreams: [{ name: stand-in, url: \"%s/simple/\" }]\n  packages: [%s]\ngoproxy:\n  upstream: %s\n  modules: [%s]\n  sumdb: { url: %q, key: %q }\n",
		py.srv.URL, strings.Join(projects, ", "), gu.proxy.URL, strings.Join(modules, ", "), gu.sumdb.URL, gu.key)
}

// TestBundleLanguageSinceSplit: the PyPI and Go proxy trees in a full
// bundle, then a project and a module added upstream and synced: the
// --since bundle carries their files and the changed indexes, nothing the
// full one carried; a fresh instance refuses it alone, imports full then
// incremental, and pip installs the new project, go downloads (and
// verifies through the proxied checksum database) the new module. A
// bundle split in small parts imports whole on another fresh instance.
func TestBundleLanguageSinceSplit(t *testing.T) {
	need(t, "go")
	py := debianPython(t)
	dir := t.TempDir()
	env := pyEnv(dir)
	wheels := filepath.Join(dir, "wheels")
	srcs := []string{project(t, dir, "alpha", "alpha", "1.0"), project(t, dir, "newpkg", "newpkg", "1.0")}
	if out, err := runPy(t, env, dir, py, append([]string{"-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels}, srcs...)...); err != nil {
		t.Fatalf("pip wheel: %v\n%s", err, out)
	}
	readWheel := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(wheels, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	alphaWhl, newWhl := "alpha-1.0-py3-none-any.whl", "newpkg-1.0-py3-none-any.whl"
	pyUp := newPyPIStandIn(t)
	pyUp.put("alpha", alphaWhl, readWheel(alphaWhl))
	gu := newGoUpstream(t)
	modules := []string{"lab.test/Greet@v1.0.0", "lab.test/words@v1.1.0"}

	// The bastion: no server, each command on data_dir.
	bdir := t.TempDir()
	cfg := writeConfig(t, bdir, langConfig(pyUp, gu, []string{"alpha"}, modules))
	airgapd := func(args ...string) string {
		t.Helper()
		out, err := run(t, 2*time.Minute, airgapdBin, append(args, "--config", cfg)...)
		if err != nil {
			t.Fatalf("airgapd %v: %v\n%s", args, err, out)
		}
		return out
	}
	syncBoth := func() {
		t.Helper()
		airgapd("pypi", "sync")
		airgapd("goproxy", "sync")
	}
	out := t.TempDir()
	syncBoth()
	full := filepath.Join(out, "full.tar")
	airgapd("bundle", "create", "-q", "--pypi", "--goproxy", "--out", full)

	// Upstream grows by a project and a module; the lists name them.
	pyUp.put("newpkg", newWhl, readWheel(newWhl))
	gu.addModule(t, goModule{"lab.test/extra", "v1.0.0", map[string]string{
		"go.mod": "module lab.test/extra\n\ngo 1.21\n",
		// Random, so that the zip stays big and the split bundle has parts.
		"extra.go": "package extra\n\nconst Extra = \"" + rand.Text() + strings.Repeat(rand.Text(), 1000) + "\"\n",
	}})
	cfg = writeConfig(t, bdir, langConfig(pyUp, gu, []string{"alpha", "newpkg"}, append(modules, "lab.test/extra@v1.0.0")))
	syncBoth()
	incr := filepath.Join(out, "incr.tar")
	airgapd("bundle", "create", "-q", "--pypi", "--goproxy", "--since", full+".manifest.json", "--out", incr)
	split := filepath.Join(out, "split.tar")
	airgapd("bundle", "create", "-q", "--pypi", "--goproxy", "--split-size", "12K", "--out", split)

	// The incremental bundle carries the new files and nothing the full
	// one did.
	fb, ib, sb := inspect(t, full), inspect(t, incr), inspect(t, split+".part001")
	if ib.Manifest.Base != fb.ID {
		t.Errorf("incremental bundle's base %q, want the full bundle %q", ib.Manifest.Base, fb.ID)
	}
	for _, b := range ib.Manifest.Blobs {
		if fb.carries(b.Digest) {
			t.Errorf("the incremental bundle carries %s again", b.Digest)
		}
	}
	newFiles := map[string]string{"pypi index": "files/newpkg/" + newWhl, "goproxy modules": "lab.test/extra/@v/v1.0.0.zip"}
	oldFiles := map[string]string{"pypi index": "files/alpha/" + alphaWhl, "goproxy modules": "lab.test/words/@v/v1.1.0.zip"}
	for _, r := range ib.Manifest.Repos {
		for _, f := range r.Files {
			key := r.Format + " " + r.Name
			if f.Path == newFiles[key] && !ib.carries(f.Digest) {
				t.Errorf("the incremental bundle lists %s %s but does not carry it", key, f.Path)
			}
			if f.Path == oldFiles[key] && ib.carries(f.Digest) {
				t.Errorf("the incremental bundle carries %s %s, which the full one had", key, f.Path)
			}
		}
	}
	if len(ib.Manifest.Blobs) == 0 || len(ib.Manifest.Blobs) >= len(sb.Manifest.Blobs) {
		t.Errorf("incremental bundle: %d blobs, a whole one %d", len(ib.Manifest.Blobs), len(sb.Manifest.Blobs))
	}
	if sb.Manifest.Split == nil || len(sb.Parts) < 2 {
		t.Fatalf("split bundle: %d parts, manifest %+v", len(sb.Parts), sb.Manifest.Split)
	}
	t.Logf("full %d blobs, incremental %d, split whole %d in %d parts", len(fb.Manifest.Blobs), len(ib.Manifest.Blobs), len(sb.Manifest.Blobs), len(sb.Parts))

	// The upstreams go; fresh instances import.
	pyUp.srv.Close()
	gu.proxy.Close()
	gu.sumdb.Close()
	imp := func(in *instance, path string) (string, error) {
		return run(t, 2*time.Minute, airgapdBin, "bundle", "import", "--config", in.config, "-q", path)
	}
	admin := start(t, t.TempDir(), langConfig(pyUp, gu, []string{"alpha", "newpkg"}, modules))
	if out, err := imp(admin, incr); err == nil || !strings.Contains(out, "import that bundle first") {
		t.Fatalf("import of the incremental bundle alone: %v\n%s", err, out)
	}
	for _, b := range []string{full, incr} {
		if out, err := imp(admin, b); err != nil {
			t.Fatalf("import %s: %v\n%s", filepath.Base(b), err, out)
		}
	}
	base := admin.status().listener("mirror")
	venv := filepath.Join(dir, "venv")
	if out, err := runPy(t, env, dir, py, "-m", "venv", "--without-pip", "--system-site-packages", venv); err != nil {
		t.Fatalf("venv: %v\n%s", err, out)
	}
	vpy := filepath.Join(venv, "bin", "python")
	if out, err := runPy(t, env, dir, vpy, "-m", "pip", "install", "--index-url", base+"/pypi/simple/", "newpkg==1.0", "alpha==1.0"); err != nil {
		t.Fatalf("pip install from full + incremental: %v\n%s", err, out)
	}
	if out, err := runPy(t, env, dir, vpy, "-c", "import alpha, newpkg; print(alpha.VERSION, newpkg.VERSION)"); err != nil || strings.TrimSpace(out) != "1.0 1.0" {
		t.Fatalf("installed: %v %q", err, out)
	}
	name, _, _ := strings.Cut(gu.key, "+")
	gp := base + "/goproxy"
	mod := t.TempDir()
	writeFile(t, filepath.Join(mod, "go.mod"), "module lab.test/app\n\ngo 1.21\n")
	if out, err := goRun(t, mod, goEnv(t, t.TempDir(), gp, gu.key+" "+gp+"/sumdb/"+name), "mod", "download", "-x", "lab.test/extra@v1.0.0", "lab.test/words@v1.1.0"); err != nil {
		t.Fatalf("go mod download through full + incremental: %v\n%s", err, out)
	}

	// The split bundle, from its first part, on another fresh instance.
	admin2 := start(t, t.TempDir(), langConfig(pyUp, gu, []string{"alpha"}, modules))
	if out, err := imp(admin2, split+".part001"); err != nil {
		t.Fatalf("import of the split bundle: %v\n%s", err, out)
	}
	base2 := admin2.status().listener("mirror")
	for _, p := range []string{"/pypi/simple/newpkg/", "/goproxy/lab.test/extra/@v/v1.0.0.zip", "/goproxy/lab.test/!greet/@v/list"} {
		resp, err := http.Get(base2 + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("after the split import GET %s: %s", p, resp.Status)
		}
	}
}
