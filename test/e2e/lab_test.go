package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The seed lab end to end (issue 13): four network namespaces with a
// per-run prefix,
//
//	node1 10.200.30.11 ─┐
//	                    ├─ bridge 10.200.30.1 admin 10.200.40.1 ── 10.200.40.2 wan
//	node2 10.200.30.12 ─┘
//
// wan is the stand-in internet: named (authoritative for seedlab.test, one
// record with a 5 s TTL), chronyd at local stratum 2, an HTTP server with a
// createrepo_c repo, an upstream registry (airgapd's registry package, in
// this process) holding an image, and a TCP listener that answers with the
// peer's address. admin runs airgapd with dns, ntp, gateway (apply), mirror,
// registry and web. The nodes have only the internal link and a default
// route via admin; each runs node.sh --root into its own folder, then the
// seed checklist; then admin's wan link goes down and the checklist runs
// again. Nothing here leaves the namespaces or loopback.

const (
	labAdmin  = "10.200.30.1"
	labAdminW = "10.200.40.1"
	labWan    = "10.200.40.2"
	labDomain = "seedlab.test"
)

var labNodeIPs = []string{"10.200.30.11", "10.200.30.12"}

// labChecklist records each check's result per node, printed as a table.
type labChecklist struct {
	mu    sync.Mutex
	order []string
	cells map[string]map[string]string
}

func (c *labChecklist) set(check, node, result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cells == nil {
		c.cells = map[string]map[string]string{}
	}
	if _, ok := c.cells[check]; !ok {
		c.order = append(c.order, check)
		c.cells[check] = map[string]string{}
	}
	c.cells[check][node] = result
}

