package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The import tests take the seed lab's named.conf, chrony.conf and NAT
// rules and Debian's packaged named.conf and chrony.conf (testdata/import),
// run `airgapd import` on them, and check that airgapd on the result does
// what the originals did. Every upstream in them is rewritten to a stand-in
// on loopback first: no test query or NTP packet leaves this host.

// importFixture copies testdata/import/NAME into a temp folder, with
// /etc/bind/ pointing there (Debian's files name each other that way).
func importFixture(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join("testdata/import", name)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, e.Name()), strings.ReplaceAll(string(b), "/etc/bind/", dir+"/"))
	}
	return dir
}

// replaceIn rewrites a fixture file, failing if a text to replace is absent
// (the fixture changed under the test).
func replaceIn(t *testing.T, path string, pairs ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("%s has no %q", path, pairs[i])
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	writeFile(t, path, s)
}

// airgapdImport runs `airgapd import ARGS --out DIR/imported.yaml` and
// returns the file's path and the report.
func airgapdImport(t *testing.T, dir string, args ...string) (path, report string) {
	t.Helper()
	path = filepath.Join(dir, "imported.yaml")
	out, err := run(t, 30*time.Second, airgapdBin, append([]string{"import", "--out", path, "--force"}, args...)...)
	if err != nil {
		t.Fatalf("airgapd import %v: %v\n%s", args, err, out)
	}
	return path, out
}

// namedFixtures are named.conf texts rewritten for the test: listening on
// loopback port P, forwarding only to the stand-in upstream, their state
// in their own folder, no rndc channel.
type namedFixture struct {
	name, conf string
	edit       string // the file the options are in
	rewrite    func(t *testing.T, dir string, port int, upstream string) []string
}

func namedFixtures() []namedFixture {
	return []namedFixture{
		{name: "seed", conf: "named.conf", edit: "named.conf", rewrite: func(t *testing.T, dir string, port int, upstream string) []string {
			return []string{
				"listen-on port 53 { 127.0.0.1; 192.168.10.10; };", fmt.Sprintf("listen-on port %d { 127.0.0.1; };", port),
				"forwarders { 168.126.63.1; 8.8.8.8; };", "forwarders { " + upstream + "; };",
				`"/var/named/data`, `"` + dir + "/data",
				`"/var/named"`, `"` + dir + `"`,
				`"/run/named/`, `"` + dir + "/",
			}
		}},
		{name: "debian", conf: "named.conf", edit: "named.conf.options", rewrite: func(t *testing.T, dir string, port int, upstream string) []string {
			return []string{
				`"/var/cache/bind"`, `"` + dir + `"`,
				"dnssec-validation auto;", fmt.Sprintf("dnssec-validation no; // the stand-in upstream signs nothing\n\tforwarders { %s; };\n\tforward only;\n\tlisten-on port %d { 127.0.0.1; };\n\tpid-file %q;\n\tsession-keyfile %q;",
					upstream, port, dir+"/named.pid", dir+"/session.key"),
				"listen-on-v6 { any; };", "listen-on-v6 { none; };",
			}
		}},
	}
}

// standInUpstream is a named authoritative for the root zone, so every
// name it is asked for has an answer: data, a CNAME, NODATA or NXDOMAIN.
func standInUpstream(t *testing.T) *named {
	return newNamed(t, []zoneFile{{name: ".", body: `$TTL 300
.                  IN SOA ns.root. admin.root. 1 3600 600 86400 300
.                  IN NS  ns.root.
ns.root.           IN A   127.0.0.1
www.example.com.   IN A   192.0.2.10
www.example.com.   IN AAAA 2001:db8::10
example.com.       IN MX  10 mail.example.com.
mail.example.com.  IN A   192.0.2.25
alias.example.com. IN CNAME www.example.com.
txt.example.com.   IN TXT "hello world" "two strings"
multi.example.com. IN A   192.0.2.1
multi.example.com. IN A   192.0.2.2
multi.example.com. IN A   192.0.2.3
`}}, "")
}

