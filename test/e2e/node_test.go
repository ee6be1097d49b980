package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nodeConfig is an admin host with every service a node uses; the
// gateway stays in plan mode (the test is about the node's side).
func nodeConfig(advertise string) string {
	return `
advertise: { name: admin.lab.internal, addresses: [` + advertise + `] }
web: { listen: "127.0.0.1:0", tls: off }
dns:
  listen: ["127.0.0.1:0"]
  forward: only
  zones: [{ name: lab.internal, records: ["admin A 127.0.0.1"] }]
ntp: { listen: ["127.0.0.1:0"], allow: [127.0.0.0/8] }
gateway: { mode: plan, masquerade: [{ source: 10.200.10.0/24, out_interface: eth9 }] }
registry: { listen: "127.0.0.1:0", mirrors: [docker.io, registry.k8s.io] }
mirror:
  listen: "127.0.0.1:0"
`
}

// snapshot reads every file under root: path → contents.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	for rel, body := range snapshot(t, from) {
		p := filepath.Join(to, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		writeFile(t, p, body)
	}
}

// nodeScript fetches node.sh from the mirror listener, as a node would.
func nodeScript(t *testing.T, in *instance) string {
	t.Helper()
	mirror := in.status().listener("mirror")
	code, body := httpGet(t, nil, mirror+"/bootstrap/node.sh")
	if code != 200 {
		t.Fatalf("GET /bootstrap/node.sh = %d %s", code, body)
	}
	path := filepath.Join(t.TempDir(), "node.sh")
	writeFile(t, path, body)
	return path
}

func runNode(t *testing.T, script string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("sh", append([]string{script}, args...)...).CombinedOutput()
	return string(out), err
}

