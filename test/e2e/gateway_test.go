package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/airgapd/airgapd/api"
)

// gwLab is three network namespaces joined by veths, as PEERS.md draws it:
//
//	node 10.200.10.2 ── 10.200.10.1 admin 10.200.20.1 ── 10.200.20.2 wan
//
// node routes via admin; wan has no route back to 10.200.10.0/24, so node
// reaches wan only when admin masquerades. airgapd runs inside admin.
type gwLab struct {
	t                *testing.T
	node, admin, wan string // namespace names
	an, aw           string // admin's veths: towards node, towards wan
	wanAddr          string // the listener in wan
	nodeAddr         string // the listener in node, the port forward's target
	dir              string // config, data and runtime folders
	config           string
}

// TestGatewayNAT runs `airgapd gateway plan|apply|down` and `airgapd serve`
// inside a network namespace and checks what a node would see, that
// foreign rules stay as they are, that drift is repaired, that restarts and
// SIGTERM leave exactly the rules, and that the host is never touched.
func TestGatewayNAT(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("network namespaces and iptables need root")
	}
	need(t, "ip", "iptables", "iptables-save", "iptables-restore", "nft")
	hostBefore := hostNetfilter(t)
	// Registered first, so it runs last: after the namespaces are gone.
	t.Cleanup(func() {
		if after := hostNetfilter(t); after != hostBefore {
			t.Errorf("the host's own netfilter or ip_forward changed:\n--- before\n%s\n--- after\n%s", hostBefore, after)
		}
	})
	lab := newGWLab(t)
	const interval = 2 * time.Second
	lab.writeConfig(fmt.Sprintf(`
gateway:
  mode: apply
  ip_forward: true
  masquerade: [{ source: 10.200.10.0/24, out_interface: %[1]s }]
  dnat: [{ in_interface: %[1]s, proto: tcp, port: 8080, to: "%[2]s" }]
  routes: [{ destination: 10.200.99.0/24, via: 10.200.20.2, dev: %[1]s }]
  rp_filter: { %[3]s: 2 }
  reconcile_every: %[4]s
`, lab.aw, lab.nodeAddr, lab.an, interval))
	foreign := lab.iptablesSave()

	t.Run("plan changes nothing", func(t *testing.T) {
		out := lab.cli(t, "plan")
		for _, want := range []string{
			"-A AIRGAPD-POSTROUTING -s 10.200.10.0/24 -o " + lab.aw + " -j MASQUERADE",
			"-I POSTROUTING 1 -j AIRGAPD-POSTROUTING",
			"-I FORWARD 1 -j AIRGAPD-FORWARD",
			"sysctl -w net.ipv4.ip_forward=1",
			"sysctl -w net.ipv4.conf." + lab.an + ".rp_filter=2",
			"ip route replace 10.200.99.0/24 via 10.200.20.2 dev " + lab.aw + " proto 147",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("plan lacks %q:\n%s", want, out)
			}
		}
		if got := lab.iptablesSave(); got != foreign {
			t.Errorf("plan changed iptables:\n%s\nwant:\n%s", got, foreign)
		}
		if v := lab.ipForward(); v != "0" {
			t.Errorf("plan changed ip_forward to %s", v)
		}
	})

	t.Run("no way out before apply", func(t *testing.T) {
		lab.mustNotConnect(t)
		if _, err := lab.dial(lab.wan, "10.200.20.1:8080", 1500*time.Millisecond); err == nil {
			t.Error("the port forward answered before apply")
		}
	})

	t.Run("apply", func(t *testing.T) {
		out := lab.cli(t, "apply")
		if !strings.Contains(out, "applied") {
			t.Errorf("apply output:\n%s", out)
		}
		lab.mustConnectFromAdmin(t)
		lab.foreignUnchanged(t, foreign)
		if v := lab.ipForward(); v != "1" {
			t.Errorf("ip_forward %s after apply", v)
		}
		// The port forward: wan reaches node's listener through admin.
		if from, err := lab.dial(lab.wan, "10.200.20.1:8080", 5*time.Second); err != nil || from != "10.200.20.2" {
			t.Errorf("port forward: seen from %q, %v; want wan's 10.200.20.2", from, err)
		}
		if r := lab.routes(t); !strings.Contains(r, "10.200.99.0/24 via 10.200.20.2 dev "+lab.aw) {
			t.Errorf("admin's airgapd routes:\n%s", r)
		}
		if v := lab.cat(t, "/proc/sys/net/ipv4/conf/"+lab.an+"/rp_filter"); v != "2" {
			t.Errorf("rp_filter %s, want 2", v)
		}
		if out := lab.cli(t, "apply"); !strings.Contains(out, "no changes") {
			t.Errorf("second apply changed something:\n%s", out)
		}
	})

	t.Run("down", func(t *testing.T) {
		lab.cli(t, "down")
		if s := lab.iptablesSave(); strings.Contains(s, "AIRGAPD") {
			t.Errorf("AIRGAPD chains left after down:\n%s", s)
		}
		lab.foreignUnchanged(t, foreign)
		lab.mustNotConnect(t)
		if r := lab.routes(t); r != "" {
			t.Errorf("airgapd routes left after down:\n%s", r)
		}
	})

	t.Run("serve reconciles and repairs drift", func(t *testing.T) {
		in := lab.serve(t)
		in.waitLog("gateway reconciled", 15*time.Second)
		lab.mustConnectFromAdmin(t)
		// One quiet reconcile pass changes nothing foreign either.
		in.waitLogN("gateway in sync", len(in.log.linesWith("gateway in sync"))+1, interval+5*time.Second)
		lab.foreignUnchanged(t, foreign)

		// Someone flushes nat POSTROUTING and airgapd's nat chains, in one
		// transaction.
		seen := len(in.log.linesWith("gateway drift repaired"))
		lab.restore(t, "*nat\n-F POSTROUTING\n-F AIRGAPD-POSTROUTING\n-F AIRGAPD-PREROUTING\nCOMMIT\n")
		flushed := time.Now()
		in.waitLogN("gateway drift repaired", seen+1, interval+10*time.Second)
		took := time.Since(flushed)
		t.Logf("drift repaired %s after the flush (reconcile_every %s)", took.Round(time.Millisecond), interval)
		// The next tick comes within one interval; the slack is for the
		// repair itself on a busy machine.
		if took > interval+2*time.Second {
			t.Errorf("drift repaired after %s; want within one reconcile interval (%s)", took, interval)
		}
		in.waitLogN("gateway in sync", len(in.log.linesWith("gateway in sync"))+1, interval+5*time.Second)
		lab.mustConnectFromAdmin(t)
		// The flush took the foreign jump too; its owner puts it back.
		lab.ipt(t, "-t", "nat", "-A", "POSTROUTING", "-j", "LIBVIRT_PRT")
		lab.foreignUnchanged(t, foreign)

		// Status shows the counters as of the last pass: wait for one after
		// the connection.
		in.waitLogN("gateway in sync", len(in.log.linesWith("gateway in sync"))+1, interval+5*time.Second)

		st := lab.gatewayStatus(t)
		if st.Backend == "" || st.IPForward != "1" || len(st.Drift) == 0 {
			t.Errorf("status: backend %q, ip_forward %q, drift %v", st.Backend, st.IPForward, st.Drift)
		}
		var masq bool
		for _, r := range st.Rules {
			if r.Chain == "AIRGAPD-POSTROUTING" && strings.HasSuffix(r.Rule, "-j MASQUERADE") {
				masq = true
				if r.Packets == 0 {
					t.Errorf("MASQUERADE rule counted no packets after a connection: %+v", r)
				}
			}
		}
		if !masq {
			t.Errorf("status lists no MASQUERADE rule: %+v", st.Rules)
		}
		metrics := lab.metrics(t)
		// A flush that lands between two reads of one pass is repaired in
		// two passes, so drift may count more than 1.
		for _, want := range []string{`(?m)^airgapd_gateway_rule_packets_total\{chain="AIRGAPD-POSTROUTING",rule="[^"]*MASQUERADE",table="nat"\} [1-9]`,
			`(?m)^airgapd_gateway_drift_events_total [1-9]`, `(?m)^airgapd_gateway_ip_forward 1$`, `(?m)^airgapd_gateway_in_sync 1$`} {
			if !regexp.MustCompile(want).MatchString(metrics) {
				t.Errorf("/metrics lacks %s:\n%s", want, metrics)
			}
		}

		in.signal(syscall.SIGTERM)
		if code := in.waitExit(5 * time.Second); code != 0 {
			t.Fatalf("exit %d after SIGTERM", code)
		}
		// No airgapd running: the nodes' way out is still there.
		lab.mustConnectFromAdmin(t)
	})

	t.Run("restarts add nothing twice", func(t *testing.T) {
		for i := range 3 {
			in := lab.serve(t)
			in.waitLog("gateway reconciled", 15*time.Second)
			in.signal(syscall.SIGTERM)
			if code := in.waitExit(5 * time.Second); code != 0 {
				t.Fatalf("restart %d: exit %d after SIGTERM", i+1, code)
			}
		}
		nat := lab.ipt(t, "-t", "nat", "-S")
		if n := strings.Count(nat, "-j MASQUERADE"); n != 1 {
			t.Errorf("%d MASQUERADE rules after three restarts, want 1:\n%s", n, nat)
		}
		for _, jump := range []string{"-A POSTROUTING -j AIRGAPD-POSTROUTING", "-A PREROUTING -j AIRGAPD-PREROUTING"} {
			if n := strings.Count(nat, jump+"\n"); n != 1 {
				t.Errorf("%d × %q, want 1:\n%s", n, jump, nat)
			}
		}
		if n := strings.Count(lab.ipt(t, "-S", "FORWARD"), "-j AIRGAPD-FORWARD"); n != 1 {
			t.Errorf("%d jumps to AIRGAPD-FORWARD, want 1", n)
		}
		lab.mustConnectFromAdmin(t)
		lab.foreignUnchanged(t, foreign)
	})

	t.Run("disabling the section removes the rules", func(t *testing.T) {
		in := lab.serve(t)
		in.waitLog("gateway reconciled", 15*time.Second)
		lab.writeConfig("") // no gateway section
		in.signal(syscall.SIGHUP)
		in.waitLog("gateway disabled; rules removed", 10*time.Second)
		if s := lab.iptablesSave(); strings.Contains(s, "AIRGAPD") {
			t.Errorf("AIRGAPD chains left after the section was removed:\n%s", s)
		}
		lab.foreignUnchanged(t, foreign)
		lab.mustNotConnect(t)
		in.signal(syscall.SIGTERM)
		if code := in.waitExit(5 * time.Second); code != 0 {
			t.Fatalf("exit %d after SIGTERM", code)
		}
	})

	t.Run("firewalld on nftables is reported", func(t *testing.T) {
		lab.sh(t, "ip", "netns", "exec", lab.admin, "nft", "add", "table", "inet", "firewalld")
		defer lab.sh(t, "ip", "netns", "exec", lab.admin, "nft", "delete", "table", "inet", "firewalld")
		lab.writeConfig(fmt.Sprintf("gateway:\n  masquerade: [{ source: 10.200.10.0/24, out_interface: %s }]\n", lab.aw))
		if out := lab.cli(t, "plan"); !strings.Contains(out, "note: firewalld is active") || !strings.Contains(out, "firewall-cmd") {
			t.Errorf("plan does not say what firewalld needs:\n%s", out)
		}
	})
}

