package e2e

import (
	"bytes"
	"crypto/rand"
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

	gomodule "golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	modzip "golang.org/x/mod/zip"

	"github.com/airgapd/airgapd/api"
)

// goUpstream is "the internet" for the Go proxy tests: a GOPROXY folder
// (the cache/download layout) of modules the test makes, served over
// HTTP, and a checksum database covering them, made with
// golang.org/x/mod/sumdb's test server and a note signer.
type goUpstream struct {
	dir    string
	proxy  *httptest.Server
	sumdb  *httptest.Server
	key    string // the database's verifier key
	hashes map[string]string
}

type goModule struct {
	path, version string
	files         map[string]string
}

var goTestModules = []goModule{
	{"lab.test/Greet", "v1.0.0", map[string]string{
		"go.mod":   "module lab.test/Greet\n\ngo 1.21\n\nrequire lab.test/words v1.1.0\n",
		"greet.go": "package greet\n\nimport \"lab.test/words\"\n\nfunc Hello() string { return words.Hello + \" from the gap\" }\n",
	}},
	{"lab.test/words", "v1.1.0", map[string]string{
		"go.mod":   "module lab.test/words\n\ngo 1.21\n",
		"words.go": "package words\n\nconst Hello = \"hello\"\n",
	}},
}

func newGoUpstream(t *testing.T) *goUpstream {
	t.Helper()
	u := &goUpstream{dir: t.TempDir(), hashes: map[string]string{}}
	for _, m := range goTestModules {
		zip := u.write(t, m)
		h1, err := dirhash.HashZip(zip, dirhash.Hash1)
		if err != nil {
			t.Fatal(err)
		}
		u.hashes[m.path+" "+m.version] = h1
		gm := []byte(m.files["go.mod"])
		u.hashes[m.path+" "+m.version+"/go.mod"], _ = dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(gm)), nil
		})
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, "sumdb.lab.test")
	if err != nil {
		t.Fatal(err)
	}
	u.key = vkey
	db := sumdb.NewTestServer(skey, func(path, vers string) ([]byte, error) {
		z, g := u.hashes[path+" "+vers], u.hashes[path+" "+vers+"/go.mod"]
		if z == "" || g == "" {
			return nil, fmt.Errorf("no module %s@%s", path, vers)
		}
		return fmt.Appendf(nil, "%s %s %s\n%s %s/go.mod %s\n", path, vers, z, path, vers, g), nil
	})
	u.sumdb = httptest.NewServer(sumdb.NewServer(db))
	t.Cleanup(u.sumdb.Close)
	for _, m := range goTestModules { // every module in one tree, as a real database has them
		esc, _ := gomodule.EscapePath(m.path)
		if resp, err := http.Get(u.sumdb.URL + "/lookup/" + esc + "@" + m.version); err != nil || resp.StatusCode != 200 {
			t.Fatalf("test sumdb lookup %s: %v", m.path, err)
		} else {
			resp.Body.Close()
		}
	}
	u.proxy = httptest.NewServer(http.FileServer(http.Dir(u.dir)))
	t.Cleanup(u.proxy.Close)
	return u
}

// write puts one module version's .info, .mod, .zip and list line into
// the folder, the zip made with golang.org/x/mod/zip; it returns the zip.
func (u *goUpstream) write(t *testing.T, m goModule) string {
	t.Helper()
	src := t.TempDir()
	for name, body := range m.files {
		writeFile(t, filepath.Join(src, name), body)
	}
	esc, _ := gomodule.EscapePath(m.path)
	dir := filepath.Join(u.dir, filepath.FromSlash(esc), "@v")
	os.MkdirAll(dir, 0o755)
	var z bytes.Buffer
	if err := modzip.CreateFromDir(&z, gomodule.Version{Path: m.path, Version: m.version}, src); err != nil {
		t.Fatal(err)
	}
	zip := filepath.Join(dir, m.version+".zip")
	writeFile(t, zip, z.String())
	writeFile(t, filepath.Join(dir, m.version+".mod"), m.files["go.mod"])
	writeFile(t, filepath.Join(dir, m.version+".info"), fmt.Sprintf(`{"Version":%q,"Time":"2026-01-02T03:04:05Z"}`, m.version))
	writeFile(t, filepath.Join(dir, "list"), m.version+"\n")
	return zip
}