func TestNodeBootstrap(t *testing.T) {
	need(t, "sh", "curl", "shellcheck", "sha256sum", "base64")
	dir := t.TempDir()
	in := start(t, dir, nodeConfig("127.0.0.1"))
	script := nodeScript(t, in)
	st := in.status()
	_, regPort, _ := net.SplitHostPort(hostPort(st.listener("registry")))

	if out, err := exec.Command("shellcheck", "-s", "sh", script).CombinedOutput(); err != nil {
		t.Errorf("shellcheck:\n%s", out)
	}

	root := t.TempDir()
	copyTree(t, "testdata/node/rocky9", root)
	before := snapshot(t, root)

	// A wrong pin aborts before anything is written.
	out, err := runNode(t, script, "--root", root, "--ca-sha256", strings.Repeat("ab", 32))
	if err == nil || !strings.Contains(out, "refusing to trust it; nothing was changed") {
		t.Errorf("wrong --ca-sha256: err %v\n%s", err, out)
	}
	if got := snapshot(t, root); !sameFiles(got, before) {
		t.Errorf("a wrong pin changed files: %v", diffFiles(before, got))
	}

	// --dry-run prints and changes nothing.
	out, err = runNode(t, script, "--root", root, "--dry-run")
	if err != nil || !strings.Contains(out, "would write /etc/chrony.conf") || !strings.Contains(out, "dry run: nothing was changed") {
		t.Errorf("--dry-run: %v\n%s", err, out)
	}
	if got := snapshot(t, root); !sameFiles(got, before) {
		t.Errorf("--dry-run changed files: %v", diffFiles(before, got))
	}

	// The real run, with the right pin given explicitly (what a careful
	// admin copies from the UI).
	caPEM, err := os.ReadFile(filepath.Join(dir, "data", "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(caPEM)
	sum := sha256.Sum256(block.Bytes)
	pin := hex.EncodeToString(sum[:])
	// The front page shows the one-liner with that pin.
	if _, page := httpGet(t, nil, st.listener("ui")+"/"); !strings.Contains(page, "/bootstrap/node.sh | sh -s -- --ca-sha256 "+pin) {
		t.Errorf("front page lacks the node command with the CA fingerprint:\n%s", page)
	}
	out, err = runNode(t, script, "--root", root, "--ca-sha256", strings.ToUpper(pin), "--k8s-prereqs")
	if err != nil {
		t.Fatalf("node.sh --root: %v\n%s", err, out)
	}
	if !strings.Contains(out, "appliance CA sha256 "+pin) {
		t.Errorf("fingerprint not printed:\n%s", out)
	}
	got := snapshot(t, root)
	// Golden files hold REGISTRY for the registry's address (its port is
	// random), and the CA is compared with the one the server made.
	reg := "127.0.0.1:" + regPort
	normal := map[string]string{}
	for p, body := range got {
		if strings.HasSuffix(p, "ca.crt") {
			if body != string(caPEM) {
				t.Errorf("%s is not the appliance CA", p)
			}
			continue
		}
		normal[strings.ReplaceAll(p, reg, "REGISTRY")] = strings.ReplaceAll(body, reg, "REGISTRY")
	}
	compareGolden(t, "testdata/node/golden", normal)
	if got["etc/chrony.conf.airgapd.bak"] != before["etc/chrony.conf"] {
		t.Error("the original chrony.conf was not kept as chrony.conf.airgapd.bak")
	}

	// Idempotent: a second run changes nothing.
	out, err = runNode(t, script, "--root", root, "--k8s-prereqs")
	if err != nil || !strings.Contains(out, "already set up: nothing to change") || strings.Contains(out, "wrote ") {
		t.Errorf("second run: %v\n%s", err, out)
	}
	if again := snapshot(t, root); !sameFiles(again, got) {
		t.Errorf("second run changed files: %v", diffFiles(got, again))
	}

	// The script follows the config: a repo added, reloaded.
	repoDir := t.TempDir()
	in.rewrite(nodeConfig("127.0.0.1") + "  repos: [{ name: local, path: " + repoDir + " }]\n")
	in.signal(syscall.SIGHUP)
	in.waitLog("config reloaded", 10*time.Second)
	if out, err := runNode(t, nodeScript(t, in), "--root", root); err != nil || !strings.Contains(out, "wrote /etc/yum.repos.d/airgapd-local.repo") {
		t.Fatalf("node.sh after adding a repo: %v\n%s", err, out)
	}
	if repo := snapshot(t, root)["etc/yum.repos.d/airgapd-local.repo"]; !strings.Contains(repo, "[local]") || !strings.Contains(repo, "/repos/local") {
		t.Errorf("airgapd-local.repo:\n%s", repo)
	}

	// … and a new advertise address.
	in.rewrite(nodeConfig("10.200.0.10"))
	in.signal(syscall.SIGHUP)
	in.waitLogN("config reloaded", 2, 10*time.Second)
	root2 := t.TempDir()
	copyTree(t, "testdata/node/rocky9", root2)
	if out, err := runNode(t, nodeScript(t, in), "--root", root2); err != nil {
		t.Fatalf("node.sh after reload: %v\n%s", err, out)
	}
	after := snapshot(t, root2)
	if !strings.Contains(after["etc/chrony.conf"], "server 10.200.0.10 iburst # airgapd") ||
		!strings.Contains(after["etc/resolv.conf"], "nameserver 10.200.0.10") {
		t.Errorf("node.sh did not follow the new advertise address:\n%s\n%s", after["etc/chrony.conf"], after["etc/resolv.conf"])
	}
	if _, ok := after["etc/containerd/certs.d/10.200.0.10:"+regPort+"/hosts.toml"]; !ok {
		t.Errorf("no hosts.toml for the registry at the new address: %v", keys(after))
	}
}

func sameFiles(a, b map[string]string) bool { return len(diffFiles(a, b)) == 0 }

func diffFiles(a, b map[string]string) []string {
	var d []string
	for p, v := range a {
		if w, ok := b[p]; !ok {
			d = append(d, "-"+p)
		} else if v != w {
			d = append(d, "~"+p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			d = append(d, "+"+p)
		}
	}
	sort.Strings(d)
	return d
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// compareGolden checks files against dir; UPDATE_GOLDEN=1 rewrites dir.
func compareGolden(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if os.Getenv("UPDATE_GOLDEN") != "" {
		os.RemoveAll(dir)
		for p, body := range files {
			os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
			writeFile(t, filepath.Join(dir, p), body)
		}
		return
	}
	want := snapshot(t, dir)
	for _, d := range diffFiles(want, files) {
		p := d[1:]
		t.Errorf("%s %s\nwant:\n%s\ngot:\n%s", d[:1], p, want[p], files[p])
	}
}
