package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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
	if !strings.Contains(list, "/usr/lib/firewalld/services/airgapd.xml\n") {
		t.Errorf("rpm -qlp lacks the firewalld service file:\n%s", list)
	}
	checkScriptlets(t, rpmFile)
}

// checkScriptlets reads the RPM's scriptlets (`rpm -qp --scripts`, as an
// admin would) and runs each with sh for every $1 rpm passes, against a
// stand-in systemctl that records what it was asked: the %systemd_post,
// %systemd_preun and %systemd_postun_with_restart behaviour.
func checkScriptlets(t *testing.T, rpmFile string) {
	t.Helper()
	scripts, err := run(t, time.Minute, "rpm", "-qp", "--scripts", rpmFile)
	if err != nil {
		t.Fatalf("rpm -qp --scripts: %v\n%s", err, scripts)
	}
	for _, want := range []string{"postinstall scriptlet", "preuninstall scriptlet", "postuninstall scriptlet",
		"preset airgapd.service", "disable --now airgapd.service", "try-restart airgapd.service"} {
		if !strings.Contains(scripts, want) {
			t.Errorf("rpm -qp --scripts lacks %q:\n%s", want, scripts)
		}
	}
	bin := t.TempDir()
	calls := filepath.Join(bin, "calls")
	stub := "#!/bin/sh\necho \"$*\" >>" + calls + "\n[ \"$1\" = is-active ] && exit 3\nexit 0\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tag, arg string // the scriptlet's query tag, and $1
		want     string // systemctl calls, one per line
	}{
		{"POSTIN", "1", "daemon-reload\n--no-reload preset airgapd.service\nis-active --quiet firewalld"}, // install
		{"POSTIN", "2", "daemon-reload\nis-active --quiet firewalld"},                                     // upgrade
		{"PREUN", "0", "--no-reload disable --now airgapd.service"},                                       // erase
		{"PREUN", "1", ""}, // upgrade
		{"POSTUN", "1", "daemon-reload\ntry-restart airgapd.service"}, // upgrade
		{"POSTUN", "0", "daemon-reload"},                              // erase
	}
	for _, tt := range tests {
		body, err := run(t, time.Minute, "rpm", "-qp", "--qf", "%{"+tt.tag+"}", rpmFile)
		if err != nil {
			t.Fatalf("rpm --qf %%{%s}: %v\n%s", tt.tag, err, body)
		}
		os.Remove(calls)
		cmd := exec.Command("sh", "-c", body, "scriptlet", tt.arg)
		cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s scriptlet with $1=%s: %v\n%s", tt.tag, tt.arg, err, out)
		}
		got, _ := os.ReadFile(calls)
		if strings.TrimSpace(string(got)) != tt.want {
			t.Errorf("%s scriptlet with $1=%s ran systemctl\n%s\nwant\n%s", tt.tag, tt.arg, got, tt.want)
		}
	}
}

// TestFirewalldServiceFile loads the shipped firewalld service with
// firewalld's own `firewall-offline-cmd --new-service-from-file`, into a
// configuration folder of the test's (no firewalld runs; the host's firewall
// is not touched). scripts/install-test-deps.sh unpacks Debian's firewalld
// package into AIRGAPD_FIREWALLD (default /var/cache/airgapd-test/firewalld).
func TestFirewalldServiceFile(t *testing.T) {
	root := os.Getenv("AIRGAPD_FIREWALLD")
	if root == "" {
		root = "/var/cache/airgapd-test/firewalld"
	}
	tool := filepath.Join(root, "usr/bin/firewall-offline-cmd")
	if _, err := os.Stat(tool); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("firewall-offline-cmd not unpacked at %s (scripts/install-test-deps.sh does it): %v", tool, err)
		}
		t.Skipf("no firewall-offline-cmd at %s", tool)
	}
	sys, def := t.TempDir(), filepath.Join(root, "usr/lib/firewalld")
	conf, err := os.ReadFile(filepath.Join(root, "etc/firewalld/firewalld.conf"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(sys, "firewalld.conf"), conf, 0o644)
	fwcmd := func(args ...string) (string, error) {
		// Debian's python3 (with gi), not whatever python3 is first in PATH.
		return run(t, time.Minute, "/usr/bin/python3", append([]string{tool, "--system-config", sys, "--default-config", def}, args...)...)
	}
	if out, err := fwcmd("--new-service-from-file=../../packaging/firewalld/airgapd.xml", "--name=airgapd"); err != nil || !strings.Contains(out, "success") {
		t.Fatalf("firewall-offline-cmd refused packaging/firewalld/airgapd.xml: %v\n%s", err, out)
	}
	out, err := fwcmd("--info-service=airgapd")
	if err != nil {
		t.Fatalf("--info-service: %v\n%s", err, out)
	}
	for _, port := range []string{"53/udp", "53/tcp", "123/udp", "80/tcp", "8443/tcp", "5000/tcp"} {
		if !strings.Contains(out, port) {
			t.Errorf("the airgapd service opens no %s:\n%s", port, out)
		}
	}
}

// TestSystemdUnitSecurity: `systemd-analyze security --offline=true` rates
// the shipped unit (ExecStart pointed at a stand-in, as verify-unit does)
// below the 4.8 it had before the sandboxing of issue 28.
func TestSystemdUnitSecurity(t *testing.T) {
	need(t, "systemd-analyze")
	dir := t.TempDir()
	stand := filepath.Join(dir, "airgapd")
	os.WriteFile(stand, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	unit, err := os.ReadFile("../../packaging/airgapd.service")
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "airgapd.service")
	os.WriteFile(copyPath, []byte(strings.ReplaceAll(string(unit), "/usr/bin/airgapd", stand)), 0o644)
	out, _ := run(t, time.Minute, "systemd-analyze", "security", "--offline=true", "--no-pager", copyPath)
	m := regexp.MustCompile(`Overall exposure level for airgapd.service: ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	level, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("systemd-analyze security: %s", m[0])
	if level >= 4.8 {
		t.Errorf("exposure %.1f, want below 4.8 (the unit before sandboxing)", level)
	}
}
