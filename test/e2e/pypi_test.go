package e2e

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// debianPython is the python3 whose pip, venv, setuptools and wheel are
// Debian's packages (scripts/install-test-deps.sh); a python3 earlier in
// PATH (pyenv) may lack them.
func debianPython(t *testing.T) string {
	t.Helper()
	need(t, "twine")
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		need(t, "python3")
		py, _ = exec.LookPath("python3")
	}
	if out, err := exec.Command(py, "-c", "import setuptools, wheel, pip, venv").CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s lacks pip, venv, setuptools or wheel (python3-pip, python3-venv, python3-setuptools, python3-wheel): %s", py, out)
		}
		t.Skipf("%s lacks pip, venv, setuptools or wheel: %s", py, out)
	}
	return py
}

// pyEnv keeps pip and twine off any index, config and cache but the test's.
func pyEnv(home string) []string {
	return append(os.Environ(), "HOME="+home, "PIP_CONFIG_FILE=/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK=1",
		"PIP_NO_CACHE_DIR=1", "PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring", "PIP_NO_INPUT=1")
}

func runPy(t *testing.T, env []string, dir, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Dir = env, dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// project writes a tiny setuptools project: module NAME_MOD with VERSION,
// depending on requires.
func project(t *testing.T, dir, name, module, version string, requires ...string) string {
	t.Helper()
	p := filepath.Join(dir, "src", module)
	os.MkdirAll(p, 0o755)
	deps := ""
	for _, r := range requires {
		deps += fmt.Sprintf("%q, ", r)
	}
	writeFile(t, filepath.Join(p, "setup.py"), fmt.Sprintf("from setuptools import setup\nsetup(name=%q, version=%q, py_modules=[%q], install_requires=[%s], python_requires='>=3.7')\n", name, version, module, deps))
	writeFile(t, filepath.Join(p, module+".py"), fmt.Sprintf("VERSION = %q\n", version))
	return p
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// wheelMETADATA is a wheel's dist-info/METADATA, for the stand-in's PEP
// 658 file.
func wheelMETADATA(t *testing.T, whl string) []byte {
	t.Helper()
	z, err := zip.OpenReader(whl)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	for _, f := range z.File {
		if strings.HasSuffix(f.Name, ".dist-info/METADATA") {
			rc, _ := f.Open()
			defer rc.Close()
			b, _ := io.ReadAll(rc)
			return b
		}
	}
	t.Fatalf("%s has no METADATA", whl)
	return nil
}

// TestPyPI: a stand-in upstream simple index of wheels and an sdist the
// test builds (alpha depends on Beta.Lib); sync from a requirements file
// with hashes; pip --require-hashes installs from airgapd with the
// upstream gone; PEP 691 JSON; a damaged upstream file refuses the sync by
// name and publishes nothing; twine uploads a wheel pip then installs,
// with the pip.conf node.sh --dev-tools writes.
func TestPyPI(t *testing.T) {
	py := debianPython(t)
	dir := t.TempDir()
	env := pyEnv(dir)
	wheels, up := filepath.Join(dir, "wheels"), filepath.Join(dir, "upstream")
	srcs := []string{
		project(t, dir, "alpha", "alpha", "1.0", "Beta.Lib==2.0"),
		project(t, dir, "Beta.Lib", "beta_lib", "2.0"),
		project(t, dir, "gamma", "gamma", "3.0"),
		project(t, dir, "delta", "delta", "0.1"),
	}
	// One pip for every wheel: each start of pip costs seconds.
	if out, err := runPy(t, env, dir, py, append([]string{"-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels}, srcs...)...); err != nil {
		t.Fatalf("pip wheel: %v\n%s", err, out)
	}
	if out, err := runPy(t, env, srcs[1], py, "setup.py", "-q", "sdist", "-d", wheels); err != nil {
		t.Fatalf("sdist: %v\n%s", err, out)
	}

	// The stand-in: PEP 503 pages with #sha256 links (and a PEP 658 file
	// for alpha's wheel) over a folder, as a static mirror serves them.
	pages := map[string][]string{}
	entries, _ := os.ReadDir(wheels)
	sums := map[string]string{}
	for _, e := range entries {
		n := e.Name()
		proj := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(strings.SplitN(strings.TrimSuffix(n, ".tar.gz"), "-", 2)[0]))
		if proj == "delta" {
			continue // in-house: uploaded below
		}
		src := filepath.Join(wheels, n)
		os.MkdirAll(filepath.Join(up, "packages"), 0o755)
		b, _ := os.ReadFile(src)
		writeFile(t, filepath.Join(up, "packages", n), string(b))
		sums[n] = fileSHA(t, src)
		link := fmt.Sprintf(`<a href="../../packages/%s#sha256=%s" data-requires-python="&gt;=3.7"`, n, sums[n])
		if proj == "alpha" {
			meta := wheelMETADATA(t, src)
			writeFile(t, filepath.Join(up, "packages", n+".metadata"), string(meta))
			h := sha256.Sum256(meta)
			link += fmt.Sprintf(` data-dist-info-metadata="sha256=%x"`, h)
		}
		pages[proj] = append(pages[proj], link+">"+n+"</a>")
	}
	for proj, links := range pages {
		os.MkdirAll(filepath.Join(up, "simple", proj), 0o755)
		writeFile(t, filepath.Join(up, "simple", proj, "index.html"), "<!DOCTYPE html><html><body>\n"+strings.Join(links, "<br/>\n")+"\n</body></html>\n")
	}
	upstream := httptest.NewServer(http.FileServer(http.Dir(up)))
	defer upstream.Close()

	alphaWhl, betaWhl, betaSdist, gammaWhl := "alpha-1.0-py3-none-any.whl", "Beta.Lib-2.0-py3-none-any.whl", "Beta.Lib-2.0.tar.gz", "gamma-3.0-py3-none-any.whl"
	for _, n := range []string{alphaWhl, betaWhl, betaSdist, gammaWhl} {
		if sums[n] == "" {
			t.Fatalf("the builds made %v, not %s", sums, n)
		}
	}
	req := filepath.Join(dir, "req.txt")
	reqBody := fmt.Sprintf("# pip-compile --generate-hashes\nalpha==1.0 \\\n    --hash=sha256:%s\nbeta-lib==2.0 \\\n    --hash=sha256:%s \\\n    --hash=sha256:%s\n    # via alpha\n",
		sums[alphaWhl], sums[betaWhl], sums[betaSdist])
	writeFile(t, req, reqBody)
	hash, _ := bcrypt.GenerateFromPassword([]byte("in-house"), bcrypt.MinCost)
	in := start(t, dir, fmt.Sprintf(`advertise: { addresses: [127.0.0.1] }
mirror: { listen: "127.0.0.1:0" }
pypi:
  upstreams: [{ name: stand-in, url: "%s/simple/" }]
  requirements: [%s]
  python_versions: ["3.11"]
  platforms: [manylinux_2_17_x86_64]
  sdists: true
  users: [{ name: ci, password_hash: "%s" }]
`, upstream.URL, req, hash))
	base := in.status().listener("mirror")
	sync := func() (string, error) {
		return run(t, time.Minute, airgapdBin, "pypi", "sync", "--config", in.config)
	}
	out, err := sync()
	if err != nil || !strings.Contains(out, "published revision") || !strings.Contains(out, "3 packages, 4 fetched") {
		t.Fatalf("airgapd pypi sync: %v\n%s", err, out)
	}
	t.Logf("sync: %s", strings.TrimSpace(out))

	// A damaged upstream file refuses the sync by name; nothing changes.
	os.WriteFile(filepath.Join(up, "packages", gammaWhl), []byte("not the wheel the page's sha256 names"), 0o644)
	writeFile(t, req, reqBody+"gamma==3.0\n")
	out, err = sync()
	if err == nil || !strings.Contains(out, gammaWhl+": damaged") || !strings.Contains(out, "nothing published") {
		t.Fatalf("sync of a damaged file: %v\n%s", err, out)
	}
	if code := pypiGet(t, base+"/pypi/simple/gamma/", "", nil); code != http.StatusNotFound {
		t.Fatalf("gamma is served after a refused sync: %d", code)
	}
	writeFile(t, req, reqBody)

	// PEP 691 JSON on Accept; PEP 503 names normalised.
	var page struct {
		Name  string `json:"name"`
		Files []struct {
			Filename     string            `json:"filename"`
			Hashes       map[string]string `json:"hashes"`
			CoreMetadata any               `json:"core-metadata"`
		} `json:"files"`
	}
	if code := pypiGet(t, base+"/pypi/simple/Beta_Lib/", "application/vnd.pypi.simple.v1+json", &page); code != 200 || page.Name != "beta-lib" || len(page.Files) != 2 {
		t.Fatalf("beta-lib as JSON: %d %+v", code, page)
	}
	pypiGet(t, base+"/pypi/simple/alpha/", "application/vnd.pypi.simple.v1+json", &page)
	if page.Files[0].Hashes["sha256"] != sums[alphaWhl] || page.Files[0].CoreMetadata == false {
		t.Fatalf("alpha as JSON: %+v", page)
	}

	// pip, with the upstream gone, from a requirements file with hashes.
	upstream.Close()
	venv := filepath.Join(dir, "venv")
	// Debian's pip from the system site-packages, installing into the
	// venv: ensurepip's copy would take half a minute to set up.
	if out, err := runPy(t, env, dir, py, "-m", "venv", "--without-pip", "--system-site-packages", venv); err != nil {
		t.Fatalf("venv: %v\n%s", err, out)
	}
	vpy := filepath.Join(venv, "bin", "python")
	pipInstall := func(args ...string) (string, error) {
		return runPy(t, env, dir, vpy, append([]string{"-m", "pip", "install", "--index-url", base + "/pypi/simple/"}, args...)...)
	}
	if out, err := pipInstall("--require-hashes", "-r", req); err != nil {
		t.Fatalf("pip install --require-hashes: %v\n%s", err, out)
	}
	if out, err := runPy(t, env, dir, vpy, "-c", "import alpha, beta_lib; print(alpha.VERSION, beta_lib.VERSION)"); err != nil || strings.TrimSpace(out) != "1.0 2.0" {
		t.Fatalf("installed: %v %q", err, out)
	}

	// twine uploads an in-house wheel; pip installs it.
	delta := filepath.Join(wheels, "delta-0.1-py3-none-any.whl")
	if out, err := runPy(t, env, dir, "twine", "upload", "--non-interactive", "--disable-progress-bar", "--repository-url", base+"/pypi/legacy/", "-u", "ci", "-p", "wrong", delta); err == nil {
		t.Fatalf("twine with a wrong password: %s", out)
	}
	if out, err := runPy(t, env, dir, "twine", "upload", "--non-interactive", "--disable-progress-bar", "--repository-url", base+"/pypi/legacy/", "-u", "ci", "-p", "in-house", delta); err != nil {
		t.Fatalf("twine upload: %v\n%s", err, out)
	}
	// node.sh --dev-tools points pip at the index (/etc/pip.conf); pip
	// reads it.
	root := t.TempDir()
	if out, err := runNode(t, nodeScript(t, in), "--root", root, "--dev-tools", "--no-check"); err != nil || !strings.Contains(out, "wrote /etc/pip.conf") {
		t.Fatalf("node.sh --dev-tools: %v\n%s", err, out)
	}
	pipConf := filepath.Join(root, "etc", "pip.conf")
	if b, _ := os.ReadFile(pipConf); !strings.Contains(string(b), "index-url = "+base+"/pypi/simple/") {
		t.Fatalf("pip.conf:\n%s", b)
	}
	if out, err := runPy(t, append(env, "PIP_CONFIG_FILE="+pipConf), dir, vpy, "-m", "pip", "install", "delta==0.1"); err != nil {
		t.Fatalf("pip install delta (pip.conf from node.sh): %v\n%s", err, out)
	}
	if out, err := runPy(t, env, dir, vpy, "-c", "import delta; print(delta.VERSION)"); err != nil || strings.TrimSpace(out) != "0.1" {
		t.Fatalf("delta: %v %q", err, out)
	}
	var st struct {
		Summary string `json:"summary"`
	}
	in.status().detail(t, "pypi", &st)
	if st.Summary != "3 projects, 4 files, last sync failed" {
		t.Fatalf("pypi status: %q", st.Summary)
	}

	// A bundle carries the index, the upload included, to a fresh
	// instance whose upstream is gone; pip installs from there.
	admin := start(t, t.TempDir(), fmt.Sprintf("mirror: { listen: \"127.0.0.1:0\" }\npypi:\n  upstreams: [{ name: stand-in, url: \"%s/simple/\" }]\n  requirements: [%s]\n", upstream.URL, req))
	bundleAcross(t, in, admin, "--pypi")
	venv2 := filepath.Join(dir, "venv2")
	if out, err := runPy(t, env, dir, py, "-m", "venv", "--without-pip", "--system-site-packages", venv2); err != nil {
		t.Fatalf("venv: %v\n%s", err, out)
	}
	vpy2 := filepath.Join(venv2, "bin", "python")
	index2 := admin.status().listener("mirror") + "/pypi/simple/"
	if out, err := runPy(t, env, dir, vpy2, "-m", "pip", "install", "--index-url", index2, "--require-hashes", "-r", req); err != nil {
		t.Fatalf("pip install from the imported index: %v\n%s", err, out)
	}
	if out, err := runPy(t, env, dir, vpy2, "-m", "pip", "install", "--index-url", index2, "delta==0.1"); err != nil {
		t.Fatalf("pip install of the uploaded wheel from the imported index: %v\n%s", err, out)
	}
	if out, err := runPy(t, env, dir, vpy2, "-c", "import alpha, delta; print(alpha.VERSION, delta.VERSION)"); err != nil || strings.TrimSpace(out) != "1.0 0.1" {
		t.Fatalf("installed from the imported index: %v %q", err, out)
	}
}

// pypiGet GETs url with Accept accept, decoding a JSON answer into v.
func pypiGet(t *testing.T, url, accept string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == 200 {
		if ct := resp.Header.Get("Content-Type"); ct != accept {
			t.Fatalf("GET %s: Content-Type %q, asked for %q", url, ct, accept)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return resp.StatusCode
}
