package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name     string
		file     string
		wantExit int
		// each regexp must match its own output line, in order
		want []string
	}{
		{name: "lab", file: "../../examples/lab.yaml", wantExit: 0, want: []string{`examples/lab.yaml: ok`}},
		{name: "dev", file: "../../examples/dev.yaml", wantExit: 0, want: []string{`examples/dev.yaml: ok`}},
		{name: "three problems", file: "testdata/three-problems.yaml", wantExit: 1, want: []string{
			`three-problems.yaml:7:3: dns.alow_query: unknown key "alow_query" \(hint: did you mean "allow_query"\?\)`,
			`three-problems.yaml:8:21: dns.allow_recursion\[0\]: "192.168.10.0/33" is not a network`,
			`three-problems.yaml:10:11: mirror.listen: tcp 127.0.0.1:18080 is already used by web.listen`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(airgapdBin, "check", "--config", tc.file)
			out, err := cmd.Output()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantExit {
				t.Errorf("exit %d, want %d", code, tc.wantExit)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(tc.want), out)
			}
			for i, re := range tc.want {
				if !regexp.MustCompile(re).MatchString(lines[i]) {
					t.Errorf("line %d = %q\nwant match %s", i+1, lines[i], re)
				}
			}
		})
	}
}

func TestDevYAMLIsTheBuiltInDefault(t *testing.T) {
	a, err := os.ReadFile("../../examples/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../server/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Fatal("examples/dev.yaml and server/dev.yaml (the built-in defaults) differ; copy one over the other")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestPortHeldByNamed: the usual clash on a seed admin host is BIND still
// running; the error must name it.
func TestPortHeldByNamed(t *testing.T) {
	need(t, "named")
	dir := t.TempDir()
	port := freePort(t)
	conf := filepath.Join(dir, "named.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
};
controls { };
`, dir, port)), 0o644)
	named := exec.Command("named", "-c", conf, "-g", "-u", "root")
	log := newLogBuffer()
	named.Stdout, named.Stderr = log, log
	if err := named.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { named.Process.Kill(); named.Wait() })
	// Ready when named accepts TCP on its port.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("named did not start:\n%s", log.String())
		}
		select {
		case <-log.changed():
		case <-time.After(100 * time.Millisecond):
		}
	}

	in := launch(t, dir, fmt.Sprintf(`
dns:
  listen: ["127.0.0.1:%d"]
`, port))
	if code := in.waitExit(10 * time.Second); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	want := fmt.Sprintf("127.0.0.1:%d is already in use by named (pid %d)", port, named.Process.Pid)
	if !strings.Contains(in.log.String(), want) {
		t.Errorf("error does not name named; want %q in:\n%s", want, in.log.String())
	}
}

func TestStatusOverControlSocket(t *testing.T) {
	in := start(t, t.TempDir(), base)
	out, err := exec.Command(airgapdBin, "status", "--config", in.config).CombinedOutput()
	if err != nil {
		t.Fatalf("status as root: %v\n%s", err, out)
	}
	for _, want := range []string{"ready", "web", "up", "mirror", "0 repos", "dns", "disabled"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}

	sock := filepath.Join(in.dir, "run", "api.sock")
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode %v, want 0600", st.Mode().Perm())
	}
	// The test dirs must be traversable for another uid to even try.
	for d := in.dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(d, fi.Mode().Perm()|0o011)
		}
	}
	asNobody := func() (string, error) {
		cmd := exec.Command(airgapdBin, "status", "--socket", sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if os.Getuid() != 0 {
		t.Skip("switching to another uid needs root")
	}
	// Mode 0600: the kernel refuses the connection.
	if out, err := asNobody(); err == nil || !strings.Contains(out, "for root only") {
		t.Errorf("status as nobody with mode 0600: err=%v\n%s", err, out)
	}
	// Even with the mode loosened by hand, SO_PEERCRED refuses the caller.
	os.Chmod(sock, 0o666)
	if out, err := asNobody(); err == nil || !strings.Contains(out, "403") {
		t.Errorf("status as nobody with mode 0666: err=%v\n%s", err, out)
	}
}

// TestSmallTools: `airgapd hash` prints a bcrypt hash of stdin's password
// (what registry.users' password_hash takes), and
// `version` and `--version` print one line in one format.
func TestSmallTools(t *testing.T) {
	cmd := exec.Command(airgapdBin, "hash")
	cmd.Stdin = strings.NewReader("a long registry password\n")
	out, err := cmd.Output()
	hash := strings.TrimSpace(string(out))
	if err != nil || bcrypt.CompareHashAndPassword([]byte(hash), []byte("a long registry password")) != nil {
		t.Fatalf("airgapd hash = %q (%v): not a bcrypt hash of the password", hash, err)
	}
	cmd = exec.Command(airgapdBin, "hash")
	cmd.Stdin = strings.NewReader("short\n")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "at least 8 characters") {
		t.Errorf("airgapd hash of a short password: %v %s", err, out)
	}
	v1, err1 := run(t, 10*time.Second, airgapdBin, "version")
	v2, err2 := run(t, 10*time.Second, airgapdBin, "--version")
	if err1 != nil || err2 != nil || v1 != v2 || !strings.HasPrefix(v1, "airgapd ") || strings.Count(v1, "\n") != 1 {
		t.Errorf("version %q (%v) and --version %q (%v) differ", v1, err1, v2, err2)
	}
}

// TestStatusCACert: `airgapd status --api https://…` against the appliance
// CA's certificate says to give --cacert, and with --cacert ca.crt the TLS
// handshake passes (the bogus token is then refused by the server).
func TestStatusCACert(t *testing.T) {
	dir := t.TempDir()
	in := start(t, dir, "web:\n  listen: 127.0.0.1:0\n  tls: auto\n")
	ui := in.status().listener("ui")
	if !strings.HasPrefix(ui, "https://") {
		t.Fatalf("the UI is not on HTTPS: %s", ui)
	}
	out, err := run(t, 20*time.Second, airgapdBin, "status", "--api", ui, "--token", "bogus")
	if err == nil || !strings.Contains(out, "--cacert") {
		t.Errorf("status --api without the CA: %v\n%s\nwant a hint naming --cacert", err, out)
	}
	out, err = run(t, 20*time.Second, airgapdBin, "status", "--api", ui, "--token", "bogus", "--cacert", filepath.Join(dir, "data", "pki", "ca.crt"))
	if err == nil || strings.Contains(out, "x509") || strings.Contains(out, "certificate") {
		t.Errorf("status --api --cacert: %v\n%s\nwant the handshake to pass and the token refused", err, out)
	}
}