var importQueries = [][2]string{
	{"www.example.com", "A"}, {"www.example.com", "AAAA"}, {"www.example.com", "TXT"}, {"example.com", "MX"},
	{"alias.example.com", "A"}, {"txt.example.com", "TXT"}, {"multi.example.com", "A"}, {"nope.example.com", "A"},
	{"localhost", "A"}, {"1.0.0.127.in-addr.arpa", "PTR"}, {"255.in-addr.arpa", "SOA"}, {"nothing.invalid", "AAAA"},
}

// answerSet is a reply as respdiff compares it: the rcode and the answer
// RRs without their TTLs (a cache counts those down), sorted.
func answerSet(d digResult) string {
	var rrs []string
	for _, l := range d.answer {
		f := strings.Fields(l)
		if len(f) > 2 {
			f = append(f[:1], f[2:]...)
		}
		rrs = append(rrs, strings.ToLower(strings.Join(f, " ")))
	}
	slices.Sort(rrs)
	return d.status + " [" + strings.Join(rrs, " | ") + "]"
}

func askAll(t *testing.T, server string) []string {
	t.Helper()
	var out []string
	for _, q := range importQueries {
		out = append(out, answerSet(dig(t, server, q[0], q[1])))
	}
	return out
}

// TestImportDNSSameAnswers: named on the fixture's named.conf and airgapd
// on what `airgapd import` made of it, each forwarding to one stand-in
// upstream, give the same rcodes and answer sets to the same queries. They
// run one after the other on the same port, the one named.conf names.
func TestImportDNSSameAnswers(t *testing.T) {
	need(t, "named", "named-checkconf", "dig")
	upstream := standInUpstream(t)
	upAddr := strings.Replace(upstream.addr(), ":", " port ", 1)
	for _, fx := range namedFixtures() {
		t.Run(fx.name, func(t *testing.T) {
			dir := importFixture(t, fx.name)
			os.MkdirAll(filepath.Join(dir, "data"), 0o755)
			if b, err := os.ReadFile("/usr/share/dns/root.hints"); err == nil {
				writeFile(t, filepath.Join(dir, "named.ca"), string(b))
			}
			port := freeUDPTCPPort(t)
			conf := filepath.Join(dir, fx.conf)
			replaceIn(t, filepath.Join(dir, fx.edit), fx.rewrite(t, dir, port, upAddr)...)
			b, _ := os.ReadFile(conf)
			writeFile(t, conf, string(b)+"\ncontrols { };\n")
			if out, err := exec.Command("named-checkconf", conf).CombinedOutput(); err != nil {
				t.Fatalf("named-checkconf: %v\n%s", err, out)
			}
			server := fmt.Sprintf("127.0.0.1:%d", port)

			bind := &named{t: t, dir: dir, port: port, conf: conf}
			bind.start()
			fromNamed := askAll(t, server)
			bind.stop()
			if !strings.Contains(fromNamed[0], "192.0.2.10") {
				t.Fatalf("named did not reach the stand-in upstream: %v", fromNamed)
			}

			imported, report := airgapdImport(t, dir, "--named", conf)
			y, err := os.ReadFile(imported)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(y), fmt.Sprintf("listen: ['127.0.0.1:%d']", port)) {
				t.Fatalf("imported listen is not named's:\n%s", y)
			}
			start(t, t.TempDir(), string(y))
			fromAirgapd := askAll(t, server)
			for i, q := range importQueries {
				if fromNamed[i] != fromAirgapd[i] {
					t.Errorf("%s %s: named %s, airgapd %s", q[0], q[1], fromNamed[i], fromAirgapd[i])
				}
			}
			t.Logf("%d queries, the same answers: %v", len(importQueries), fromAirgapd)
			if t.Failed() {
				t.Logf("imported:\n%s\nreport:\n%s", y, report)
			}
		})
	}
}

