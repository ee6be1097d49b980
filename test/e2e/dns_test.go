package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airgapd/airgapd/api"
)

// labTestZone is "the internet" for the DNS tests: named serves it as the
// forwarders' authority.
func labTestZone() zoneFile {
	// Five 250-byte strings: more than 1232 bytes, so it cannot fit in one
	// UDP reply.
	big := strings.Repeat(`"`+strings.Repeat("x", 250)+`" `, 6)
	return zoneFile{name: "lab.test", body: `$TTL 300
@       IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 60
@       IN NS  ns.lab.test.
ns      IN A   127.0.0.1
www     IN A   192.0.2.10
www     IN AAAA 2001:db8::10
alias   IN CNAME alias2
alias2  IN CNAME www
@       IN MX  10 mail.lab.test.
mail    IN A   192.0.2.25
_ldap._tcp IN SRV 0 100 389 www.lab.test.
*.wild  IN A   192.0.2.99
big     IN TXT ` + big + `
short 2 IN A   192.0.2.2
`}
}

// dnsAddr is airgapd's DNS address, as its status reports it.
func dnsAddr(t *testing.T, in *instance) string {
	t.Helper()
	var st api.DNSStatus
	in.status().detail(t, "dns", &st)
	for _, l := range st.Listen {
		if a, ok := strings.CutPrefix(l, "udp/"); ok {
			return a
		}
	}
	t.Fatalf("dns status lists no UDP listener: %v", st.Listen)
	return ""
}

// portOf returns the port of the dns listener whose status entry starts
// with prefix (e.g. "udp/[::1]:").
func dnsPortOf(t *testing.T, in *instance, prefix string) string {
	t.Helper()
	var st api.DNSStatus
	in.status().detail(t, "dns", &st)
	for _, l := range st.Listen {
		if p, ok := strings.CutPrefix(l, prefix); ok {
			return p
		}
	}
	t.Fatalf("no dns listener %s* in %v", prefix, st.Listen)
	return ""
}

