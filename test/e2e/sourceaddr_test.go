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
// reply's source by route. Port 53 and 123 are listed as users write them
// for nginx and named, "0.0.0.0:53" and "[::]:53" side by side (the IPv6
// wildcard then takes IPv6 only); 5353 and 1123 are a lone dual-stack [::].
func TestRepliesFromAskedAddress(t *testing.T) {
	need(t, "dig", "chronyd")
	l := newAddrLab(t)
	const dnsPair, dnsDual, ntpPair, ntpDual = 53, 5353, 123, 1123
	in := launchIn(t, l.srv, t.TempDir(), fmt.Sprintf(`dns:
  listen: ["0.0.0.0:%d", "[::]:%d", "[::]:%d"]
  allow_query: [10.201.0.0/16, "fd00::/8"]
  allow_recursion: []
  forwarders: []
  zones:
    - name: lab.internal
      records: ["admin 300 A 192.168.10.10", "admin 300 AAAA fd00::10"]
ntp:
  listen: ["0.0.0.0:%d", "[::]:%d", "[::]:%d"]
  allow: [10.201.0.0/16, "fd00::/8"]
  local_stratum: 10
  # One client asks many times in a row; chrony's default would send it a
  # KoD RATE, which is not what this test is about.
  ratelimit: { interval: -4, burst: 64 }
`, dnsPair, dnsPair, dnsDual, ntpPair, ntpPair, ntpDual))
	in.waitLog("ready", 30*time.Second)
	for _, a := range append(append([]string{}, l.v4...), l.v6...) {
		for _, port := range [][2]int{{dnsPair, ntpPair}, {dnsDual, ntpDual}} {
			l.mustAnswer(t, a, port[0], port[1])
		}
	}
}

// TestVIPAddresses: a keepalived-style VIP, IPv4 and IPv6, added to the
// interface after airgapd started, is answered from on the wildcard
// sockets, and on sockets bound to the VIP itself before it existed
// (IP_FREEBIND, what Unbound's ip-freebind does): once it arrives, not
// while it is away, and again when it comes back.
func TestVIPAddresses(t *testing.T) {
	need(t, "dig", "chronyd")
	l := newAddrLab(t)
	vip4, vip6 := strings.TrimSuffix(l.v4[0], ".1")+".10", strings.TrimSuffix(l.v6[0], "::1")+"::10"
	const dnsWild, dnsVIP, ntpWild, ntpVIP = 53, 5300, 123, 1230
	in := launchIn(t, l.srv, t.TempDir(), fmt.Sprintf(`dns:
  listen: ["0.0.0.0:%[1]d", "[::]:%[1]d", "%[3]s", "%[4]s"]
  allow_query: [10.201.0.0/16, "fd00::/8"]
  allow_recursion: []
  forwarders: []
  zones:
    - name: lab.internal
      records: ["admin 300 A 192.168.10.10"]
ntp:
  listen: ["0.0.0.0:%[2]d", "[::]:%[2]d", "%[5]s", "%[6]s"]
  allow: [10.201.0.0/16, "fd00::/8"]
  local_stratum: 10
  ratelimit: { interval: -4, burst: 64 }
`, dnsWild, ntpWild,
		net.JoinHostPort(vip4, strconv.Itoa(dnsVIP)), net.JoinHostPort(vip6, strconv.Itoa(dnsVIP)),
		net.JoinHostPort(vip4, strconv.Itoa(ntpVIP)), net.JoinHostPort(vip6, strconv.Itoa(ntpVIP))))
	in.waitLog("ready", 30*time.Second)
	for round, step := range []string{"added", "back"} {
		l.ip(t, l.srv, "addr", "add", vip4+"/24", "dev", l.srvLink)
		l.ip(t, l.srv, "addr", "add", vip6+"/64", "dev", l.srvLink, "nodad")
		for _, vip := range []string{vip4, vip6} {
			t.Logf("VIP %s %s", vip, step)
			l.mustAnswer(t, vip, dnsWild, ntpWild)
			l.mustAnswer(t, vip, dnsVIP, ntpVIP)
		}
		if round == 1 {
			break
		}
		// The VIP moves to the other admin host.
		l.ip(t, l.srv, "addr", "del", vip4+"/24", "dev", l.srvLink)
		l.ip(t, l.srv, "addr", "del", vip6+"/64", "dev", l.srvLink)
		if out, err := digIn(l.cli, net.JoinHostPort(vip4, strconv.Itoa(dnsVIP)), "admin.lab.internal", "A", "+time=1", "+tries=1"); err == nil && strings.Contains(out, "192.168.10.10") {
			t.Errorf("an answer from %s while the VIP is away:\n%s", vip4, out)
		}
	}
}

// mustAnswer asks addr over DNS (UDP and TCP, on dnsPort) and NTP
// (chronyd -Q, on ntpPort) from the client namespace.
func (l *addrLab) mustAnswer(t *testing.T, addr string, dnsPort, ntpPort int) {
	t.Helper()
	server := net.JoinHostPort(addr, strconv.Itoa(dnsPort))
	for _, proto := range []string{"+notcp", "+tcp"} {
		out, err := digIn(l.cli, server, "admin.lab.internal", "A", proto, "+time=2", "+tries=2")
		if err != nil || !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "192.168.10.10") || strings.Contains(out, "unexpected source") {
			t.Errorf("dig %s @%s: %v\n%s", proto, server, err, out)
		}
	}
	if off, ok, out := chronyQIn(t, l.cli, addr, ntpPort, 10); !ok {
		t.Errorf("chronyd -Q server %s port %d did not sync:\n%s", addr, ntpPort, out)
	} else {
		t.Logf("chronyd -Q server %s port %d: offset %g s", addr, ntpPort, off)
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