// TestImportCheck: the import of the seed lab's three files, and of
// Debian's named.conf and chrony.conf as packaged, passes `airgapd check`.
func TestImportCheck(t *testing.T) {
	tests := []struct {
		name string
		args func(dir string) []string
	}{
		{"seed", func(dir string) []string {
			return []string{"--named", dir + "/named.conf", "--chrony", dir + "/chrony.conf", "--iptables-save", dir + "/iptables-save"}
		}},
		{"debian", func(dir string) []string {
			return []string{"--named", dir + "/named.conf", "--chrony", dir + "/chrony.conf"}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := importFixture(t, tc.name)
			path, report := airgapdImport(t, dir, tc.args(dir)...)
			out, err := run(t, 30*time.Second, airgapdBin, "check", "--config", path)
			if err != nil || !strings.Contains(out, ": ok") {
				y, _ := os.ReadFile(path)
				t.Fatalf("airgapd check: %v\n%s\nimported:\n%s\nreport:\n%s", err, out, y, report)
			}
			for _, section := range []string{"# from " + dir + "/named.conf", "# from " + dir + "/chrony.conf"} {
				if y, _ := os.ReadFile(path); !strings.Contains(string(y), section) {
					t.Errorf("no %q comment in:\n%s", section, y)
				}
			}
		})
	}
}

// TestImportNTPChronySyncs: airgapd on the import of the seed's and
// Debian's chrony.conf (their pool pointed at a chronyd on loopback, an
// allow and an unprivileged port added) serves a chronyd -Q client.
func TestImportNTPChronySyncs(t *testing.T) {
	need(t, "chronyd")
	upPort := freeUDPPort(t)
	chronyd(t, "upstream", fmt.Sprintf("port %d", upPort), "bindaddress 127.0.0.1", "local stratum 3", "allow 127.0.0.0/8", "cmdport 0")
	pools := map[string]string{"seed": "pool 2.rocky.pool.ntp.org iburst", "debian": "pool 2.debian.pool.ntp.org iburst"}
	for _, name := range []string{"seed", "debian"} {
		t.Run(name, func(t *testing.T) {
			dir := importFixture(t, name)
			port := freeUDPPort(t)
			conf := filepath.Join(dir, "chrony.conf")
			replaceIn(t, conf, pools[name], fmt.Sprintf("server 127.0.0.1 port %d iburst minpoll 0 maxpoll 1\nallow 127.0.0.1\nport %d\nratelimit interval -2 burst 16", upPort, port))
			imported, report := airgapdImport(t, dir, "--chrony", conf)
			y, _ := os.ReadFile(imported)
			start(t, t.TempDir(), string(y))
			var last string
			eventually(t, 40*time.Second, "chronyd -Q syncs to airgapd", func() (bool, string) {
				_, ok, out := chronyQ(t, fmt.Sprint(port), 5)
				last = out
				return ok, out
			})
			if t.Failed() {
				t.Logf("imported:\n%s\nreport:\n%s\nlast:\n%s", y, report, last)
			}
		})
	}
}