func TestDNSForwardCacheAndServeStale(t *testing.T) {
	ns := newNamed(t, []zoneFile{labTestZone()}, "")
	in := start(t, t.TempDir(), fmt.Sprintf(`
dns:
  listen: ["127.0.0.1:0"]
  forwarders: [%q]
  forward: only
  cache: { serve_stale: 1h }
  zones:
    - name: lab.internal
      records: ["admin 300 A 192.168.10.10", "registry CNAME admin"]
`, ns.addr()))
	dnsd := dnsAddr(t, in)

	cases := []struct {
		name, qtype, status string
		want                []string // each must be in some answer line
	}{
		{"www.lab.test", "A", "NOERROR", []string{"www.lab.test.", "A 192.0.2.10"}},
		{"www.lab.test", "AAAA", "NOERROR", []string{"AAAA 2001:db8::10"}},
		{"alias.lab.test", "A", "NOERROR", []string{"alias.lab.test.", "CNAME alias2.lab.test."}},
		{"lab.test", "MX", "NOERROR", []string{"MX 10 mail.lab.test."}},
		{"_ldap._tcp.lab.test", "SRV", "NOERROR", []string{"SRV 0 100 389 www.lab.test."}},
		{"anything.wild.lab.test", "A", "NOERROR", []string{"anything.wild.lab.test.", "A 192.0.2.99"}},
		{"registry.lab.internal", "A", "NOERROR", []string{"A 192.168.10.10"}},
	}
	for _, tc := range cases {
		d := dig(t, dnsd, tc.name, tc.qtype)
		if d.status != tc.status || !d.answerHas(tc.want...) {
			t.Errorf("%s %s: status %s, answer %v; want %s with %v", tc.name, tc.qtype, d.status, d.answer, tc.status, tc.want)
		}
	}
	// The CNAME chain comes whole: alias → alias2 → www's address.
	if d := dig(t, dnsd, "alias.lab.test", "A"); !d.answerHas("alias2.lab.test.", "CNAME www.lab.test.") || !d.answerHas("A 192.0.2.10") {
		t.Errorf("CNAME chain incomplete: %v", d.answer)
	}
	// NXDOMAIN carries the zone's SOA for negative caching.
	if d := dig(t, dnsd, "nope.lab.test", "A"); d.status != "NXDOMAIN" || len(d.auth) == 0 || !strings.Contains(d.auth[0], "SOA") {
		t.Errorf("NXDOMAIN: status %s, authority %v", d.status, d.auth)
	}
	// Too big for UDP: TC over UDP (dig +ignore keeps the truncated reply),
	// complete over TCP.
	if d := dig(t, dnsd, "big.lab.test", "TXT", "+ignore", "+notcp"); !d.hasFlag("tc") {
		t.Errorf("big TXT over UDP: flags %v, want tc", d.flags)
	}
	if d := dig(t, dnsd, "big.lab.test", "TXT", "+tcp"); d.hasFlag("tc") || !d.answerHas(strings.Repeat("x", 250)) {
		t.Errorf("big TXT over TCP: flags %v, answer %d lines", d.flags, len(d.answer))
	}

	// Cached: the second identical query does not reach named.
	dig(t, dnsd, "mail.lab.test", "A")
	before := ns.queries("mail.lab.test")
	if d := dig(t, dnsd, "mail.lab.test", "A"); !d.answerHas("A 192.0.2.25") {
		t.Fatalf("second query: %v", d.answer)
	}
	if after := ns.queries("mail.lab.test"); after != before || before == 0 {
		t.Errorf("named saw mail.lab.test %d times before, %d after the second query; want the cache to answer", before, after)
	}

	// `airgapd dns flush NAME` (rndc flushname): the next query goes upstream.
	if out, err := exec.Command(airgapdBin, "dns", "flush", "mail.lab.test", "--socket", in.dir+"/run/api.sock").CombinedOutput(); err != nil || !strings.Contains(string(out), "flushed mail.lab.test: 1 entry") {
		t.Errorf("dns flush: %v\n%s", err, out)
	}
	dig(t, dnsd, "mail.lab.test", "A")
	if n := ns.queries("mail.lab.test"); n != before+1 {
		t.Errorf("after flush named saw mail.lab.test %d times, want %d", n, before+1)
	}

	// Upstream gone: cached names answer, expired ones come stale, unknown
	// ones fail fast.
	if d := dig(t, dnsd, "short.lab.test", "A"); !d.answerHas("A 192.0.2.2") {
		t.Fatalf("short.lab.test: %v", d.answer)
	}
	expires := time.Now().Add(2 * time.Second)
	ns.stop()
	if d := dig(t, dnsd, "www.lab.test", "A"); !d.answerHas("A 192.0.2.10") {
		t.Errorf("cached www.lab.test with named stopped: %s %v", d.status, d.answer)
	}
	for time.Now().Before(expires.Add(100 * time.Millisecond)) {
		time.Sleep(time.Until(expires.Add(100 * time.Millisecond)))
	}
	if d := dig(t, dnsd, "short.lab.test", "A"); d.status != "NOERROR" || !d.answerHas("30 IN A 192.0.2.2") {
		t.Errorf("expired short.lab.test not served stale with TTL 30: %s %v", d.status, d.answer)
	}
	began := time.Now()
	if d := dig(t, dnsd, "uncached.lab.test", "A"); d.status != "SERVFAIL" {
		t.Errorf("uncached name with named stopped: %s, want SERVFAIL", d.status)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("SERVFAIL took %s, want < 2s", took)
	}

	// named back: fresh answers resume once the pool has re-probed it.
	ns.start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := dig(t, dnsd, "mail.lab.test", "MX")
		if d.status == "NOERROR" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fresh answers 10s after named came back: %s", d.status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestDNSACL(t *testing.T) {
	ns := newNamed(t, []zoneFile{labTestZone()}, "")
	in := start(t, t.TempDir(), fmt.Sprintf(`
dns:
  listen: ["127.0.0.1:0", "[::1]:0"]
  forwarders: [%q]
  forward: only
  allow_query: [127.0.0.1, 127.0.0.10]
  allow_recursion: [127.0.0.1]
  zones:
    - name: lab.internal
      records: ["admin 300 A 192.168.10.10"]
`, ns.addr()))
	dnsd := dnsAddr(t, in)
	// IPv6 too: ::1 is in neither list.
	if d := dig(t, "[::1]:"+dnsPortOf(t, in, "udp/[::1]:"), "admin.lab.internal", "A"); d.status != "REFUSED" {
		t.Errorf("from ::1 (not allowed): %s, want REFUSED", d.status)
	}
	cases := []struct {
		client, name, status string
	}{
		{"127.0.0.9", "admin.lab.internal", "REFUSED"}, // outside allow_query
		{"127.0.0.9", "www.lab.test", "REFUSED"},
		{"127.0.0.10", "admin.lab.internal", "NOERROR"}, // query, no recursion
		{"127.0.0.10", "www.lab.test", "REFUSED"},
		{"127.0.0.1", "admin.lab.internal", "NOERROR"}, // both
		{"127.0.0.1", "www.lab.test", "NOERROR"},
	}
	for _, tc := range cases {
		if d := dig(t, dnsd, tc.name, "A", "-b", tc.client); d.status != tc.status {
			t.Errorf("from %s, %s: %s, want %s", tc.client, tc.name, d.status, tc.status)
		}
	}
}

