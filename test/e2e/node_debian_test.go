package e2e

import (
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Debian and Ubuntu nodes (issue 25): node.sh on an Ubuntu 22.04 tree
// (systemd-resolved owns resolv.conf) and a Debian 12 tree (a plain
// resolv.conf, a deb822 vendor source), compared with golden trees.
func TestNodeBootstrapDebianAndUbuntu(t *testing.T) {
	need(t, "sh", "curl", "shellcheck", "sha256sum", "base64")
	tests := []struct {
		tree     string
		resolved bool // /etc/resolv.conf links to systemd-resolved's stub
	}{
		{"ubuntu2204", true},
		{"debian12", false},
	}
	dir := t.TempDir()
	debs := t.TempDir()
	in := start(t, dir, nodeConfig("127.0.0.1")+"  repos: []\napt:\n  repos: [{ name: site, path: "+debs+", suites: [bookworm] }]\n")
	script := nodeScript(t, in)
	if out, err := exec.Command("shellcheck", "-s", "sh", script).CombinedOutput(); err != nil {
		t.Errorf("shellcheck:\n%s", out)
	}
	st := in.status()
	mirrorURL := st.listener("mirror")
	_, mirrorPort, _ := net.SplitHostPort(strings.TrimPrefix(mirrorURL, "http://"))
	_, regPort, _ := net.SplitHostPort(hostPort(st.listener("registry")))
	_, key := httpGet(t, nil, mirrorURL+"/apt/site.asc")
	for _, tt := range tests {
		t.Run(tt.tree, func(t *testing.T) {
			root := t.TempDir()
			copyTree(t, "testdata/node/"+tt.tree, root)
			if tt.resolved {
				os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(root, "etc/resolv.conf"))
			}
			out, err := runNode(t, script, "--root", root, "--k8s-prereqs")
			if err != nil {
				t.Fatalf("node.sh --root: %v\n%s", err, out)
			}
			if tt.resolved {
				if l, err := os.Readlink(filepath.Join(root, "etc/resolv.conf")); err != nil || !strings.Contains(l, "systemd/resolve") {
					t.Errorf("resolv.conf is no longer resolved's link: %q %v", l, err)
				}
			}
			got := regularFiles(t, root)
			reg := "127.0.0.1:" + regPort
			normal := map[string]string{}
			for p, body := range got {
				switch {
				case strings.HasSuffix(p, "ca.crt"):
					continue // the CA is the server's; the Rocky test compares it
				case strings.HasSuffix(p, "airgapd-site.sources"):
					head, signed, ok := strings.Cut(body, "Signed-By:\n")
					if !ok || indentKeyLines(signed) != strings.TrimRight(key, "\n") {
						t.Errorf("%s: Signed-By is not the served key:\n%s", p, body)
					}
					body = head + "Signed-By: KEY\n"
				}
				body = strings.ReplaceAll(strings.ReplaceAll(body, reg, "REGISTRY"), ":"+mirrorPort+"/", ":MIRRORPORT/")
				normal[strings.ReplaceAll(p, reg, "REGISTRY")] = body
			}
			compareGolden(t, "testdata/node/"+tt.tree+"-golden", normal)
			out, err = runNode(t, script, "--root", root, "--k8s-prereqs")
			if err != nil || !strings.Contains(out, "already set up: nothing to change") {
				t.Errorf("second run: %v\n%s", err, out)
			}
		})
	}
}

// indentKeyLines undoes deb822's folding of a multi-line value.
func indentKeyLines(v string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(v, "\n"), "\n") {
		l = strings.TrimPrefix(l, " ")
		if l == "." {
			l = ""
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

// regularFiles is snapshot without symlinks (resolved's resolv.conf link
// dangles in a --root tree).
func regularFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
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
