package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNodeBootstrapNTS: node.sh --nts points chrony at the admin host with
// NTS and at the appliance CA, which it installs before chronyd restarts.
func TestNodeBootstrapNTS(t *testing.T) {
	need(t, "sh", "curl", "sha256sum", "base64")
	dir := t.TempDir()
	in := start(t, dir, nodeConfig("127.0.0.1"))
	script := nodeScript(t, in)
	root := t.TempDir()
	copyTree(t, "testdata/node/rocky9", root)
	out, err := runNode(t, script, "--root", root, "--nts", "--no-check")
	if err != nil {
		t.Fatalf("node.sh --nts: %v\n%s", err, out)
	}
	conf, _ := os.ReadFile(filepath.Join(root, "etc/chrony.conf"))
	const ca = "/etc/pki/ca-trust/source/anchors/airgapd-ca.crt"
	for _, want := range []string{"server 127.0.0.1 iburst nts # airgapd\n", "ntstrustedcerts " + ca + " # airgapd\n"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("chrony.conf lacks %q:\n%s", want, conf)
		}
	}
	got, _ := os.ReadFile(filepath.Join(root, ca))
	want, _ := os.ReadFile(filepath.Join(dir, "data", "pki", "ca.crt"))
	if len(want) == 0 || string(got) != string(want) {
		t.Errorf("%s is not the appliance CA", ca)
	}
	// Without --nts, plain NTP as before.
	if out, err := runNode(t, script, "--root", root, "--no-check"); err != nil {
		t.Fatalf("node.sh: %v\n%s", err, out)
	}
	conf, _ = os.ReadFile(filepath.Join(root, "etc/chrony.conf"))
	if !strings.Contains(string(conf), "server 127.0.0.1 iburst # airgapd\n") || strings.Contains(string(conf), "ntstrustedcerts") {
		t.Errorf("chrony.conf without --nts:\n%s", conf)
	}
}
