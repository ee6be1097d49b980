// Package e2e runs the airgapd binary as users do — a process with a config
// file, signals, the control socket, real clients and real peers — and checks
// what a user would check. Every test binds port 0 on loopback and keeps its
// data and runtime folders in its own temp dir, so tests run side by side.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/airgapd/airgapd/api"
)

// airgapdBin is the binary under test, built once in TestMain.
var airgapdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "airgapd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Other uids run this binary too (the control-socket test), so the
	// folder must be readable by all.
	os.Chmod(dir, 0o755)
	airgapdBin = filepath.Join(dir, "airgapd")
	args := []string{"build", "-o", airgapdBin}
	if os.Getenv("E2E_RACE") != "" { // E2E_RACE=1: run airgapd under the race detector
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../../cmd/airgapd")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build airgapd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// instance is one airgapd process under test.
type instance struct {
	t      *testing.T
	dir    string
	config string
	cmd    *exec.Cmd
	log    *logBuffer
	exited chan struct{}
	err    error // Wait's result, valid once exited is closed
}

// writeConfig writes a config into dir with data_dir and runtime_dir inside
// it; body holds the service sections.
func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "airgapd.yaml")
	head := fmt.Sprintf("data_dir: %s\nruntime_dir: %s\nlog: { level: debug }\n", filepath.Join(dir, "data"), filepath.Join(dir, "run"))
	if err := os.WriteFile(path, []byte(head+body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs `airgapd serve --config` and waits until it logs that it is
// ready, or fails the test with its output.
func start(t *testing.T, dir, body string, env ...string) *instance {
	t.Helper()
	in := launch(t, dir, body, env...)
	in.waitLog("airgapd ready", 10*time.Second)
	return in
}

// launch starts the process without waiting for readiness.
func launch(t *testing.T, dir, body string, env ...string) *instance {
	t.Helper()
	return launchIn(t, "", dir, body, env...)
}

// launchIn starts airgapd inside network namespace netns ("" = this one).
func launchIn(t *testing.T, netns, dir, body string, env ...string) *instance {
	t.Helper()
	return serveConfig(t, netns, dir, writeConfig(t, dir, body), env...)
}

// serveConfig starts `airgapd serve --config config` inside network
// namespace netns ("" = this one) and kills it when the test ends.
func serveConfig(t *testing.T, netns, dir, config string, env ...string) *instance {
	t.Helper()
	in := &instance{t: t, dir: dir, config: config, log: newLogBuffer(), exited: make(chan struct{})}
	in.cmd = netnsCommand(netns, airgapdBin, "serve", "--config", in.config)
	in.cmd.Env = append(os.Environ(), env...)
	in.cmd.Stdout = in.log
	in.cmd.Stderr = in.log
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		in.err = in.cmd.Wait()
		close(in.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-in.exited:
		default:
			in.cmd.Process.Kill()
			<-in.exited
		}
		if t.Failed() {
			t.Logf("airgapd output:\n%s", in.log.String())
		}
	})
	return in
}

// rewrite replaces the config file's service sections.
func (in *instance) rewrite(body string) { writeConfig(in.t, in.dir, body) }

func (in *instance) signal(sig syscall.Signal) {
	in.t.Helper()
	if err := in.cmd.Process.Signal(sig); err != nil {
		in.t.Fatal(err)
	}
}

// waitExit waits for the process to end and returns its exit code.
func (in *instance) waitExit(limit time.Duration) int {
	in.t.Helper()
	select {
	case <-in.exited:
	case <-time.After(limit):
		in.t.Fatalf("airgapd still running after %s", limit)
	}
	if in.err == nil {
		return 0
	}
	if ee, ok := in.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	in.t.Fatal(in.err)
	return -1
}

// waitLog waits until the log has a line containing s (counting from the
// start of the process), failing the test on timeout or exit.
func (in *instance) waitLog(s string, limit time.Duration) string {
	in.t.Helper()
	return in.waitLogN(s, 1, limit)
}