// goEnv is a go command with nothing of this host's: its own GOPATH and
// module cache, the build cache gocache (a temp folder; "" for a new
// one: a fresh build cache compiles the runtime, about a minute here), no
// go env file, the local toolchain, and GOPROXY / GOSUMDB as given
// (GONOSUMDB and friends unset).
func goEnv(t *testing.T, gocache, goproxy, gosumdb string) []string {
	t.Helper()
	home := t.TempDir()
	if gocache == "" {
		gocache = filepath.Join(home, "gocache")
	}
	return []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GOENV=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0",
		"GOPATH=" + filepath.Join(home, "gopath"), "GOMODCACHE=" + filepath.Join(home, "modcache"), "GOCACHE=" + gocache,
		"GOFLAGS=-mod=mod", "GOPROXY=" + goproxy, "GOSUMDB=" + gosumdb,
	}
}

// goRun runs the go command in dir with env and a time limit.
func goRun(t *testing.T, dir string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = dir, env
	timer := time.AfterFunc(3*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// goProject writes a program importing lab.test/Greet (go.mod only) and
// returns its folder.
func goProject(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module lab.test/app\n\ngo 1.21\n\nrequire lab.test/Greet v1.0.0\n")
	writeFile(t, filepath.Join(dir, "main.go"), "package main\n\nimport greet \"lab.test/Greet\"\n\nfunc main() { println(greet.Hello()) }\n")
	return dir
}

func goproxyConfig(upstream, gomod string, u *goUpstream) string {
	return fmt.Sprintf("mirror:\n  listen: 127.0.0.1:0\ngoproxy:\n  upstream: %s\n  go_mod: [%s]\n  sumdb: { url: %q, key: %q }\n", upstream, gomod, u.sumdb.URL, u.key)
}

// TestGoProxy: the go command's own go.mod/go.sum (go mod tidy against
// the stand-in upstream) is synced; with the upstream and its checksum
// database gone, a go build in a clean module cache fetches everything
// from airgapd and verifies it through airgapd's checksum database proxy,
// given by URL and found through the proxy (…/sumdb/NAME/supported).
func TestGoProxy(t *testing.T) {
	need(t, "go")
	u := newGoUpstream(t)
	name, _, _ := strings.Cut(u.key, "+")
	// The project as a developer has it on the internet side.
	src := goProject(t)
	if out, err := goRun(t, src, goEnv(t, "", u.proxy.URL, u.key+" "+u.sumdb.URL), "mod", "tidy"); err != nil {
		t.Fatalf("go mod tidy against the upstream: %v\n%s", err, out)
	}
	in := start(t, t.TempDir(), goproxyConfig(u.proxy.URL, filepath.Join(src, "go.mod"), u))
	out, err := run(t, 2*time.Minute, airgapdBin, "goproxy", "sync", "--config", in.config)
	if err != nil || !strings.Contains(out, "goproxy: published revision") || !strings.Contains(out, "2 module versions") {
		t.Fatalf("airgapd goproxy sync: %v\n%s", err, out)
	}
	t.Logf("sync: %s", strings.TrimSpace(out))
	u.proxy.Close()
	u.sumdb.Close()

	base := in.status().listener("mirror") + "/goproxy"
	gocache := t.TempDir() // shared: only the module caches start clean
	for _, tc := range []struct{ name, gosumdb string }{
		{"sumdb by URL", u.key + " " + base + "/sumdb/" + name},
		{"sumdb through the proxy", u.key},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := goProject(t)
			env := goEnv(t, gocache, base, tc.gosumdb)
			if out, err := goRun(t, app, env, "build", "-o", "app", "."); err != nil {
				t.Fatalf("go build through airgapd: %v\n%s", err, out)
			}
			got, err := exec.Command(filepath.Join(app, "app")).CombinedOutput()
			if err != nil || !strings.Contains(string(got), "hello from the gap") {
				t.Fatalf("the program: %v: %s", err, got)
			}
			sum, _ := os.ReadFile(filepath.Join(app, "go.sum"))
			if want := "lab.test/words v1.1.0 " + u.hashes["lab.test/words v1.1.0"]; !strings.Contains(string(sum), want) {
				t.Errorf("go.sum written by the build lacks %q:\n%s", want, sum)
			}
		})
	}
	var st api.GoProxyStatus
	in.status().detail(t, "goproxy", &st)
	if st.Modules != 2 || st.Versions != 2 || st.SumDBLookups != 2 || st.LastResult != "ok" || st.SumDB != name {
		t.Errorf("status %+v", st)
	}
}