func (c *labChecklist) table(nodes []string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := len("check")
	for _, k := range c.order {
		w = max(w, len(k))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s", w, "check")
	for _, n := range nodes {
		fmt.Fprintf(&b, "  %-6s", n)
	}
	b.WriteString("\n" + strings.Repeat("-", w+8*len(nodes)) + "\n")
	for _, k := range c.order {
		fmt.Fprintf(&b, "%-*s", w, k)
		for _, n := range nodes {
			v, ok := c.cells[k][n]
			if !ok {
				v = "-"
			}
			fmt.Fprintf(&b, "  %-6s", v)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// seedLab is the running lab.
type seedLab struct {
	t           *testing.T
	prefix      string
	wan, admin  string   // namespace names
	nodes       []string // namespace names
	nodeNames   []string // node1, node2
	aw          string   // admin's veth towards wan
	in          *instance
	wanTCP      string // the peer-address listener in wan
	upRepo      string // the HTTP repo in wan
	upReg       string // the upstream registry in wan, host:port
	imageDigest string
	roots       []string // node.sh --root folders
	ca          string   // the appliance CA file
	checks      *labChecklist
	named       *named
	mu          sync.Mutex // guards lastShort
	dnfMu       sync.Mutex // one dnf at a time: no shared lock can clash
	lastShort   time.Time  // when the 5 s record was last answered fresh
}

func (l *seedLab) sh(args ...string) string {
	l.t.Helper()
	out, err := run(l.t, 60*time.Second, args[0], args[1:]...)
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// inNS runs a command in namespace ns with a time limit.
func inNS(t *testing.T, limit time.Duration, ns string, args ...string) (string, error) {
	t.Helper()
	return run(t, limit, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

func TestSeedLab(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("network namespaces need root")
	}
	need(t, "ip", "iptables", "iptables-save", "nft", "named", "dig", "chronyd", "chronyc", "createrepo_c", "dnf", "curl", "sh", "sha256sum", "base64", "unshare", "mount")
	began := time.Now()
	hostBefore := hostNetfilter(t)
	// Registered first, so it runs last: after every namespace is gone.
	var prefix string
	t.Cleanup(func() {
		if after := hostNetfilter(t); after != hostBefore {
			t.Errorf("the host's own netfilter or ip_forward changed:\n--- before\n%s\n--- after\n%s", hostBefore, after)
		}
		if prefix == "" {
			return
		}
		out, _ := run(t, 30*time.Second, "ip", "netns", "list")
		if strings.Contains(out, prefix) {
			t.Errorf("namespaces left behind:\n%s", out)
		}
		links, _ := run(t, 30*time.Second, "ip", "-o", "link", "show")
		if strings.Contains(links, prefix) {
			t.Errorf("links left behind in the host namespace:\n%s", links)
		}
	})
	l := &seedLab{t: t, checks: &labChecklist{}, nodeNames: []string{"node1", "node2"}}
	t.Cleanup(func() {
		table := l.checks.table(l.nodeNames)
		fmt.Printf("\nseed lab checklist (%s):\n%s\n", time.Since(began).Round(time.Second), table)
	})
	l.build()
	prefix = l.prefix
	l.startWan()
	l.startAdmin()
	t.Logf("lab up in %s", time.Since(began).Round(time.Millisecond))
	l.bootstrapNodes()

	// Before the cut.
	l.checkAll("", true)
	t.Logf("checklist online done at %s", time.Since(began).Round(time.Millisecond))

	// Cut admin's wan link, then let the 5 s record expire.
	l.sh("ip", "-n", l.admin, "link", "set", l.aw, "down")
	cut := time.Now()
	l.mu.Lock()
	wait := time.Until(l.lastShort.Add(6 * time.Second))
	l.mu.Unlock()
	time.Sleep(wait)
	l.checkAll(" (wan cut)", false)
	var nd ntpDetail
	l.in.status().detail(t, "ntp", &nd)
	if nd.State != "local" || nd.Stratum != 10 {
		t.Errorf("admin's ntp after the cut: state %q stratum %d, want local at 10: %s", nd.State, nd.Stratum, nd.Summary)
	}
	if os.Getenv("AIRGAPD_LAB_INJECT_FAILURE") != "" { // proves the cleanup on failure; never set in CI
		t.Fatal("injected failure")
	}
	t.Logf("checklist offline done %s after the cut, %s in all", time.Since(cut).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// build creates the namespaces, veths and bridge; cleanup removes them.
func (l *seedLab) build() {
	t := l.t
	for {
		l.prefix = fmt.Sprintf("sl%04x", rand.IntN(0x10000))
		if _, err := os.Stat("/run/netns/" + l.prefix + "-adm"); os.IsNotExist(err) {
			break
		}
	}
	p := l.prefix
	l.wan, l.admin = p+"-wan", p+"-adm"
	l.nodes = []string{p + "-n1", p + "-n2"}
	for _, ns := range append([]string{l.wan, l.admin}, l.nodes...) {
		l.sh("ip", "netns", "add", ns)
		t.Cleanup(func() { run(t, 30*time.Second, "ip", "netns", "del", ns) })
		l.sh("ip", "-n", ns, "link", "set", "lo", "up")
	}
	// admin ↔ wan. Veth names ≤ 15 bytes: "sl1234-aw" is 9.
	l.aw = p + "-aw"
	wa := p + "-wa"
	l.sh("ip", "link", "add", l.aw, "netns", l.admin, "type", "veth", "peer", "name", wa, "netns", l.wan)
	l.sh("ip", "-n", l.admin, "addr", "add", labAdminW+"/24", "dev", l.aw)
	l.sh("ip", "-n", l.wan, "addr", "add", labWan+"/24", "dev", wa)
	l.sh("ip", "-n", l.admin, "link", "set", l.aw, "up")
	l.sh("ip", "-n", l.wan, "link", "set", wa, "up")
	// The internal side: a bridge in admin, one veth per node.
	br := p + "-br"
	l.sh("ip", "-n", l.admin, "link", "add", br, "type", "bridge")
	l.sh("ip", "-n", l.admin, "addr", "add", labAdmin+"/24", "dev", br)
	l.sh("ip", "-n", l.admin, "link", "set", br, "up")
	for i, ns := range l.nodes {
		in, out := fmt.Sprintf("%s-e%d", p, i+1), fmt.Sprintf("%s-b%d", p, i+1)
		l.sh("ip", "link", "add", in, "netns", ns, "type", "veth", "peer", "name", out, "netns", l.admin)
		l.sh("ip", "-n", l.admin, "link", "set", out, "master", br)
		l.sh("ip", "-n", l.admin, "link", "set", out, "up")
		l.sh("ip", "-n", ns, "addr", "add", labNodeIPs[i]+"/24", "dev", in)
		l.sh("ip", "-n", ns, "link", "set", in, "up")
		l.sh("ip", "-n", ns, "route", "add", "default", "via", labAdmin)
	}
	// A new namespace may inherit the host's forwarding setting: start off,
	// so the gateway is what turns it on.
	l.sh("ip", "netns", "exec", l.admin, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")
}

// listenIn opens a TCP listener inside namespace ns.
func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := inNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ln
}

// serveIn serves h on a listener inside ns; it returns the address.
func serveIn(t *testing.T, ns, addr string, h http.Handler) string {
	t.Helper()
	ln := listenIn(t, ns, addr)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func (l *seedLab) startWan() {
	t := l.t
	// DNS: named authoritative for the test domain.
	l.named = newNamedAt(t, l.wan, labWan, []zoneFile{{name: labDomain, body: `$TTL 300
@       IN SOA ns.seedlab.test. hostmaster.seedlab.test. 1 3600 600 86400 60
@       IN NS  ns.seedlab.test.
ns      IN A   ` + labWan + `
www     IN A   192.0.2.10
short 5 IN A   192.0.2.5
`}})

	// NTP: chronyd at local stratum 2, on wan's port 123.
	labChronyd(t, l.wan, "wan-chronyd", "port 123", "bindaddress "+labWan, "local stratum 2", "allow 10.200.0.0/16",
		"cmdport 0")

	// HTTP: a createrepo_c repo of rpmpack-built packages.
	up := &rpmUpstream{t: t, dir: t.TempDir()}
	for i, n := range []string{"alpha", "bravo", "charlie"} {
		up.add(n, 10000+i*5000)
	}
	up.index()
	l.upRepo = "http://" + serveIn(t, l.wan, labWan+":0", http.FileServer(http.Dir(up.dir))) + "/"

	// The upstream registry: airgapd's registry package, plain HTTP, served
	// in wan and (for the push) on loopback.
	r := upstreamRegistry(t, "0.0.0.0/0")
	l.upReg = serveIn(t, l.wan, labWan+":0", r.Handler())
	local := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
	lln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go local.Serve(lln)
	t.Cleanup(func() { local.Close() })
	img := ociImage(t, nil, 128<<10)
	(&standIn{host: lln.Addr().String()}).push(t, "library/hello:v1", img)
	l.imageDigest = imageDigest(t, img)

	// TCP: a listener that answers with the peer's address.
	l.wanTCP = (&gwLab{}).listen(t, l.wan, labWan+":0")
}

func (l *seedLab) startAdmin() {
	t := l.t
	dir := t.TempDir()
	l.in = launchIn(t, l.admin, dir, fmt.Sprintf(`
advertise: { name: admin.lab.internal, addresses: [%[1]s] }
web: { listen: "%[1]s:8443", tls: auto }
dns:
  listen: ["%[1]s:53"]
  allow_query: [127.0.0.0/8, 10.200.30.0/24]
  allow_recursion: [127.0.0.0/8, 10.200.30.0/24]
  forwarders: ["%[2]s"]
  forward: only
  cache: { serve_stale: 1h }
  zones:
    - name: lab.internal
      records: ["admin 300 A %[1]s", "registry CNAME admin"]
ntp:
  listen: ["%[1]s:123"]
  allow: [10.200.30.0/24]
  servers: ["%[2]s:123"]
  minpoll: 0
  maxpoll: 1
  local_stratum: 10
  fallback_after: 3s
  ratelimit: { interval: -2, burst: 16 }
gateway:
  mode: apply
  ip_forward: true
  masquerade: [{ source: 10.200.30.0/24, out_interface: %[3]s }]
  reconcile_every: 5s
mirror:
  listen: "%[1]s:80"
  repos:
    - { name: wanrepo, baseurl: %[4]q }
registry:
  listen: "%[1]s:5000"
  tls: auto
  users: [{name: admin, password_hash: "%[5]s"}]
  pull_from: [127.0.0.0/8, 10.200.30.0/24]
  mirrors:
    - {name: docker.io, url: "http://%[6]s"}
`, labAdmin, labWan, l.aw, l.upRepo, registryTestHash, l.upReg))
	l.in.waitLog("airgapd ready", 20*time.Second)
	l.in.waitLog("gateway reconciled", 20*time.Second)
	l.ca = filepath.Join(dir, "data", "pki", "ca.crt")

	// The mirror syncs wan's repo (the server does the work, in admin).
	if out, err := run(t, 90*time.Second, airgapdBin, "mirror", "sync", "--config", l.in.config, "wanrepo"); err != nil || !strings.Contains(out, "published revision") {
		t.Fatalf("airgapd mirror sync wanrepo: %v\n%s", err, out)
	}
	// NTP: admin selects wan's chronyd before the nodes start asking.
	eventually(t, 30*time.Second, "admin's airgapd selects wan's chronyd (^*)", func() (bool, string) {
		var d ntpDetail
		l.in.status().detail(t, "ntp", &d)
		return d.State == "synced" && len(d.Sources) == 1 && d.Sources[0].Mark == "*", d.Summary + "\n" + d.SourcesView
	})
}

// labChronyd runs `chronyd -x -d -u root` inside namespace ns, in its own
// folder; it is killed by PID at cleanup.
func labChronyd(t *testing.T, ns, name string, lines ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	lines = append(lines, "bindcmdaddress "+filepath.Join(dir, "chronyd.sock"), "pidfile "+filepath.Join(dir, "chronyd.pid"), "driftfile "+filepath.Join(dir, "drift"), "logdir "+dir)
	cf := filepath.Join(dir, "chrony.conf")
	if err := os.WriteFile(cf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := newLogBuffer()
	cmd := netnsCommand(ns, "chronyd", "-x", "-d", "-u", "root", "-f", cf)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", name, log.String())
		}
	})
	return dir
}

// bootstrapNodes runs node.sh --root in each node (fetched from admin by
// the node), then starts each node's chronyd from what node.sh pointed it
// at.
func (l *seedLab) bootstrapNodes() {
	t := l.t
	for i, ns := range l.nodes {
		node := l.nodeNames[i]
		root := t.TempDir()
		copyTree(t, "testdata/node/rocky9", root)
		l.roots = append(l.roots, root)
		script := filepath.Join(t.TempDir(), "node.sh")
		ok := true
		if out, err := inNS(t, 30*time.Second, ns, "curl", "-fsS", "-o", script, "http://"+labAdmin+"/bootstrap/node.sh"); err != nil {
			t.Errorf("%s: fetch node.sh: %v\n%s", node, err, out)
			ok = false
		} else if out, err := inNS(t, 60*time.Second, ns, "sh", script, "--root", root); err != nil {
			t.Errorf("%s: node.sh --root: %v\n%s", node, err, out)
			ok = false
		}
		files := snapshot(t, root)
		for path, want := range map[string]string{
			"etc/resolv.conf":                             "nameserver " + labAdmin,
			"etc/chrony.conf":                             "server " + labAdmin + " iburst",
			"etc/yum.repos.d/airgapd-wanrepo.repo":        "/repos/wanrepo/",
			"etc/containerd/certs.d/docker.io/hosts.toml": labAdmin + ":5000",
		} {
			if !strings.Contains(files[path], want) {
				t.Errorf("%s: node.sh wrote %s without %q:\n%s\n(files: %v)", node, path, want, files[path], keys(files))
				ok = false
			}
		}
		l.result("node.sh --root", node, ok)

		// The node's chronyd: node.sh's server line, made fast for a test.
		srv := regexp.MustCompile(`(?m)^server (\S+) iburst`).FindStringSubmatch(files["etc/chrony.conf"])
		host := labAdmin
		if srv != nil {
			host = srv[1]
		}
		labChronyd(t, ns, node+"-chronyd", "server "+host+" iburst minpoll 0 maxpoll 0", "port 0",
			"cmdport 11124", "bindcmdaddress 127.0.0.1", "cmdallow 127.0.0.1")
	}
}

func (l *seedLab) result(check, node string, ok bool) {
	if ok {
		l.checks.set(check, node, "ok")
	} else {
		l.checks.set(check, node, "FAIL")
	}
}

// checkAll runs the checklist in every node.
func (l *seedLab) checkAll(suffix string, online bool) {
	var wg sync.WaitGroup
	// The nodes run side by side, as real nodes would.
	for i := range l.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.checkNode(i, suffix, online)
		}()
	}
	wg.Wait()
}

func (l *seedLab) checkNode(i int, suffix string, online bool) {
	t := l.t
	ns, node := l.nodes[i], l.nodeNames[i]
	check := func(what string, ok bool, format string, args ...any) {
		l.result(what+suffix, node, ok)
		if !ok {
			t.Errorf("%s: %s%s: "+format, append([]any{node, what, suffix}, args...)...)
		}
	}
	dig := func(name string) digResult {
		out, _ := digIn(ns, labAdmin+":53", name, "A", "+time=8", "+tries=1")
		return parseDig(out)
	}

	// DNS through admin's forwarders, and admin's own zone.
	d := dig("www." + labDomain)
	check("dns forwarded name", d.status == "NOERROR" && d.answerHas("A 192.0.2.10"), "%s %v\n%s", d.status, d.answer, d.out)
	d = dig("admin.lab.internal")
	check("dns internal name", d.status == "NOERROR" && d.hasFlag("aa") && d.answerHas("A "+labAdmin), "%s %v", d.status, d.answer)
	if online {
		d = dig("short." + labDomain)
		check("dns 5s record", d.status == "NOERROR" && d.answerHas("A 192.0.2.5"), "%s %v", d.status, d.answer)
		l.mu.Lock()
		l.lastShort = time.Now()
		l.mu.Unlock()
	} else {
		// Past its 5 s TTL with the forwarder unreachable: served stale,
		// with RFC 8767's 30 s TTL.
		d = dig("short." + labDomain)
		check("dns 5s record stale", d.status == "NOERROR" && d.answerHas("30 IN A 192.0.2.5"), "%s %v\n%s", d.status, d.answer, d.out)
	}

	// NTP: the node's chronyd selects admin (^*); after the cut admin serves
	// its local stratum 10, so the node tracks stratum 11 and keeps ^*.
	want := `Stratum\s*:\s*4\b` // wan 2, admin 3, node 4
	what := "ntp ^* admin (stratum 3)"
	if !online {
		want, what = `Stratum\s*:\s*11\b`, "ntp ^* admin (local stratum 10)"
	}
	var last string
	deadline := time.Now().Add(45 * time.Second)
	ok := false
	for time.Now().Before(deadline) {
		src, _ := inNS(t, 10*time.Second, ns, "chronyc", "-n", "-h", "127.0.0.1", "-p", "11124", "sources")
		tr, _ := inNS(t, 10*time.Second, ns, "chronyc", "-n", "-h", "127.0.0.1", "-p", "11124", "tracking")
		last = src + tr
		if strings.Contains(src, "^* "+labAdmin) && regexp.MustCompile(want).MatchString(tr) {
			ok = true
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	check(what, ok, "last:\n%s", last)

	// Gateway: a connection to wan arrives from admin's wan address.
	if online {
		from, err := (&gwLab{}).dial(ns, l.wanTCP, 5*time.Second)
		check("tcp to wan via gateway", err == nil && from == labAdminW, "seen from %q, %v", from, err)
	} else {
		_, err := (&gwLab{}).dial(ns, l.wanTCP, 2*time.Second)
		check("tcp to wan refused", err != nil, "the wan listener answered with the link down")
	}

	// Mirror: dnf with node.sh's .repo files lists the packages. Their
	// baseurl names the admin host (advertise.name), so dnf resolves it
	// with node.sh's resolv.conf (nameserver admin), bind-mounted over
	// /etc/resolv.conf in a private mount namespace: the host's file stays.
	dnfDir := t.TempDir()
	l.dnfMu.Lock()
	out, err := inNS(t, 120*time.Second, ns, "unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount --bind "$0" /etc/resolv.conf && exec "$@"`, filepath.Join(l.roots[i], "etc/resolv.conf"), "dnf", "--setopt=reposdir="+filepath.Join(l.roots[i], "etc/yum.repos.d"),
		"--installroot="+filepath.Join(dnfDir, "root"), "--releasever=9", "--setopt=skip_if_unavailable=False",
		"--disableplugin=local", "-y", "-q", "--refresh", "repoquery", "--repo", "wanrepo", "--qf", "%{name}")
	l.dnfMu.Unlock()
	names := strings.Fields(out)
	slices.Sort(names)
	check("dnf lists the mirror", err == nil && slices.Equal(names, []string{"alpha", "bravo", "charlie"}), "%v\n%s", err, out)

	// Registry: a pull through admin with ns=docker.io gets the upstream's
	// digest (after the cut: from admin's store).
	got, err := l.pull(ns, filepath.Join(l.roots[i], "etc/pki/ca-trust/source/anchors"))
	check("image pull ns=docker.io", err == nil && got == l.imageDigest, "got %s, %v; want %s", got, err, l.imageDigest)
}

// pull fetches library/hello:v1 from admin's registry with ?ns=docker.io,
// from inside namespace ns, trusting the CA that node.sh installed (or
// admin's CA file when node.sh put it elsewhere), and reads every blob.
func (l *seedLab) pull(ns, anchors string) (string, error) {
	pem, err := os.ReadFile(l.ca)
	if entries, _ := os.ReadDir(anchors); len(entries) > 0 {
		pem, err = os.ReadFile(filepath.Join(anchors, entries[0].Name()))
	}
	if err != nil {
		return "", err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return "", fmt.Errorf("no CA in %s", anchors)
	}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := inNetns(ns, func() (err error) {
				c, err = (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}
	defer tr.CloseIdleConnections()
	ref, err := name.ParseReference(labAdmin + ":5000/library/hello:v1")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	img, err := remote.Image(ref, remote.WithTransport(nsTransport{ns: "docker.io", base: tr}), remote.WithContext(ctx))
	if err != nil {
		return "", err
	}
	if err := readBlobs(img); err != nil {
		return "", err
	}
	dg, err := img.Digest()
	return dg.String(), err
}