// TestDNSFailover: a forwarder that never answers costs nothing once the
// pool has learned it is dead.
func TestDNSFailover(t *testing.T) {
	ns := newNamed(t, []zoneFile{labTestZone()}, "")
	blackhole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer blackhole.Close()
	in := start(t, t.TempDir(), fmt.Sprintf(`
dns:
  listen: ["127.0.0.1:0"]
  forwarders: [%q, %q]
  forward: only
  cache: { max_entries: 0 }
`, blackhole.LocalAddr().String(), ns.addr()))
	dnsd := dnsAddr(t, in)
	for i := range 5 { // warm-up: the pool learns
		dig(t, dnsd, fmt.Sprintf("warm%d.wild.lab.test", i), "A")
	}
	worst := 0
	for i := range 20 {
		d := dig(t, dnsd, fmt.Sprintf("q%d.wild.lab.test", i), "A")
		if d.status != "NOERROR" {
			t.Fatalf("q%d: %s", i, d.status)
		}
		worst = max(worst, d.queryMs)
	}
	// The shortest wait on a silent forwarder is 150 ms (minTry).
	if worst >= 150 {
		t.Errorf("worst latency after warm-up %d ms: queries still wait for the dead forwarder", worst)
	}
	t.Logf("worst latency after warm-up: %d ms", worst)
}

func TestDNSForwardZones(t *testing.T) {
	internet := newNamed(t, []zoneFile{labTestZone()}, "")
	corp := newNamed(t, []zoneFile{{name: "corp.test", body: `$TTL 300
@   IN SOA ns.corp.test. hostmaster.corp.test. 1 3600 600 86400 60
@   IN NS  ns.corp.test.
ns  IN A   127.0.0.1
dc  IN A   10.0.0.53
`}}, "")
	in := start(t, t.TempDir(), fmt.Sprintf(`
dns:
  listen: ["127.0.0.1:0"]
  forwarders: [%q]
  forward: only
  forward_zones: [{ name: corp.test, forwarders: [%q] }]
`, internet.addr(), corp.addr()))
	dnsd := dnsAddr(t, in)
	if d := dig(t, dnsd, "dc.corp.test", "A"); !d.answerHas("A 10.0.0.53") {
		t.Errorf("dc.corp.test: %s %v", d.status, d.answer)
	}
	if d := dig(t, dnsd, "www.lab.test", "A"); !d.answerHas("A 192.0.2.10") {
		t.Errorf("www.lab.test: %s %v", d.status, d.answer)
	}
	if n := corp.queries("www.lab.test"); n != 0 {
		t.Errorf("the corp forwarder saw www.lab.test %d times", n)
	}
	if n := internet.queries("dc.corp.test"); n != 0 {
		t.Errorf("the default forwarder saw dc.corp.test %d times", n)
	}
}

