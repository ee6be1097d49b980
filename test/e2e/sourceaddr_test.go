package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// addrLab is two network namespaces joined by one veth: srv, whose end
// has two IPv4 and two IPv6 addresses (a host with an alias or a VIP), and
// cli, the node asking.
type addrLab struct {
	t        *testing.T
	srv, cli string
	srvLink  string
	v4, v6   []string // srv's addresses
}

func newAddrLab(t *testing.T) *addrLab {
	t.Helper()
	need(t, "ip")
	if os.Getuid() != 0 {
		t.Skip("network namespaces need root")
	}
	id := os.Getpid() % 100000
	l := &addrLab{t: t, srv: fmt.Sprintf("agd-sa-s%d", id), cli: fmt.Sprintf("agd-sa-c%d", id), srvLink: fmt.Sprintf("sa%ds", id)}
	sub := id % 250
	l.v4 = []string{fmt.Sprintf("10.201.%d.1", sub), fmt.Sprintf("10.201.%d.2", sub)}
	l.v6 = []string{fmt.Sprintf("fd00:201:%x::1", sub), fmt.Sprintf("fd00:201:%x::2", sub)}
	for _, ns := range []string{l.srv, l.cli} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	cliLink := fmt.Sprintf("sa%dc", id)
	l.ip(t, "", "link", "add", l.srvLink, "netns", l.srv, "type", "veth", "peer", "name", cliLink, "netns", l.cli)
	for _, ns := range []string{l.srv, l.cli} {
		l.ip(t, ns, "link", "set", "lo", "up")
	}
	for _, a := range l.v4 {
		l.ip(t, l.srv, "addr", "add", a+"/24", "dev", l.srvLink)
	}
	for _, a := range l.v6 {
		// nodad: the address is usable at once, not after duplicate
		// address detection.
		l.ip(t, l.srv, "addr", "add", a+"/64", "dev", l.srvLink, "nodad")
	}
	l.ip(t, l.cli, "addr", "add", fmt.Sprintf("10.201.%d.100/24", sub), "dev", cliLink)
	l.ip(t, l.cli, "addr", "add", fmt.Sprintf("fd00:201:%x::100/64", sub), "dev", cliLink, "nodad")
	l.ip(t, l.srv, "link", "set", l.srvLink, "up")
	l.ip(t, l.cli, "link", "set", cliLink, "up")
	return l
}

func (l *addrLab) ip(t *testing.T, ns string, args ...string) {
	t.Helper()
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v\n%s", args, err, out)
	}
}

// TestRepliesFromAskedAddress: airgapd on wildcard sockets, in a namespace
// whose interface has two IPv4 and two IPv6 addresses; a node asks each of
// them. dig over UDP accepts only an answer from the address it asked
// (else "reply from unexpected source" and a time-out), and chronyd -Q only
// a reply from its server's address, so both fail when the kernel picks the
// reply's source by route.
func TestRepliesFromAskedAddress(t *testing.T) {
	need(t, "dig", "chronyd")
	l := newAddrLab(t)
	// Port pairs: an IPv4-only wildcard and a lone dual-stack [::].
	const dns4, dnsDual, ntp4, ntpDual = 53, 5353, 123, 1123
	dir := t.TempDir()
	in := launchIn(t, l.srv, dir, fmt.Sprintf(`dns:
  listen: ["0.0.0.0:%d", "[::]:%d"]
  allow_query: [10.201.0.0/16, "fd00::/8"]
  allow_recursion: []
  forwarders: []
  zones:
    - name: lab.internal
      records: ["admin 300 A 192.168.10.10", "admin 300 AAAA fd00::10"]
ntp:
  listen: ["0.0.0.0:%d", "[::]:%d"]
  allow: [10.201.0.0/16, "fd00::/8"]
  local_stratum: 10
  # One client asks six times in a row; chrony's default would send it a
  # KoD RATE, which is not what this test is about.
  ratelimit: { interval: -4, burst: 64 }
`, dns4, dnsDual, ntp4, ntpDual))
	in.waitLog("ready", 30*time.Second)

	type target struct {
		addr string
		dns  int
		ntp  int
	}
	var targets []target
	for _, a := range l.v4 {
		targets = append(targets, target{a, dns4, ntp4}, target{a, dnsDual, ntpDual})
	}
	for _, a := range l.v6 {
		targets = append(targets, target{a, dnsDual, ntpDual})
	}
	for _, tg := range targets {
		for _, proto := range []string{"+notcp", "+tcp"} {
			out, err := digIn(l.cli, net.JoinHostPort(tg.addr, strconv.Itoa(tg.dns)), "admin.lab.internal", "A", proto, "+time=2", "+tries=2")
			if err != nil || !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "192.168.10.10") || strings.Contains(out, "unexpected source") {
				t.Errorf("dig %s @%s: %v\n%s", proto, net.JoinHostPort(tg.addr, strconv.Itoa(tg.dns)), err, out)
			}
		}
		if off, ok, out := chronyQIn(t, l.cli, tg.addr, tg.ntp, 10); !ok {
			t.Errorf("chronyd -Q server %s port %d did not sync:\n%s", tg.addr, tg.ntp, out)
		} else {
			t.Logf("chronyd -Q server %s port %d: offset %g s", tg.addr, tg.ntp, off)
		}
	}
}

// chronyQIn runs a one-shot chrony client in namespace ns against
// addr:port; it returns the offset it printed, or ok false.
func chronyQIn(t *testing.T, ns, addr string, port, limit int) (offset float64, ok bool, out string) {
	t.Helper()
	dir, err := os.MkdirTemp(t.TempDir(), "q")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "client.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("server %s port %d iburst\nport 0\ncmdport 0\npidfile %s/chronyd.pid\n", addr, port, dir)), 0o600)
	args := []string{"netns", "exec", ns, "chronyd", "-Q", "-u", "root", "-t", strconv.Itoa(limit), "-f", conf}
	out, err = run(t, time.Duration(limit+10)*time.Second, "ip", args...)
	m := wrongBy.FindStringSubmatch(out)
	if err != nil || m == nil {
		return 0, false, out
	}
	v, perr := strconv.ParseFloat(m[1], 64)
	return v, perr == nil, out
}