// hostNetfilter is the host's iptables-save (comments and counters
// stripped), nft ruleset and ip_forward, for a before/after comparison.
func hostNetfilter(t *testing.T) string {
	t.Helper()
	save, err := run(t, 30*time.Second, "iptables-save")
	if err != nil {
		t.Fatalf("iptables-save: %v\n%s", err, save)
	}
	nft, err := run(t, 30*time.Second, "nft", "list", "ruleset")
	if err != nil {
		t.Fatalf("nft list ruleset: %v\n%s", err, nft)
	}
	fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	return "# iptables-save\n" + stripSave(save) + "# nft list ruleset\n" + nft + "# ip_forward " + string(fwd)
}

var saveCounters = regexp.MustCompile(`\[\d+:\d+\]`)

// stripSave drops iptables-save's comment lines (dates) and counters.
func stripSave(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		b.WriteString(strings.TrimSpace(saveCounters.ReplaceAllString(l, "")))
		b.WriteByte('\n')
	}
	return b.String()
}

// newGWLab builds the namespaces with a per-run prefix and foreign rules in
// admin, and removes them all at cleanup.
func newGWLab(t *testing.T) *gwLab {
	t.Helper()
	var prefix string
	for {
		prefix = fmt.Sprintf("ag%04x", rand.IntN(0x10000))
		if _, err := os.Stat("/run/netns/" + prefix + "-adm"); os.IsNotExist(err) {
			break
		}
	}
	l := &gwLab{
		t:    t,
		node: prefix + "-node", admin: prefix + "-adm", wan: prefix + "-wan",
		an: prefix + "-an", aw: prefix + "-aw", // ≤ 15 bytes
		dir: t.TempDir(),
	}
	for _, ns := range []string{l.node, l.admin, l.wan} {
		l.sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { run(t, 30*time.Second, "ip", "netns", "del", ns) })
	}
	na, wa := prefix+"-na", prefix+"-wa"
	l.sh(t, "ip", "link", "add", na, "netns", l.node, "type", "veth", "peer", "name", l.an, "netns", l.admin)
	l.sh(t, "ip", "link", "add", l.aw, "netns", l.admin, "type", "veth", "peer", "name", wa, "netns", l.wan)
	l.sh(t, "ip", "-n", l.node, "addr", "add", "10.200.10.2/24", "dev", na)
	l.sh(t, "ip", "-n", l.admin, "addr", "add", "10.200.10.1/24", "dev", l.an)
	l.sh(t, "ip", "-n", l.admin, "addr", "add", "10.200.20.1/24", "dev", l.aw)
	l.sh(t, "ip", "-n", l.wan, "addr", "add", "10.200.20.2/24", "dev", wa)
	for ns, links := range map[string][]string{l.node: {"lo", na}, l.admin: {"lo", l.an, l.aw}, l.wan: {"lo", wa}} {
		for _, link := range links {
			l.sh(t, "ip", "-n", ns, "link", "set", link, "up")
		}
	}
	l.sh(t, "ip", "-n", l.node, "route", "add", "default", "via", "10.200.10.1")
	// A new namespace may inherit the host's forwarding setting; start off.
	l.sh(t, "ip", "netns", "exec", l.admin, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward; echo 0 > /proc/sys/net/ipv4/conf/"+l.an+"/rp_filter")

	// Foreign rules, shaped like libvirt's. LIBVIRT_FWI rejects whatever
	// is forwarded out towards the node, replies included: only airgapd's
	// jump coming first lets the nodes' connections through.
	l.restore(t, fmt.Sprintf(`*filter
:LIBVIRT_FWI - [0:0]
:LIBVIRT_FWX - [0:0]
-A FORWARD -j LIBVIRT_FWX
-A FORWARD -j LIBVIRT_FWI
-A LIBVIRT_FWX -i virbr0 -o virbr0 -j ACCEPT
-A LIBVIRT_FWI -o %s -j REJECT --reject-with icmp-port-unreachable
COMMIT
*nat
:LIBVIRT_PRT - [0:0]
-A POSTROUTING -j LIBVIRT_PRT
-A LIBVIRT_PRT -s 192.168.122.0/24 -d 224.0.0.0/24 -j RETURN
COMMIT
`, l.an))

	// The listeners in wan and node answer each connection with the
	// address it came from.
	l.wanAddr = l.listen(t, l.wan, "10.200.20.2:0")
	l.nodeAddr = l.listen(t, l.node, "10.200.10.2:0")
	return l
}