// TestImportGatewayPlan: `airgapd gateway plan` on the import of the
// seed's iptables-save lists the same NAT rule, in airgapd's own chain,
// and changes nothing (run in a namespace of its own all the same).
func TestImportGatewayPlan(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("network namespaces need root")
	}
	need(t, "ip", "iptables-save")
	dir := importFixture(t, "seed")
	imported, _ := airgapdImport(t, dir, "--iptables-save", dir+"/iptables-save")
	ns := fmt.Sprintf("ag%04x-imp", rand.IntN(0x10000))
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	save := func() string {
		out, err := run(t, 30*time.Second, "ip", "netns", "exec", ns, "iptables-save")
		if err != nil {
			t.Fatalf("iptables-save: %v\n%s", err, out)
		}
		return stripSave(out)
	}
	before := save()
	plan, err := run(t, 60*time.Second, "ip", "netns", "exec", ns, airgapdBin, "gateway", "plan", "--config", imported)
	if err != nil {
		t.Fatalf("gateway plan: %v\n%s", err, plan)
	}
	// The source rule, as airgapd writes it: its own chain, and the -s
	// 0.0.0.0/0 that the rule without -s means.
	b, _ := os.ReadFile(dir + "/iptables-save")
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "-A POSTROUTING") {
			continue
		}
		want := strings.Replace(strings.Replace(l, "-A POSTROUTING", "-A AIRGAPD-POSTROUTING", 1), " -o ", " -s 0.0.0.0/0 -o ", 1)
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q (from %q):\n%s", want, l, plan)
		}
	}
	if after := save(); after != before {
		t.Errorf("plan changed the rules:\n%s\nwant:\n%s", after, before)
	}
}