// waitLogN waits for the n-th line containing s.
func (in *instance) waitLogN(s string, n int, limit time.Duration) string {
	in.t.Helper()
	deadline := time.After(limit)
	for {
		// Take the wake-up channel before looking, so a line written in
		// between still wakes us.
		changed := in.log.changed()
		if lines := in.log.linesWith(s); len(lines) >= n {
			return lines[n-1]
		}
		select {
		case <-changed:
		case <-in.exited:
			if lines := in.log.linesWith(s); len(lines) >= n {
				return lines[n-1]
			}
			in.t.Fatalf("airgapd exited (%v) before logging %q", in.err, s)
		case <-deadline:
			in.t.Fatalf("airgapd did not log %q within %s", s, limit)
		}
	}
}

// status runs `airgapd status --json` as root against this instance.
func (in *instance) status() statusReport {
	in.t.Helper()
	out, err := exec.Command(airgapdBin, "status", "--json", "--socket", filepath.Join(in.dir, "run", "api.sock")).CombinedOutput()
	if err != nil {
		in.t.Fatalf("airgapd status: %v\n%s", err, out)
	}
	var r statusReport
	if err := json.Unmarshal(out, &r); err != nil {
		in.t.Fatalf("decode status: %v\n%s", err, out)
	}
	return r
}

// statusReport is /api/v1/status, decoded here from JSON as any client
// would, into the api package's types.
type statusReport struct{ api.StatusReport }

// detail copies one service's typed status into v (an api type, or a
// struct of the fields a test reads).
func (r statusReport) detail(t *testing.T, name string, v any) {
	t.Helper()
	for _, s := range r.Services {
		if s.Name != name {
			continue
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("encode %s status: %v", name, err)
		}
		var wire struct {
			Detail json.RawMessage `json:"detail"`
		}
		json.Unmarshal(b, &wire)
		if err := json.Unmarshal(wire.Detail, v); err != nil {
			t.Fatalf("decode %s status: %v", name, err)
		}
		return
	}
	t.Fatalf("no %s in status", name)
}

// listener returns the URL web reports for a listener name (ui, mirror,
// registry, control), or "".
func (r statusReport) listener(name string) string {
	if w := r.Service(api.ServiceWeb).Web; w != nil {
		return w.Listener(name)
	}
	return ""
}

func (r statusReport) service(name string) (enabled bool, state string) {
	for _, s := range r.Services {
		if s.Name == name {
			return s.Enabled, s.State
		}
	}
	return false, ""
}

// logBuffer collects a process's output and wakes waiters on each write.
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	wake chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{wake: make(chan struct{})} }

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.wake)
	l.wake = make(chan struct{})
	return len(p), nil
}

func (l *logBuffer) changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wake
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) linesWith(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// netnsCommand builds a command that runs inside network namespace netns, or
// here when netns is "". `ip netns exec` execs the program, so the PID is
// the program's own.
func netnsCommand(netns, name string, args ...string) *exec.Cmd {
	if netns == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", netns, name}, args...)...)
}

// run runs a command with a time limit and returns its combined output.
func run(t *testing.T, limit time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// At the limit the whole process group goes (make's children too), and
	// a grandchild still holding the output pipe cannot keep Wait waiting.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// need skips a test when a peer program is missing and we are not in CI;
// in CI (`make test` installs the peers) a missing peer fails the test.
func need(t *testing.T, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed; `make test` installs it (scripts/install-test-deps.sh)", p)
			}
			t.Skipf("%s is not installed; run `make test`, which installs it", p)
		}
	}
}

// peer finds a peer program on PATH or where install-test-deps caches the
// ones it builds (/var/cache/airgapd-test/NAME/NAME); like need, it skips
// or, in CI, fails when neither has it.
func peer(t *testing.T, name string) string {
	t.Helper()
	if bin, err := exec.LookPath(name); err == nil {
		return bin
	}
	cached := filepath.Join("/var/cache/airgapd-test", name, name)
	if _, err := os.Stat(cached); err == nil {
		return cached
	}
	need(t, name)
	return name
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