// listen starts a TCP listener in a namespace that writes each client's
// address back to it; it returns the listener's address.
func (l *gwLab) listen(t *testing.T, ns, addr string) string {
	t.Helper()
	var ln net.Listener
	if err := inNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				fmt.Fprintln(c, host)
			}()
		}
	}()
	return ln.Addr().String()
}

// inNetns runs fn on an OS thread switched into the named namespace.
// Sockets fn creates stay in that namespace. The thread goes back to the
// original namespace, or, if that fails, ends with the goroutine.
func inNetns(name string, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(name)
		if err != nil {
			done <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			done <- err
			return
		}
		err = fn()
		if rerr := netns.Set(orig); rerr != nil {
			done <- fmt.Errorf("return to the original namespace: %w", rerr) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}

// connect opens a TCP connection from node to the wan listener and returns
// the source address wan saw.
func (l *gwLab) connect(timeout time.Duration) (string, error) {
	return l.dial(l.node, l.wanAddr, timeout)
}

// dial connects from namespace ns to addr and returns the client address
// the listener there saw.
func (l *gwLab) dial(ns, addr string, timeout time.Duration) (string, error) {
	var seen string
	err := inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		line, err := bufio.NewReader(c).ReadString('\n')
		seen = strings.TrimSpace(line)
		return err
	})
	return seen, err
}