// TestImportReportsUnsupported: a view and refclock lines are in the report,
// each with its file and line; nothing is dropped silently.
func TestImportReportsUnsupported(t *testing.T) {
	dir := t.TempDir()
	_, report := airgapdImport(t, dir, "--named", "testdata/import/view/named.conf", "--chrony", "testdata/import/refclock.conf")
	for _, want := range []string{
		"testdata/import/view/named.conf:18: view internal { … }",
		"views are not supported",
		"testdata/import/refclock.conf:2: refclock PPS /dev/pps0 lock NMEA refid GPS",
		"testdata/import/refclock.conf:3: refclock SHM 0",
		"reference clocks",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if i, j := strings.Index(report, "no equivalent"), strings.Index(report, "refclock.conf:2"); i < 0 || j < i {
		t.Errorf("refclock is not under \"no equivalent\":\n%s", report)
	}
}

// TestImportRegistryStorage: a registry storage directory with images in
// it (written through the same distribution code Docker Registry runs),
// named by a Docker Registry config.yml with htpasswd, is served by
// airgapd after import with the same digests (skopeo).
func TestImportRegistryStorage(t *testing.T) {
	need(t, "skopeo", "crane")
	storage := filepath.Join(t.TempDir(), "registry")
	img := ociImage(t, nil, 64<<10)
	want := imageDigest(t, img)
	// The registry that fills it: airgapd's own distribution, with the
	// storage root given as a Docker Registry config would give it.
	filler := startRegistryOn(t, `
registry:
  listen: "127.0.0.1:0"
  tls: auto
  users: [{name: admin, password_hash: "`+registryTestHash+`"}]
  pull_from: [127.0.0.1/32]
  storage: { filesystem: { rootdirectory: `+storage+` } }
`)
	lay := writeLayout(t, filepath.Join(t.TempDir(), "layout"), img, "v1")
	if out, err := filler.skopeo(t, "copy", "--dest-cert-dir", filler.certDir, "--dest-creds", "admin:s3cret",
		"oci:"+lay+":v1", "docker://"+filler.host+"/lab/app:v1"); err != nil {
		t.Fatalf("skopeo push: %v\n%s", err, out)
	}
	filler.in.signal(syscall.SIGTERM)
	filler.in.waitExit(30 * time.Second)
	if _, err := os.Stat(filepath.Join(storage, "docker/registry/v2/repositories/lab/app")); err != nil {
		t.Fatalf("the storage directory has no image: %v", err)
	}

	dir := t.TempDir()
	port := freeUDPTCPPort(t)
	writeFile(t, filepath.Join(dir, "htpasswd"), "admin:"+registryTestHash+"\n")
	writeFile(t, filepath.Join(dir, "config.yml"), fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: 127.0.0.1:%d
auth:
  htpasswd:
    realm: basic-realm
    path: %s/htpasswd
`, storage, port, dir))
	imported, report := airgapdImport(t, dir, "--registry-config", dir+"/config.yml")
	y, _ := os.ReadFile(imported)
	e := startRegistryOn(t, string(y))
	got, err := e.skopeo(t, "inspect", "--cert-dir", e.certDir, "--format", "{{.Digest}}", "docker://"+e.host+"/lab/app:v1")
	if err != nil || got != want {
		t.Errorf("skopeo inspect after import = %q (%v), want %s\nimported:\n%s\nreport:\n%s", got, err, want, y, report)
	}
	if out, err := e.skopeo(t, "copy", "--src-cert-dir", e.certDir, "--dest-cert-dir", e.certDir, "--dest-creds", "admin:s3cret",
		"docker://"+e.host+"/lab/app:v1", "docker://"+e.host+"/lab/app:v2"); err != nil {
		t.Errorf("the imported htpasswd user cannot push: %v\n%s", err, out)
	}
}

// startRegistryOn runs airgapd on a config body with a registry section,
// returning what skopeo needs to trust it.
func startRegistryOn(t *testing.T, body string) *regEnv {
	t.Helper()
	dir := t.TempDir()
	in := start(t, dir, body)
	host, ok := strings.CutPrefix(in.status().listener("registry"), "https://")
	if !ok {
		t.Fatalf("registry listener is not https")
	}
	e := &regEnv{in: in, host: host, caFile: filepath.Join(dir, "data", "pki", "ca.crt"),
		certDir: filepath.Join(dir, "certs-import"), anonDir: filepath.Join(dir, "anon-import")}
	ca, err := os.ReadFile(e.caFile)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(e.certDir, 0o755)
	os.MkdirAll(e.anonDir, 0o755)
	writeFile(t, filepath.Join(e.certDir, "ca.crt"), string(ca))
	writeFile(t, filepath.Join(e.anonDir, "config.json"), `{"auths": {}}`)
	return e
}

// TestImportReposyncFolders: a reposync folder served by nginx today (a
// repo with repodata/ made by createrepo_c) and the .repo section it was
// synced from become one local repo indexed in place: airgapd serves it
// with no sync, and dnf sees its packages.
func TestImportReposyncFolders(t *testing.T) {
	need(t, "createrepo_c", "dnf")
	dir := t.TempDir()
	www := filepath.Join(dir, "www", "repos")
	repo := filepath.Join(www, "rocky", "9", "baseos")
	for _, p := range indexTestRPMs[:3] {
		writeRPM(t, repo, "Packages", p)
	}
	if out, err := run(t, 60*time.Second, "createrepo_c", repo); err != nil {
		t.Fatalf("createrepo_c: %v\n%s", err, out)
	}
	os.MkdirAll(filepath.Join(dir, "yum.repos.d"), 0o755)
	writeFile(t, filepath.Join(dir, "yum.repos.d", "rocky.repo"), "[baseos]\nname=Rocky Linux 9 - BaseOS\nbaseurl=http://127.0.0.1:9/rocky/9/BaseOS/x86_64/os/\ngpgcheck=0\n")
	imported, report := airgapdImport(t, dir, "--yum-repos", filepath.Join(dir, "yum.repos.d"), "--reposync", www)
	for _, want := range []string{"indexed in place instead of syncing from http://127.0.0.1:9/", repo} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	y, _ := os.ReadFile(imported)
	if strings.Contains(string(y), "baseurl") {
		t.Fatalf("the reposync'd repo still syncs from upstream:\n%s", y)
	}
	body := strings.Replace(string(y), "mirror:\n", "advertise: { addresses: [127.0.0.1] }\nmirror:\n  listen: 127.0.0.1:0\n", 1)
	in := start(t, t.TempDir(), body)
	d := newDNFRoot(t)
	d.useRepo(in.status().listener("mirror"), "baseos")
	if got, want := d.packages("baseos"), []string{"alpha", "bravo"}; !slices.Equal(got, want) {
		t.Errorf("dnf sees %v in the imported reposync folder, want %v\nimported:\n%s", got, want, y)
	}
}
