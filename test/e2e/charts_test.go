package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// helmEnv runs the real helm CLI with its config, cache and data in temp
// folders, so nothing of the host's helm setup is read or written.
type helmEnv struct {
	t   *testing.T
	bin string
	env []string
}

func newHelm(t *testing.T) *helmEnv {
	t.Helper()
	bin := peer(t, "helm")
	dir := t.TempDir()
	h := &helmEnv{t: t, bin: bin}
	for _, v := range []string{"HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME"} {
		h.env = append(h.env, v+"="+filepath.Join(dir, strings.ToLower(v)))
	}
	h.env = append(h.env, "HOME="+dir, "HELM_REGISTRY_CONFIG="+filepath.Join(dir, "registry.json"))
	return h
}

// run runs helm in dir and fails the test when it fails.
func (h *helmEnv) run(dir string, args ...string) string {
	h.t.Helper()
	out, err := h.try(dir, args...)
	if err != nil {
		h.t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (h *helmEnv) try(dir string, args ...string) (string, error) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), h.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// writeChart writes a chart folder: Chart.yaml, values.yaml and one
// template naming the chart.
func writeChart(t *testing.T, dir, name, version, appVersion, deps string) string {
	t.Helper()
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Join(d, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(d, "Chart.yaml"), fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\nappVersion: %q\ndescription: %s for the e2e test\n%s", name, version, appVersion, name, deps))
	writeFile(t, filepath.Join(d, "values.yaml"), fmt.Sprintf("image:\n  repository: lab/%s\n  tag: \"\"\n", name))
	writeFile(t, filepath.Join(d, "templates", "cm.yaml"), `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}
data:
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
  from: "`+name+`-`+version+`"
`)
	return d
}

// serveDir serves dir on 127.0.0.1 until the returned stop is called.
func serveDir(t *testing.T, dir string) (base string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			srv.Close()
		}
	}
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

// TestChartsOCIPushPull: helm pushes a chart to the registry's charts/
// namespace and pulls it back by version, over plain HTTP and over TLS
// trusting only the appliance CA; /charts/index.yaml lists what was pushed.
func TestChartsOCIPushPull(t *testing.T) {
	for _, tt := range []struct {
		name, tls string
	}{{"plain", "off"}, {"tls", "auto"}} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHelm(t)
			dir := t.TempDir()
			in := start(t, dir, `
mirror: { listen: "127.0.0.1:0" }
registry:
  listen: "127.0.0.1:0"
  tls: `+tt.tls+`
  users: [{name: admin, password_hash: "`+registryTestHash+`"}]
  pull_from: [127.0.0.1/32]
charts: {}
`)
			st := in.status()
			reg := st.listener("registry")
			host := reg[strings.Index(reg, "://")+3:]
			var trust []string
			if tt.tls == "off" {
				trust = []string{"--plain-http"}
			} else {
				trust = []string{"--ca-file", filepath.Join(dir, "data", "pki", "ca.crt")}
			}
			work := t.TempDir()
			writeChart(t, work, "demo", "0.1.0", "1.0", "")
			h.run(work, "package", "demo")
			h.run(work, append([]string{"registry", "login", host, "-u", "admin", "-p", "s3cret"}, loginTrust(trust)...)...)
			out := h.run(work, append([]string{"push", "demo-0.1.0.tgz", "oci://" + host + "/charts"}, trust...)...)
			if !strings.Contains(out, "Digest: sha256:") {
				t.Fatalf("helm push said:\n%s", out)
			}
			pulled := filepath.Join(work, "pulled")
			os.MkdirAll(pulled, 0o755)
			h.run(work, append([]string{"pull", "oci://" + host + "/charts/demo", "--version", "0.1.0", "-d", pulled}, trust...)...)
			a, _ := os.ReadFile(filepath.Join(work, "demo-0.1.0.tgz"))
			b, err := os.ReadFile(filepath.Join(pulled, "demo-0.1.0.tgz"))
			if err != nil || string(a) != string(b) {
				t.Fatalf("the pulled chart differs from the pushed one (%v)", err)
			}
			code, idx := httpGet(t, nil, st.listener("mirror")+"/charts/index.yaml")
			if code != 200 || !strings.Contains(idx, "demo-0.1.0.tgz") {
				t.Fatalf("index.yaml (%d) does not list demo 0.1.0:\n%s", code, idx)
			}
			code, tgz := httpGet(t, nil, st.listener("mirror")+"/charts/demo-0.1.0.tgz")
			if code != 200 || tgz != string(a) {
				t.Fatalf("/charts/demo-0.1.0.tgz: %d, %d bytes, want the pushed %d", code, len(tgz), len(a))
			}
		})
	}
}