func (l *gwLab) mustConnectFromAdmin(t *testing.T) {
	t.Helper()
	from, err := l.connect(5 * time.Second)
	if err != nil {
		t.Fatalf("node could not reach wan through admin: %v\n%s", err, l.iptablesSave())
	}
	if from != "10.200.20.1" {
		t.Errorf("wan saw the connection from %s, want admin's wan address 10.200.20.1", from)
	}
}

func (l *gwLab) mustNotConnect(t *testing.T) {
	t.Helper()
	// wan cannot answer an address it has no route to: the dial times out.
	if from, err := l.connect(1500 * time.Millisecond); err == nil {
		t.Errorf("node reached wan (seen from %s) with no gateway rules", from)
	}
}

// sh runs a command on the host that must succeed.
func (l *gwLab) sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, 30*time.Second, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// ipt runs iptables inside admin.
func (l *gwLab) ipt(t *testing.T, args ...string) string {
	t.Helper()
	return l.sh(t, "ip", append([]string{"netns", "exec", l.admin, "iptables"}, args...)...)
}

// restore feeds iptables-restore --noflush inside admin: one transaction.
func (l *gwLab) restore(t *testing.T, rules string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.admin, "iptables-restore", "--noflush")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iptables-restore: %v\n%s\n%s", err, out, rules)
	}
}

