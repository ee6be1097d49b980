package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// base is a config with the web UI and mirror listeners on free loopback
// ports; tests add to it.
const base = `
web:
  listen: "127.0.0.1:0"
  tls: off
mirror:
  listen: "127.0.0.1:0"
`

func httpGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// socketInode finds the inode of the TCP socket listening on addr
// (host:port), as /proc/net/tcp shows it: the same inode before and after a
// reload means the socket was never closed.
func socketInode(t *testing.T, hostport string) string {
	t.Helper()
	_, portStr, _ := net.SplitHostPort(hostport)
	port, _ := strconv.Atoi(portStr)
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" {
			continue
		}
		i := strings.LastIndexByte(f[1], ':')
		if p, _ := strconv.ParseUint(f[1][i+1:], 16, 16); int(p) == port {
			return f[9]
		}
	}
	t.Fatalf("no listening socket on %s", hostport)
	return ""
}

func hostPort(url string) string {
	return strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
}

func TestHealthAndAPIOverTCP(t *testing.T) {
	in := start(t, t.TempDir(), base)
	st := in.status()
	ui := st.listener("ui")
	if ui == "" {
		t.Fatalf("status lists no ui listener: %+v", st)
	}
	if code, body := httpGet(t, nil, ui+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, _ := httpGet(t, nil, ui+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d", code)
	}
	// No login exists yet: the API over TCP must refuse everything.
	if code, body := httpGet(t, nil, ui+"/api/v1/status"); code != http.StatusUnauthorized || !strings.Contains(body, "authentication required") {
		t.Errorf("/api/v1/status over TCP = %d %q, want 401", code, body)
	}
}

func TestReloadKeepsUnchangedSockets(t *testing.T) {
	in := start(t, t.TempDir(), base)
	st := in.status()
	ui, mirror := st.listener("ui"), st.listener("mirror")
	uiInode, mirrorInode := socketInode(t, hostPort(ui)), socketInode(t, hostPort(mirror))
	if en, _ := st.service("registry"); en {
		t.Fatal("registry enabled before it is configured")
	}

	// Add the registry (a new socket) and change web's config (web is
	// rebuilt on the same sockets).
	in.rewrite(base + `
registry:
  listen: "127.0.0.1:0"
  tls: off
`)
	in.signal(syscall.SIGHUP)
	in.waitLog("config reloaded", 10*time.Second)

	st = in.status()
	if en, _ := st.service("registry"); !en {
		t.Fatalf("registry not enabled after reload: %+v", st.Services)
	}
	reg := st.listener("registry")
	if reg == "" {
		t.Fatal("no registry listener after reload")
	}
	// The new registry serves: /v2/ answers a loopback client (inside the
	// default pull_from) without credentials.
	if code, body := httpGet(t, nil, reg+"/v2/"); code != http.StatusOK {
		t.Errorf("registry /v2/ = %d %q", code, body)
	}
	if got := st.listener("ui"); got != ui {
		t.Errorf("ui moved from %s to %s", ui, got)
	}
	if got := socketInode(t, hostPort(ui)); got != uiInode {
		t.Errorf("ui socket was reopened (inode %s → %s)", uiInode, got)
	}
	if got := socketInode(t, hostPort(mirror)); got != mirrorInode {
		t.Errorf("mirror socket was reopened (inode %s → %s)", mirrorInode, got)
	}
	if code, _ := httpGet(t, nil, ui+"/healthz"); code != 200 {
		t.Errorf("ui /healthz after reload = %d", code)
	}

	// Remove the mirror: its socket closes, the others stay.
	in.rewrite(`
web:
  listen: "127.0.0.1:0"
  tls: off
registry:
  listen: "127.0.0.1:0"
  tls: off
`)
	in.signal(syscall.SIGHUP)
	in.waitLogN("config reloaded", 2, 10*time.Second)
	if c, err := net.DialTimeout("tcp", hostPort(mirror), time.Second); err == nil {
		c.Close()
		t.Errorf("mirror socket %s still open after its section was removed", mirror)
	}
	if got := socketInode(t, hostPort(ui)); got != uiInode {
		t.Errorf("ui socket was reopened on the second reload")
	}
}

func TestReloadInvalidConfigKeepsRunning(t *testing.T) {
	in := start(t, t.TempDir(), base)
	ui := in.status().listener("ui")
	in.rewrite(base + "dns:\n  listen: [\"127.0.0.1:0\"]\n  allow_query: [not-a-network]\n")
	in.signal(syscall.SIGHUP)
	line := in.waitLog("reload failed", 10*time.Second)
	if !strings.Contains(in.log.String(), "not-a-network") {
		t.Errorf("reload error does not name the bad value:\n%s", line)
	}
	st := in.status()
	if en, _ := st.service("dns"); en {
		t.Error("dns enabled from an invalid config")
	}
	if code, _ := httpGet(t, nil, ui+"/healthz"); code != 200 {
		t.Errorf("ui /healthz after failed reload = %d", code)
	}
}

func TestSIGTERMExitsZeroWithin5s(t *testing.T) {
	in := start(t, t.TempDir(), base+`
dns:
  listen: ["127.0.0.1:0"]
ntp:
  listen: ["127.0.0.1:0"]
registry:
  listen: "127.0.0.1:0"
`)
	ui := in.status().listener("ui")
	// An idle keep-alive connection must not hold the stop up.
	c := &http.Client{Timeout: 5 * time.Second}
	httpGet(t, c, ui+"/healthz")
	began := time.Now()
	in.signal(syscall.SIGTERM)
	if code := in.waitExit(5 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	t.Logf("stopped in %s", time.Since(began).Round(time.Millisecond))
	if _, err := os.Stat(filepath.Join(in.dir, "run", "api.sock")); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}
}

// listenNotify stands in for systemd's notify socket.
func listenNotify(t *testing.T, dir string) (string, *net.UnixConn) {
	t.Helper()
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return path, conn
}

func TestSystemdNotify(t *testing.T) {
	dir := t.TempDir()
	sockPath, conn := listenNotify(t, dir)
	msgs := make(chan string, 32)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	next := func(want string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed waiting for %s", want)
				}
				if strings.Contains(m, "WATCHDOG=1") {
					continue
				}
				first := strings.SplitN(m, "\n", 2)[0]
				if first != want {
					t.Fatalf("got notify %q, want %s next", m, want)
				}
				return
			case <-timeout:
				t.Fatalf("no %s within 10s", want)
			}
		}
	}
	in := launch(t, dir, base, "NOTIFY_SOCKET="+sockPath, "WATCHDOG_USEC=2000000", "WATCHDOG_PID=")
	next("READY=1")
	in.signal(syscall.SIGHUP)
	next("RELOADING=1")
	next("READY=1")
	in.signal(syscall.SIGTERM)
	next("STOPPING=1")
	if code := in.waitExit(5 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func TestWatchdogPings(t *testing.T) {
	dir := t.TempDir()
	sockPath, conn := listenNotify(t, dir)
	// WatchdogSec=1s: airgapd must ping at least twice within 2 s.
	launch(t, dir, base, "NOTIFY_SOCKET="+sockPath, "WATCHDOG_USEC=1000000")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	pings := 0
	buf := make([]byte, 4096)
	for pings < 2 {
		n, _, err := conn.ReadFromUnix(buf)
		if err != nil {
			t.Fatalf("after %d watchdog pings: %v", pings, err)
		}
		if strings.Contains(string(buf[:n]), "WATCHDOG=1") {
			pings++
		}
	}
}

func TestCAVerifiesWebCertificate(t *testing.T) {
	in := start(t, t.TempDir(), `
advertise: { name: admin.lab.internal, addresses: [127.0.0.1] }
web:
  listen: "127.0.0.1:0"
  tls: auto
mirror:
  listen: "127.0.0.1:0"
`)
	st := in.status()
	ui, mirror := st.listener("ui"), st.listener("mirror")
	if !strings.HasPrefix(ui, "https://") {
		t.Fatalf("ui listener %q is not HTTPS", ui)
	}
	// Nodes fetch the CA over the plain mirror listener, then trust it.
	code, caPEM := httpGet(t, nil, mirror+"/ca.crt")
	if code != 200 {
		t.Fatalf("/ca.crt = %d", code)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		t.Fatalf("/ca.crt is not a PEM certificate: %q", caPEM)
	}
	for _, name := range []string{"127.0.0.1", "admin.lab.internal"} {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: name},
		}}
		if code, _ := httpGet(t, client, ui+"/healthz"); code != 200 {
			t.Errorf("as %s: /healthz = %d", name, code)
		}
	}
	// A client without the CA must not get through.
	plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}}
	if resp, err := plain.Get(ui + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("a client that does not trust the CA connected")
	}
	// The CA file on disk is what /ca.crt served.
	onDisk, err := os.ReadFile(filepath.Join(in.dir, "data", "pki", "ca.crt"))
	if err != nil || string(onDisk) != caPEM {
		t.Errorf("data_dir/pki/ca.crt differs from /ca.crt (%v)", err)
	}
}

func TestStartFailureStopsStartedServicesInReverse(t *testing.T) {
	dir := t.TempDir()
	// The files exist (so check passes) but hold no certificate: web fails
	// at start, after gateway, dns and mirror have started.
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate\n"), 0o600)
	in := launch(t, dir, fmt.Sprintf(`
gateway: { mode: plan }
dns:
  listen: ["127.0.0.1:0"]
mirror:
  listen: "127.0.0.1:0"
web:
  listen: "127.0.0.1:0"
  tls: { cert: %s, key: %s }
`, bad, bad))
	if code := in.waitExit(10 * time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	out := in.log.String()
	if !strings.Contains(out, "web failed to start") || !strings.Contains(out, bad) {
		t.Errorf("error does not say web failed and why:\n%s", out)
	}
	// Stopped in reverse start order: mirror, dns, gateway.
	order := []string{}
	for _, l := range in.log.linesWith("service stopped") {
		for _, name := range []string{"gateway", "dns", "mirror"} {
			if strings.Contains(l, "service="+name) {
				order = append(order, name)
			}
		}
	}
	if strings.Join(order, ",") != "mirror,dns,gateway" {
		t.Errorf("stop order %v, want mirror,dns,gateway", order)
	}
}
