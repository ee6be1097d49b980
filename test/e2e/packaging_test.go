package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdUnitVerifies runs `systemd-analyze verify` on the shipped unit
// (via `make verify-unit`, which points ExecStart at a stand-in binary).
func TestSystemdUnitVerifies(t *testing.T) {
	need(t, "systemd-analyze", "make")
	out, err := run(t, time.Minute, "make", "-C", "../..", "--no-print-directory", "verify-unit")
	if err != nil {
		t.Fatalf("make verify-unit: %v\n%s", err, out)
	}
	if !strings.Contains(out, "verify-unit: packaging/airgapd.service ok") {
		t.Errorf("unexpected output:\n%s", out)
	}
}

// TestRPMContents builds the RPM with nfpm and reads it back with rpm, as a
// Rocky admin host would before installing it.
func TestRPMContents(t *testing.T) {
	need(t, "rpm", "make", "git")
	dist := t.TempDir()
	out, err := run(t, 10*time.Minute, "make", "-C", "../..", "--no-print-directory", "rpm", "RPM="+filepath.Join(dist, "airgapd.x86_64.rpm"))
	if err != nil {
		t.Fatalf("make rpm: %v\n%s", err, out)
	}
	rpmFile := filepath.Join(dist, "airgapd.x86_64.rpm")
	if _, err := os.Stat(rpmFile); err != nil {
		t.Fatalf("no RPM after make rpm: %v\n%s", err, out)
	}
	list, err := run(t, time.Minute, "rpm", "-qlp", rpmFile)
	if err != nil {
		t.Fatalf("rpm -qlp: %v\n%s", err, list)
	}
	for _, want := range []string{"/usr/bin/airgapd", "/usr/lib/systemd/system/airgapd.service", "/etc/airgapd/airgapd.yaml", "/var/lib/airgapd"} {
		if !strings.Contains(list, want+"\n") {
			t.Errorf("rpm -qlp lacks %s:\n%s", want, list)
		}
	}
	cfg, err := run(t, time.Minute, "rpm", "-qcp", rpmFile)
	if err != nil || !strings.Contains(cfg, "/etc/airgapd/airgapd.yaml") {
		t.Errorf("airgapd.yaml is not marked as a config file: %v\n%s", err, cfg)
	}
}