// TestDNSSecondaryTransfer: a BIND secondary replicates a local zone by
// AXFR and follows changes on NOTIFY.
func TestDNSSecondaryTransfer(t *testing.T) {
	dir := t.TempDir()
	secPort := freeUDPTCPPort(t)
	zones := func(extra string) string {
		return fmt.Sprintf(`
dns:
  listen: ["127.0.0.1:0"]
  forward: only
  allow_transfer: [127.0.0.1]
  also_notify: ["127.0.0.1:%d"]
  zones:
    - name: lab.internal
      records: ["admin 300 A 192.168.10.10", "k8s-node1 300 A 192.168.10.11"%s]
`, secPort, extra)
	}
	in := start(t, dir, zones(""))
	primary := dnsAddr(t, in)
	_, pport, _ := net.SplitHostPort(primary)

	sec := &named{t: t, dir: t.TempDir(), port: secPort}
	sec.conf = sec.dir + "/named.conf"
	writeFile(t, sec.conf, fmt.Sprintf(`options {
	directory "%[1]s"; pid-file "%[1]s/named.pid"; session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; }; listen-on-v6 { none; };
	recursion no; dnssec-validation no; notify no;
};
controls { };
logging { channel rest { file "%[1]s/named.log"; severity info; }; category default { rest; }; };
zone "lab.internal" { type secondary; primaries { 127.0.0.1 port %[3]s; }; file "%[1]s/lab.internal.db"; };
`, sec.dir, secPort, pport))
	sec.start()
	t.Cleanup(sec.stop)

	waitAnswer := func(name, want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			d := dig(t, sec.addr(), name, "A")
			if d.answerHas(want) && d.hasFlag("aa") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("secondary never answered %s with %s (last: %s %v)", name, want, d.status, d.answer)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitAnswer("k8s-node1.lab.internal", "A 192.168.10.11")

	in.rewrite(zones(`, "k8s-node2 300 A 192.168.10.12"`))
	in.signal(syscall.SIGHUP)
	in.waitLog("config reloaded", 10*time.Second)
	waitAnswer("k8s-node2.lab.internal", "A 192.168.10.12")
	in.waitLog("NOTIFY sent", 10*time.Second)

	// Not in allow_transfer: refused.
	if d := dig(t, primary, "lab.internal", "AXFR", "-b", "127.0.0.9"); !strings.Contains(d.out, "Transfer failed") && d.status != "REFUSED" {
		t.Errorf("AXFR from 127.0.0.9 was not refused:\n%s", d.out)
	}
}

// dnsperfRun runs dnsperf at a capped rate and returns sent and lost.
func dnsperfRun(t *testing.T, server, queries string, secs, qps int) (sent, lost int) {
	t.Helper()
	host, port, _ := net.SplitHostPort(server)
	out, err := run(t, time.Duration(secs+20)*time.Second, "dnsperf", "-s", host, "-p", port, "-d", queries,
		"-l", fmt.Sprint(secs), "-Q", fmt.Sprint(qps), "-t", "2")
	if err != nil {
		t.Fatalf("dnsperf: %v\n%s", err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "Queries" && f[1] == "sent:":
			sent, _ = strconv.Atoi(f[2])
		case len(f) >= 3 && f[0] == "Queries" && f[1] == "lost:":
			lost, _ = strconv.Atoi(f[2])
		}
	}
	if sent == 0 {
		t.Fatalf("dnsperf sent nothing:\n%s", out)
	}
	return sent, lost
}

// TestDNSReloadUnderLoad: a SIGHUP that changes a zone while dnsperf runs
// loses no more queries than the same run without a reload, and the change
// is visible after.
func TestDNSReloadUnderLoad(t *testing.T) {
	need(t, "dnsperf", "dig")
	zone := func(extra string) string {
		return `
dns:
  listen: ["127.0.0.1:0"]
  forward: only
  query_log: false
  zones:
    - name: lab.internal
      records: ["admin 300 A 192.168.10.10", "registry CNAME admin"` + extra + `]
`
	}
	in := start(t, t.TempDir(), zone(""))
	dnsd := dnsAddr(t, in)
	queries := t.TempDir() + "/q.txt"
	writeFile(t, queries, "admin.lab.internal A\nregistry.lab.internal A\nnew.lab.internal A\nnope.lab.internal A\n")
	const secs, rate = 4, 3000

	_, baseLost := dnsperfRun(t, dnsd, queries, secs, rate)

	in.rewrite(zone(`, "new 300 A 192.168.10.99"`))
	type result struct{ sent, lost int }
	done := make(chan result, 1)
	go func() {
		s, l := dnsperfRun(t, dnsd, queries, secs, rate)
		done <- result{s, l}
	}()
	// Reload once the load is under way: dnsd has counted queries of this run.
	var before api.DNSStatus
	in.status().detail(t, "dns", &before)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var now api.DNSStatus
		in.status().detail(t, "dns", &now)
		if now.Queries > before.Queries+rate {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dnsperf load never showed up in dns status")
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.signal(syscall.SIGHUP)
	r := <-done
	in.waitLog("config reloaded", 10*time.Second)
	t.Logf("baseline lost %d; with reload sent %d, lost %d", baseLost, r.sent, r.lost)
	if r.lost > baseLost {
		t.Errorf("lost %d queries across the reload, %d without", r.lost, baseLost)
	}
	if d := dig(t, dnsd, "new.lab.internal", "A"); !d.answerHas("A 192.168.10.99") {
		t.Errorf("new record not served after reload: %s %v", d.status, d.answer)
	}
}

// TestDNSIteration: with forward: first and every forwarder dead, names
// resolve by iteration from root_hints. Real name servers must listen on
// port 53 for that (referrals carry no ports), so the whole test runs in a
// network namespace of its own, with its own addresses on its lo.
func TestDNSIteration(t *testing.T) {
	need(t, "named", "dig", "ip")
	if os.Getuid() != 0 {
		t.Skip("network namespaces need root")
	}
	ns := fmt.Sprintf("agd-it-%d", os.Getpid()%100000)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", "10.200.53.1/32", "dev", "lo"}, // root server
		{"addr", "add", "10.200.53.2/32", "dev", "lo"}, // lab.test server
	} {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	rootZone := zoneFile{name: ".", body: `$TTL 300
.             IN SOA a.root.test. h.root.test. 1 3600 600 86400 60
.             IN NS  a.root.test.
a.root.test.  IN A   10.200.53.1
lab.test.     IN NS  ns.lab.test.
ns.lab.test.  IN A   10.200.53.2
`}
	lab := labTestZone()
	lab.body = strings.Replace(lab.body, "ns      IN A   127.0.0.1", "ns      IN A   10.200.53.2", 1)
	newNamedAt(t, ns, "10.200.53.1", []zoneFile{rootZone})
	newNamedAt(t, ns, "10.200.53.2", []zoneFile{lab})

	dir := t.TempDir()
	hints := dir + "/root.hints"
	writeFile(t, hints, ".  3600000 NS a.root.test.\na.root.test. 3600000 A 10.200.53.1\n")
	in := launchIn(t, ns, dir, fmt.Sprintf(`
dns:
  listen: ["127.0.0.1:0"]
  forwarders: ["10.200.53.9"]   # nothing there
  forward: first
  root_hints: %s
`, hints))
	in.waitLog("airgapd ready", 10*time.Second)
	addr := dnsAddr(t, in)
	cases := []struct{ name, qtype, want string }{
		{"www.lab.test", "A", "A 192.0.2.10"},
		{"alias.lab.test", "A", "A 192.0.2.10"},
		{"lab.test", "MX", "MX 10 mail.lab.test."},
	}
	for _, tc := range cases {
		out, _ := digIn(ns, addr, tc.name, tc.qtype, "+time=5", "+tries=1")
		if d := parseDig(out); d.status != "NOERROR" || !d.answerHas(tc.want) {
			t.Errorf("%s %s by iteration: %s %v\n%s", tc.name, tc.qtype, d.status, d.answer, out)
		}
	}
	out, _ := digIn(ns, addr, "nope.lab.test", "A", "+time=5", "+tries=1")
	if d := parseDig(out); d.status != "NXDOMAIN" {
		t.Errorf("nope.lab.test by iteration: %s", d.status)
	}
}

// TestDNSSECPassThrough: RRSIGs and the DO and CD bits pass through the
// forwarder path and the cache intact; answers without DO stay plain.
func TestDNSSECPassThrough(t *testing.T) {
	need(t, "named", "dig", "dnssec-keygen", "dnssec-signzone")
	keys := t.TempDir()
	zone := labTestZone()
	zonePath := keys + "/lab.test.zone"
	writeFile(t, zonePath, zone.body)
	for _, args := range [][]string{
		{"-q", "-K", keys, "-a", "ECDSAP256SHA256", "-n", "ZONE", "lab.test"},
		{"-q", "-K", keys, "-a", "ECDSAP256SHA256", "-n", "ZONE", "-f", "KSK", "lab.test"},
	} {
		if out, err := exec.Command("dnssec-keygen", args...).CombinedOutput(); err != nil {
			t.Fatalf("dnssec-keygen: %v\n%s", err, out)
		}
	}
	// -d: the dsset file goes with the keys, not into the working folder.
	if out, err := exec.Command("dnssec-signzone", "-S", "-K", keys, "-d", keys, "-o", "lab.test", "-f", zonePath+".signed", zonePath).CombinedOutput(); err != nil {
		t.Fatalf("dnssec-signzone: %v\n%s", err, out)
	}
	signed, err := os.ReadFile(zonePath + ".signed")
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamed(t, []zoneFile{{name: "lab.test", body: string(signed)}}, "")
	in := start(t, t.TempDir(), fmt.Sprintf(`
dns:
  listen: ["127.0.0.1:0"]
  forwarders: [%q]
  forward: only
`, ns.addr()))
	dnsd := dnsAddr(t, in)
	for _, round := range []string{"upstream", "cache"} {
		d := dig(t, dnsd, "www.lab.test", "A", "+dnssec", "+cd")
		if !d.answerHas("A 192.0.2.10") || !d.answerHas("RRSIG A 13") {
			t.Errorf("%s: +dnssec answer lacks the RRSIG: %v", round, d.answer)
		}
		if !d.hasFlag("cd") {
			t.Errorf("%s: CD not echoed: flags %v", round, d.flags)
		}
		if !strings.Contains(d.out, "; EDNS: version: 0, flags: do;") {
			t.Errorf("%s: DO not echoed:\n%s", round, d.out)
		}
	}
	if n := ns.queries("www.lab.test"); n != 1 {
		t.Errorf("named saw www.lab.test %d times, want 1 (the second from the cache)", n)
	}
	// Without DO: no signatures, and a cache entry of its own.
	if d := dig(t, dnsd, "www.lab.test", "A"); d.answerHas("RRSIG") || !d.answerHas("A 192.0.2.10") {
		t.Errorf("plain query: %v", d.answer)
	}
}