// TestGoProxyRefusesDamagedZip: an upstream whose zip is not the one
// go.sum recorded makes the sync (run with no server, on data_dir) fail
// naming the module; nothing is published, and the server started
// afterwards reports the failure.
func TestGoProxyRefusesDamagedZip(t *testing.T) {
	need(t, "go")
	u := newGoUpstream(t)
	src := goProject(t)
	if out, err := goRun(t, src, goEnv(t, "", u.proxy.URL, u.key+" "+u.sumdb.URL), "mod", "tidy"); err != nil {
		t.Fatalf("go mod tidy against the upstream: %v\n%s", err, out)
	}
	// Another words v1.1.0, a valid module zip with other content.
	other := t.TempDir()
	writeFile(t, filepath.Join(other, "go.mod"), "module lab.test/words\n\ngo 1.21\n")
	writeFile(t, filepath.Join(other, "words.go"), "package words\n\nconst Hello = \"pwned\"\n")
	var z bytes.Buffer
	if err := modzip.CreateFromDir(&z, gomodule.Version{Path: "lab.test/words", Version: "v1.1.0"}, other); err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(u.dir))
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/lab.test/words/@v/v1.1.0.zip" {
			w.Write(z.Bytes())
			return
		}
		files.ServeHTTP(w, r)
	}))
	defer bad.Close()
	cfg := goproxyConfig(bad.URL, filepath.Join(src, "go.mod"), u)
	cfg = strings.Replace(cfg, "  sumdb:", "  parallel: 1\n  sumdb:", 1)
	// No server runs yet: the command syncs on data_dir itself.
	dir := t.TempDir()
	out, err := run(t, 2*time.Minute, airgapdBin, "goproxy", "sync", "--config", writeConfig(t, dir, cfg))
	if err == nil || !strings.Contains(out, "lab.test/words@v1.1.0: zip: hash") || !strings.Contains(out, "nothing published") {
		t.Fatalf("airgapd goproxy sync from a damaged upstream: %v\n%s", err, out)
	}
	t.Logf("refused: %s", out)
	in := start(t, dir, cfg)
	resp, err := http.Get(in.status().listener("mirror") + "/goproxy/lab.test/!greet/@v/list")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("after a refused sync /goproxy/lab.test/!greet/@v/list is %s, want 404", resp.Status)
	}
	var st api.GoProxyStatus
	in.status().detail(t, "goproxy", &st)
	if st.LastResult != "failed" || !strings.Contains(st.LastError, "lab.test/words@v1.1.0") || st.Versions != 0 {
		t.Errorf("status %+v", st)
	}
}

// TestGoProxyNodeDevTools: node.sh --dev-tools points the node's go
// command at the admin host (GOPROXY, and GOSUMDB's key, whose proxy go
// finds there); without the flag it writes no such file.
func TestGoProxyNodeDevTools(t *testing.T) {
	need(t, "go")
	_, vkey, err := note.GenerateKey(rand.Reader, "sumdb.lab.test")
	if err != nil {
		t.Fatal(err)
	}
	in := start(t, t.TempDir(), fmt.Sprintf("advertise: { addresses: [127.0.0.1] }\nmirror:\n  listen: 127.0.0.1:0\ngoproxy:\n  sumdb: { key: %q }\n", vkey))
	script := nodeScript(t, in)
	root := t.TempDir()
	if out, err := runNode(t, script, "--root", root); err != nil {
		t.Fatalf("node.sh: %v\n%s", err, out)
	}
	env := filepath.Join(root, "etc", "profile.d", "airgapd-go.sh")
	if _, err := os.Stat(env); err == nil {
		t.Fatal("node.sh without --dev-tools wrote airgapd-go.sh")
	}
	if out, err := runNode(t, script, "--root", root, "--dev-tools"); err != nil || !strings.Contains(out, "/etc/profile.d/airgapd-go.sh") {
		t.Fatalf("node.sh --dev-tools: %v\n%s", err, out)
	}
	out, err := exec.Command("sh", "-c", ". "+env+" && GOENV=off go env GOPROXY GOSUMDB").CombinedOutput()
	want := in.status().listener("mirror") + "/goproxy\n" + vkey + "\n"
	if err != nil || string(out) != want {
		t.Errorf("go env after sourcing airgapd-go.sh: %v\n%q, want %q", err, out, want)
	}
}