// loginTrust is the login flags matching a push's trust flags (helm
// registry login says --insecure where push says --plain-http).
func loginTrust(trust []string) []string {
	if len(trust) > 0 && trust[0] == "--plain-http" {
		return []string{"--insecure"}
	}
	return trust
}

// indexYAML is the part of index.yaml the test reads.
type indexYAML struct {
	APIVersion string `yaml:"apiVersion"`
	Entries    map[string][]struct {
		Name         string    `yaml:"name"`
		Version      string    `yaml:"version"`
		AppVersion   string    `yaml:"appVersion"`
		Digest       string    `yaml:"digest"`
		Created      time.Time `yaml:"created"`
		URLs         []string  `yaml:"urls"`
		Dependencies []struct {
			Name, Version string
		} `yaml:"dependencies"`
	} `yaml:"entries"`
}

// TestChartsSync: a stand-in upstream classic repository (made by helm
// package and helm repo index; app depends on lib) is synced into
// airgapd; with the upstream gone, helm repo add / search / pull /
// template work from airgapd's /charts/; a chart helm pushes to oci://
// shows after helm repo update; an upstream whose .tgz was tampered with
// after indexing refuses the sync by name and pushes nothing of it.
func TestChartsSync(t *testing.T) {
	h := newHelm(t)
	up := t.TempDir()
	good, bad := filepath.Join(up, "good"), filepath.Join(up, "bad")
	upstream, stopUpstream := serveDir(t, up)
	work := t.TempDir()
	writeChart(t, work, "lib", "0.1.0", "3.1", "")
	app := writeChart(t, work, "app", "1.0.0", "2.0", "dependencies:\n- name: lib\n  version: 0.1.0\n  repository: "+upstream+"/good\n")
	os.MkdirAll(filepath.Join(app, "charts"), 0o755)
	writeChart(t, filepath.Join(app, "charts"), "lib", "0.1.0", "3.1", "")
	h.run(work, "package", "lib", "-d", good)
	h.run(work, "package", "app", "-d", good)
	h.run(work, "repo", "index", good)
	// bad: one sound chart, one changed after the index was written.
	writeChart(t, work, "fine", "0.1.0", "1", "")
	writeChart(t, work, "evil", "0.1.0", "1", "")
	h.run(work, "package", "fine", "-d", bad)
	h.run(work, "package", "evil", "-d", bad)
	h.run(work, "repo", "index", bad)
	writeFile(t, filepath.Join(work, "evil", "templates", "extra.yaml"), "# not what was indexed\n")
	h.run(work, "package", "evil", "-d", bad)

	dir := t.TempDir()
	in := start(t, dir, `
mirror: { listen: "127.0.0.1:0" }
registry:
  listen: "127.0.0.1:0"
  tls: auto
  users: [{name: admin, password_hash: "`+registryTestHash+`"}]
  pull_from: [127.0.0.1/32]
charts:
  repos:
  - { name: good, url: "`+upstream+`/good", charts: [app, "lib@>=0.1.0 <1"] }
  - { name: bad, url: "`+upstream+`/bad", charts: [fine, evil] }
`)
	out, err := run(t, 60*time.Second, airgapdBin, "charts", "sync", "good", "--config", in.config)
	if err != nil || !strings.Contains(out, "good: 2 chart versions, 2 copied into the registry") {
		t.Fatalf("charts sync good: %v\n%s", err, out)
	}
	out, err = run(t, 60*time.Second, airgapdBin, "charts", "sync", "good", "--config", in.config)
	if err != nil || !strings.Contains(out, "good: up to date (2 chart versions)") {
		t.Fatalf("second charts sync good: %v\n%s", err, out)
	}
	out, err = run(t, 60*time.Second, airgapdBin, "charts", "sync", "bad", "--config", in.config)
	if err == nil || !strings.Contains(out, "bad: FAILED: chart evil-0.1.0 does not match index.yaml's digest") ||
		!strings.Contains(out, "evil-0.1.0.tgz has sha256") {
		t.Fatalf("charts sync of a tampered chart: %v\n%s", err, out)
	}
	stopUpstream()

	st := in.status()
	mirrorURL := st.listener("mirror") + "/charts"
	code, body := httpGet(t, nil, mirrorURL+"/index.yaml")
	var idx indexYAML
	if err := yaml.Unmarshal([]byte(body), &idx); code != 200 || err != nil {
		t.Fatalf("index.yaml: %d %v\n%s", code, err, body)
	}
	if idx.APIVersion != "v1" || len(idx.Entries["app"]) != 1 || len(idx.Entries["lib"]) != 1 {
		t.Fatalf("index.yaml lists %+v", idx)
	}
	if _, ok := idx.Entries["fine"]; ok {
		t.Fatalf("fine was pushed though its sync was refused:\n%s", body)
	}
	a := idx.Entries["app"][0]
	if a.Version != "1.0.0" || a.AppVersion != "2.0" || len(a.Digest) != 64 || a.Created.IsZero() ||
		len(a.URLs) != 1 || a.URLs[0] != "app-1.0.0.tgz" || len(a.Dependencies) != 1 || a.Dependencies[0].Name != "lib" {
		t.Errorf("index.yaml's app entry: %+v", a)
	}

	h.run(work, "repo", "add", "airgapd", mirrorURL)
	out = h.run(work, "search", "repo", "airgapd/")
	for _, want := range []string{"airgapd/app", "airgapd/lib"} {
		if !strings.Contains(out, want) {
			t.Errorf("helm search repo misses %s:\n%s", want, out)
		}
	}
	pulled := filepath.Join(work, "pulled")
	os.MkdirAll(pulled, 0o755)
	h.run(work, "pull", "airgapd/app", "--version", "1.0.0", "-d", pulled)
	orig, _ := os.ReadFile(filepath.Join(good, "app-1.0.0.tgz"))
	got, err := os.ReadFile(filepath.Join(pulled, "app-1.0.0.tgz"))
	if err != nil || string(got) != string(orig) {
		t.Fatalf("helm pull gave another app-1.0.0.tgz than upstream's (%v)", err)
	}
	out = h.run(work, "template", "r1", "airgapd/app", "--version", "1.0.0")
	for _, want := range []string{"name: r1-app", "name: r1-lib", `image: "lab/app:2.0"`, `from: "lib-0.1.0"`} {
		if !strings.Contains(out, want) {
			t.Errorf("helm template misses %q:\n%s", want, out)
		}
	}
	out, err = run(t, 30*time.Second, airgapdBin, "charts", "images", "app-1.0.0", "--config", in.config)
	if err != nil || out != "lab/app:2.0\nlab/lib:3.1\n" {
		t.Errorf("charts images app-1.0.0: %v\n%q", err, out)
	}

	// A chart pushed to oci:// shows in the classic view.
	reg := st.listener("registry")
	host := reg[strings.Index(reg, "://")+3:]
	ca := []string{"--ca-file", filepath.Join(dir, "data", "pki", "ca.crt")}
	writeChart(t, work, "extra", "0.3.0", "1", "")
	h.run(work, "package", "extra")
	h.run(work, append([]string{"registry", "login", host, "-u", "admin", "-p", "s3cret"}, ca...)...)
	h.run(work, append([]string{"push", "extra-0.3.0.tgz", "oci://" + host + "/charts"}, ca...)...)
	h.run(work, "repo", "update", "airgapd")
	if out = h.run(work, "search", "repo", "airgapd/extra"); !strings.Contains(out, "0.3.0") {
		t.Errorf("after helm push and repo update, search says:\n%s", out)
	}
	opull := filepath.Join(work, "opull")
	os.MkdirAll(opull, 0o755)
	h.run(work, append([]string{"pull", "oci://" + host + "/charts/app", "--version", "1.0.0", "-d", opull}, ca...)...)
	if got, _ := os.ReadFile(filepath.Join(opull, "app-1.0.0.tgz")); string(got) != string(orig) {
		t.Error("helm pull oci:// of the synced app differs from upstream's .tgz")
	}
	st = in.status()
	if c := st.Service("charts").Charts; c == nil || c.Versions != 3 || c.Charts != 3 {
		t.Errorf("charts status: %+v", c)
	}
}