// iptablesSave is admin's iptables-save, comments and counters stripped.
func (l *gwLab) iptablesSave() string {
	l.t.Helper()
	return stripSave(l.sh(l.t, "ip", "netns", "exec", l.admin, "iptables-save"))
}

// foreignUnchanged compares admin's rules without airgapd's chains and
// jumps with the snapshot taken before airgapd ran.
func (l *gwLab) foreignUnchanged(t *testing.T, before string) {
	t.Helper()
	strip := func(s string) string {
		var keep []string
		for _, line := range strings.Split(s, "\n") {
			if !strings.Contains(line, "AIRGAPD") {
				keep = append(keep, line)
			}
		}
		return strings.Join(keep, "\n")
	}
	if got, want := strip(l.iptablesSave()), strip(before); got != want {
		t.Errorf("foreign rules changed:\n--- now\n%s\n--- before\n%s", got, want)
	}
}

func (l *gwLab) ipForward() string { return l.cat(l.t, "/proc/sys/net/ipv4/ip_forward") }

// cat reads a file inside admin (/proc/sys/net is per namespace).
func (l *gwLab) cat(t *testing.T, path string) string {
	t.Helper()
	return strings.TrimSpace(l.sh(t, "ip", "netns", "exec", l.admin, "cat", path))
}

// routes lists the routes airgapd owns in admin (proto 147).
func (l *gwLab) routes(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(l.sh(t, "ip", "-n", l.admin, "route", "show", "proto", "147"))
}

func (l *gwLab) writeConfig(body string) {
	l.config = writeConfig(l.t, l.dir, body)
}

// cli runs `airgapd gateway VERB --config` inside admin, as a user would.
func (l *gwLab) cli(t *testing.T, verb string) string {
	t.Helper()
	out, err := run(t, 60*time.Second, "ip", "netns", "exec", l.admin, airgapdBin, "gateway", verb, "--config", l.config)
	if err != nil {
		t.Fatalf("airgapd gateway %s: %v\n%s", verb, err, out)
	}
	return out
}

// serve starts `airgapd serve` inside admin. `ip netns exec` execs the
// command in place, so the process is airgapd itself and gets the signals.
func (l *gwLab) serve(t *testing.T) *instance {
	t.Helper()
	in := serveConfig(t, l.admin, l.dir, l.config)
	in.waitLog("airgapd ready", 15*time.Second)
	return in
}

// gwStatus is the gateway's status.
type gwStatus = api.GatewayStatus

func (l *gwLab) socket() string { return filepath.Join(l.dir, "run", "api.sock") }

func (l *gwLab) gatewayStatus(t *testing.T) gwStatus {
	t.Helper()
	out, err := exec.Command(airgapdBin, "status", "--json", "--socket", l.socket()).Output()
	if err != nil {
		t.Fatalf("airgapd status: %v\n%s", err, out)
	}
	var r api.StatusReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("decode status: %v\n%s", err, out)
	}
	for _, s := range r.Services {
		if s.Name == "gateway" {
			if s.Gateway == nil {
				t.Fatalf("gateway status has no detail:\n%s", out)
			}
			return *s.Gateway
		}
	}
	t.Fatalf("no gateway in status:\n%s", out)
	return gwStatus{}
}

// metrics reads /metrics over the control socket.
func (l *gwLab) metrics(t *testing.T) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", l.socket())
		},
	}}
	resp, err := c.Get("http://airgapd/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}
