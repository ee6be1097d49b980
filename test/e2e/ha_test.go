package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airgapd/airgapd/api"
)

// Two admin hosts behind keepalived (issue 20), in network namespaces with
// a per-run prefix:
//
//	admin1 10.201.7.11 ─┐
//	admin2 10.201.7.12 ─┼─ bridge (namespace lan) ─ node 10.201.7.21
//	VIP    10.201.7.10 ─┘
//
// Each admin host runs airgapd (admin1 primary, admin2 standby) and a real
// keepalived from the config `airgapd ha keepalived` printed. The node's
// only link is the bridge; it uses the VIP for everything.

const (
	haVIP    = "10.201.7.10"
	haAdmin1 = "10.201.7.11"
	haAdmin2 = "10.201.7.12"
	haNode   = "10.201.7.21"
)

type haLab struct {
	t                  *testing.T
	prefix             string
	lan, a1, a2, node  string // namespaces
	wan                string
	if1, if2           string // the admin hosts' LAN interfaces
	wan1, wan2         string // their links to wan
	wanTCP             string // wan's listener that answers with the peer's address
	in1, in2           *instance
	ka1, ka2           *keepalived
	ca                 string // admin1's CA file (the pair's CA)
	token              string
	tokenFile          string
	vrid               int
	admin1URL, peerPin string
	repo               *rpmUpstream // admin1's local repo folder
}

func TestHAPair(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("network namespaces need root")
	}
	need(t, "ip", "keepalived", "dig", "curl", "iptables-save", "dnf", "chronyd", "chronyc")
	hostBefore := hostNetfilter(t)
	l := &haLab{t: t, vrid: 1 + rand.IntN(250)}
	t.Cleanup(func() {
		if after := hostNetfilter(t); after != hostBefore {
			t.Errorf("the host's netfilter or ip_forward changed:\n--- before\n%s\n--- after\n%s", hostBefore, after)
		}
		if l.prefix == "" {
			return
		}
		out, _ := run(t, 30*time.Second, "ip", "netns", "list")
		if strings.Contains(out, l.prefix+"-") {
			t.Errorf("namespaces left behind:\n%s", out)
		}
		links, _ := run(t, 30*time.Second, "ip", "-o", "link", "show")
		if strings.Contains(links, l.prefix+"-") {
			t.Errorf("links left behind:\n%s", links)
		}
	})
	l.build()
	l.startPrimary()
	l.startStandby()
	l.ka1 = l.startKeepalived(l.a1, l.in1)
	l.ka2 = l.startKeepalived(l.a2, l.in2)
	eventually(t, 15*time.Second, "the VIP is on admin1", func() (bool, string) { return l.vipOn(l.a1) && !l.vipOn(l.a2), l.addrs() })

	// Before the failure: DNS via the VIP, and the way out through the
	// VIP holder's NAT (admin1's uplink address).
	eventually(t, 10*time.Second, "the node reaches wan through admin1's NAT", func() (bool, string) {
		from, err := (&gwLab{}).dial(l.node, l.wanTCP, 2*time.Second)
		return from == "10.201.8.1", fmt.Sprint(from, err)
	})
	eventually(t, 10*time.Second, "the node resolves admin.lab.internal via the VIP", func() (bool, string) {
		out := l.dig(haVIP, "admin.lab.internal")
		return out == haVIP, out
	})
	l.nodeScript()
	labChronyd(t, l.node, "node-chronyd", "server "+haVIP+" iburst minpoll 0 maxpoll 0", "port 0",
		"cmdport 11124", "bindcmdaddress 127.0.0.1", "cmdallow 127.0.0.1")
	l.chronySelectsVIP(30 * time.Second)
	eventually(t, 20*time.Second, "the standby has followed the primary once (config, ca, images)", func() (bool, string) {
		var st haStatus
		l.in2.status().detail(t, "ha", &st)
		return st.PeerReachable && st.inSync("config") && st.inSync("ca") && st.inSync("images"), fmt.Sprintf("%+v", st)
	})

	img := ociImage(t, nil, 64<<10)
	digest := l.checkFollows(img)
	// The rest of the seed checklist through the VIP, before the failure:
	// dnf and an image pull by digest.
	if got := l.dnfNames("http://" + haVIP + "/repos/local/"); got != "alpha bravo" {
		t.Errorf("dnf on the node via the VIP before the failure sees %q, want alpha bravo", got)
	}
	if err := l.pull(haVIP, "lab/app@"+digest); err != nil {
		t.Errorf("the node pulls lab/app by digest via the VIP before the failure: %v", err)
	}

	// A push or a config edit on the standby is refused, naming the primary.
	if err := l.push(haAdmin2, "lab/app:v2", img); err == nil || !strings.Contains(err.Error(), l.admin1URL) {
		t.Errorf("push to the standby: %v, want a refusal naming %s", err, l.admin1URL)
	}
	if body := l.control(l.in2, "POST", "/api/v1/dns/records", `{"zone":"lab.internal","record":"x 300 A 10.201.7.98"}`, 422); !strings.Contains(body, l.admin1URL) {
		t.Errorf("record added on the standby: %s, want a refusal naming %s", body, l.admin1URL)
	}

	// `ha check` fails while admin1's airgapd cannot answer, and keepalived
	// moves the VIP; when it answers again the VIP comes back.
	l.in1.cmd.Process.Signal(syscall.SIGSTOP)
	if out, err := run(t, 10*time.Second, "ip", "netns", "exec", l.a1, airgapdBin, "ha", "check", "--socket", filepath.Join(l.in1.dir, "run", "api.sock")); err == nil {
		t.Errorf("ha check on a stopped airgapd exits 0:\n%s", out)
	}
	stopped := time.Now()
	eventually(t, 15*time.Second, "keepalived moves the VIP to admin2 when admin1's check fails", func() (bool, string) {
		return l.vipOn(l.a2) && !l.vipOn(l.a1), l.addrs()
	})
	t.Logf("VIP on admin2 %s after admin1's airgapd stopped answering", time.Since(stopped).Round(time.Millisecond))
	l.in1.cmd.Process.Signal(syscall.SIGCONT)
	if out, err := run(t, 10*time.Second, "ip", "netns", "exec", l.a1, airgapdBin, "ha", "check", "--socket", filepath.Join(l.in1.dir, "run", "api.sock")); err != nil {
		t.Errorf("ha check on a running airgapd: %v\n%s", err, out)
	}
	eventually(t, 15*time.Second, "the VIP returns to admin1", func() (bool, string) { return l.vipOn(l.a1) && !l.vipOn(l.a2), l.addrs() })

	// Kill admin1's airgapd and keepalived.
	l.in1.cmd.Process.Kill()
	l.ka1.kill()
	killed := time.Now()
	eventually(t, 10*time.Second, "the VIP is on admin2 after the kill", func() (bool, string) { return l.vipOn(l.a2), l.addrs() })
	eventually(t, 10*time.Second-time.Since(killed), "the node resolves new1 via the VIP", func() (bool, string) {
		out := l.dig(haVIP, "new1.lab.internal")
		return out == "10.201.7.99", out
	})
	eventually(t, 10*time.Second-time.Since(killed), "the node pulls lab/app by digest via the VIP", func() (bool, string) {
		err := l.pull(haVIP, "lab/app@"+digest)
		return err == nil, fmt.Sprint(err)
	})
	eventually(t, 10*time.Second-time.Since(killed), "the node reaches wan through admin2's NAT", func() (bool, string) {
		from, err := (&gwLab{}).dial(l.node, l.wanTCP, time.Second)
		return from == "10.201.9.1", fmt.Sprint(from, err)
	})
	eventually(t, 10*time.Second-time.Since(killed), "dnf on the node sees bravo via the VIP", func() (bool, string) {
		got, err := l.dnfList("http://" + haVIP + "/repos/local/")
		return err == nil && got == "alpha bravo", fmt.Sprint(got, err)
	})
	t.Logf("node served by admin2 (DNS, image, NAT, dnf) %s after the kill", time.Since(killed).Round(time.Millisecond))
	l.chronySelectsVIP(30 * time.Second)
	if err := l.push(haVIP, "lab/app:v2", img); err == nil || !strings.Contains(err.Error(), l.admin1URL) {
		t.Errorf("push to admin2 before promote: %v, want a refusal naming %s", err, l.admin1URL)
	}

	// Promote admin2: pushes go through, and the role is in its config.
	out, err := run(t, 60*time.Second, airgapdBin, "ha", "promote", "--socket", filepath.Join(l.in2.dir, "run", "api.sock"))
	if err != nil || !strings.Contains(out, "now the primary") {
		t.Fatalf("ha promote: %v\n%s", err, out)
	}
	if err := l.push(haVIP, "lab/app:v2", img); err != nil {
		t.Errorf("push to admin2 after promote: %v", err)
	}
	if b, _ := os.ReadFile(l.in2.config); !strings.Contains(string(b), "role: primary") {
		t.Errorf("promote did not save ha.role: primary in the config:\n%s", b)
	}
	// The local repo was a folder on admin1: admin2 keeps serving its copy.
	if !strings.Contains(out, "repos local were folders on the old primary") {
		t.Errorf("ha promote does not say what happens to the folder repo:\n%s", out)
	}
	if got := l.dnfNames("http://" + haVIP + "/repos/local/"); got != "alpha bravo" {
		t.Errorf("dnf on the node via the VIP after promote sees %q, want alpha bravo", got)
	}
}

// checkFollows changes the primary (a DNS record, an image, an RPM) and
// checks that each reaches the standby within 10 s, with the tokens, the
// status and the metrics; it returns the image's digest.
func (l *haLab) checkFollows(img v1.Image) string {
	t := l.t
	// A DNS record added on the primary resolves on the standby within 10 s.
	l.control(l.in1, "POST", "/api/v1/dns/records", `{"zone":"lab.internal","record":"new1 300 A 10.201.7.99"}`, 200)
	added := time.Now()
	eventually(t, 10*time.Second, "new1.lab.internal resolves on the standby", func() (bool, string) {
		out := l.dig(haAdmin2, "new1.lab.internal")
		return out == "10.201.7.99", out
	})
	t.Logf("record on the standby %s after it was added on the primary", time.Since(added).Round(time.Millisecond))

	// An image pushed on the primary is on the standby by digest within 10 s.
	digest := imageDigest(t, img)
	if err := l.push(haAdmin1, "lab/app:v1", img); err != nil {
		t.Fatalf("push to the primary: %v", err)
	}
	pushed := time.Now()
	eventually(t, 10*time.Second, "lab/app@"+digest+" on the standby", func() (bool, string) {
		err := l.pull(haAdmin2, "lab/app@"+digest)
		return err == nil, fmt.Sprint(err)
	})
	t.Logf("image on the standby %s after the push", time.Since(pushed).Round(time.Millisecond))

	// A tag deleted on the primary goes on the standby too.
	if err := l.push(haAdmin1, "lab/old:v1", ociImage(t, nil, 8<<10)); err != nil {
		t.Fatalf("push lab/old:v1: %v", err)
	}
	eventually(t, 10*time.Second, "lab/old:v1 on the standby", func() (bool, string) {
		err := l.pull(haAdmin2, "lab/old:v1")
		return err == nil, fmt.Sprint(err)
	})
	l.control(l.in1, "DELETE", "/api/v1/registry/tags?repo=lab/old&tag=v1", "", 200)
	eventually(t, 10*time.Second, "lab/old:v1 gone from the standby", func() (bool, string) {
		err := l.pull(haAdmin2, "lab/old:v1")
		return err != nil && strings.Contains(err.Error(), "MANIFEST_UNKNOWN"), fmt.Sprint(err)
	})

	// An RPM added to the primary's local repo is on the standby within 10 s.
	l.repo.add("bravo", 20000)
	rpmAdded := time.Now()
	eventually(t, 10*time.Second, "bravo in the standby's copy of repo local", func() (bool, string) {
		var m api.MirrorStatus
		l.in2.status().detail(t, "mirror", &m)
		for _, r := range m.Repos {
			if r.Name == "local" && r.Packages == 2 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", m.Repos)
	})
	t.Logf("RPM on the standby %s after it was added on the primary", time.Since(rpmAdded).Round(time.Millisecond))

	// The standby has the primary's tokens: the peer token works on it.
	if out, err := run(t, 10*time.Second, "ip", "netns", "exec", l.node, "curl", "-fsS", "--cacert", l.ca, "-H", "Authorization: Bearer "+l.token, "https://"+haAdmin2+":8443/api/v1/status"); err != nil || !strings.Contains(out, `"services"`) {
		t.Errorf("the primary's token on the standby: %v\n%s", err, out)
	}
	// Status and metrics show the role, the peer and the lag per kind.
	out, err := run(t, 10*time.Second, airgapdBin, "status", "--socket", filepath.Join(l.in2.dir, "run", "api.sock"))
	if err != nil || !regexp.MustCompile(`(?m)^ha\s+standby\s+standby of https://10\.201\.7\.11:8443 .*reachable; lag: config \d+s, zones \d+s, ca \d+s, tokens \d+s, repos \d+s, images \d+s`).MatchString(out) {
		t.Errorf("airgapd status on the standby: %v\n%s", err, out)
	}
	metrics := l.control(l.in2, "GET", "/metrics", "", 200)
	wants := []string{`airgapd_ha_role{role="standby"} 1`, `airgapd_ha_peer_reachable 1`}
	for _, k := range []string{"config", "zones", "ca", "tokens", "repos", "images"} {
		wants = append(wants, `airgapd_ha_replication_lag_seconds{kind="`+k+`"}`)
	}
	for _, want := range wants {
		if !strings.Contains(metrics, want) {
			t.Errorf("standby /metrics lacks %s", want)
		}
	}

	return digest
}

// nodeScript runs node.sh from the VIP in the node (--root): nameserver
// and chrony server lines for both admin hosts, everything else the VIP.
func (l *haLab) nodeScript() {
	t := l.t
	root := t.TempDir()
	copyTree(t, "testdata/node/rocky9", root)
	script := filepath.Join(t.TempDir(), "node.sh")
	if out, err := run(t, 30*time.Second, "ip", "netns", "exec", l.node, "curl", "-fsS", "-o", script, "http://"+haVIP+"/bootstrap/node.sh"); err != nil {
		t.Fatalf("fetch node.sh: %v\n%s", err, out)
	}
	if out, err := run(t, 60*time.Second, "ip", "netns", "exec", l.node, "sh", script, "--root", root); err != nil {
		t.Fatalf("node.sh --root: %v\n%s", err, out)
	}
	files := snapshot(t, root)
	for path, want := range map[string][]string{
		"etc/resolv.conf":                    {"nameserver " + haAdmin1 + "\n", "nameserver " + haAdmin2 + "\n"},
		"etc/chrony.conf":                    {"server " + haAdmin1 + " iburst", "server " + haAdmin2 + " iburst"},
		"etc/yum.repos.d/airgapd-local.repo": {"http://admin.lab.internal/repos/local/"}, // admin → the VIP
	} {
		for _, w := range want {
			if !strings.Contains(files[path], w) {
				t.Errorf("node.sh on the pair wrote %s without %q:\n%s", path, w, files[path])
			}
		}
	}
	if strings.Contains(files["etc/resolv.conf"], "nameserver "+haVIP) {
		t.Errorf("resolv.conf names the VIP as well as both hosts:\n%s", files["etc/resolv.conf"])
	}
}

// chronySelectsVIP waits until the node's chronyd has the VIP as its
// selected source (^*).
func (l *haLab) chronySelectsVIP(limit time.Duration) {
	l.t.Helper()
	eventually(l.t, limit, "the node's chronyd selects the VIP (^*)", func() (bool, string) {
		out, _ := run(l.t, 10*time.Second, "ip", "netns", "exec", l.node, "chronyc", "-n", "-h", "127.0.0.1", "-p", "11124", "sources")
		return strings.Contains(out, "^* "+haVIP), out
	})
}

// dnfNames is what dnf on the node lists in the repo at url.
func (l *haLab) dnfNames(url string) string {
	names, err := l.dnfList(url)
	if err != nil {
		l.t.Errorf("%v", err)
	}
	return names
}

func (l *haLab) dnfList(url string) (string, error) {
	dir := l.t.TempDir()
	out, err := run(l.t, 90*time.Second, "ip", "netns", "exec", l.node, "dnf", "--setopt=reposdir="+dir, "--installroot="+filepath.Join(dir, "root"),
		"--releasever=9", "--disableplugin=local", "-y", "-q", "--refresh", "--repofrompath=ha,"+url, "--repo=ha", "--nogpgcheck", "repoquery", "--qf", "%{name}")
	if err != nil {
		return "", fmt.Errorf("dnf repoquery %s: %w\n%s", url, err, out)
	}
	names := strings.Fields(out)
	slices.Sort(names)
	return strings.Join(names, " "), nil
}

// haStatus is the ha line's detail.
type haStatus struct {
	Role          string `json:"role"`
	PeerReachable bool   `json:"peer_reachable"`
	PeerError     string `json:"peer_error"`
	Kinds         []struct {
		Kind   string    `json:"kind"`
		InSync time.Time `json:"in_sync"`
		Error  string    `json:"error"`
	} `json:"kinds"`
}

func (s haStatus) inSync(kind string) bool {
	for _, k := range s.Kinds {
		if k.Kind == kind {
			return !k.InSync.IsZero() && k.Error == ""
		}
	}
	return false
}

func (l *haLab) sh(args ...string) {
	l.t.Helper()
	if out, err := run(l.t, 30*time.Second, args[0], args[1:]...); err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (l *haLab) build() {
	t := l.t
	for {
		l.prefix = fmt.Sprintf("ha%04x", rand.IntN(0x10000))
		if _, err := os.Stat("/run/netns/" + l.prefix + "-lan"); os.IsNotExist(err) {
			break
		}
	}
	p := l.prefix
	l.lan, l.a1, l.a2, l.node = p+"-lan", p+"-a1", p+"-a2", p+"-nd"
	l.wan = p + "-wan"
	for _, ns := range []string{l.lan, l.a1, l.a2, l.node, l.wan} {
		l.sh("ip", "netns", "add", ns)
		t.Cleanup(func() { run(t, 30*time.Second, "ip", "netns", "del", ns) })
		// Runs before the namespace goes, after every process the test
		// started in it was stopped: none may be left.
		t.Cleanup(func() {
			deadline := time.Now().Add(10 * time.Second)
			for {
				out, _ := run(t, 10*time.Second, "ip", "netns", "pids", ns)
				if strings.TrimSpace(out) == "" {
					return
				}
				if time.Now().After(deadline) {
					ps, _ := run(t, 10*time.Second, "ps", "-o", "pid,args", "-p", strings.Join(strings.Fields(out), ","))
					t.Errorf("processes left in namespace %s:\n%s", ns, ps)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
		l.sh("ip", "-n", ns, "link", "set", "lo", "up")
	}
	br := p + "-br"
	l.sh("ip", "-n", l.lan, "link", "add", br, "type", "bridge")
	l.sh("ip", "-n", l.lan, "link", "set", br, "up")
	// Veth names ≤ 15 bytes: "ha1234-1a" is 9.
	for _, h := range []struct{ ns, end, addr string }{{l.a1, "1", haAdmin1}, {l.a2, "2", haAdmin2}, {l.node, "n", haNode}} {
		in, out := p+"-"+h.end+"a", p+"-"+h.end+"b"
		l.sh("ip", "link", "add", in, "netns", h.ns, "type", "veth", "peer", "name", out, "netns", l.lan)
		l.sh("ip", "-n", l.lan, "link", "set", out, "master", br)
		l.sh("ip", "-n", l.lan, "link", "set", out, "up")
		l.sh("ip", "-n", h.ns, "addr", "add", h.addr+"/24", "dev", in)
		l.sh("ip", "-n", h.ns, "link", "set", in, "up")
	}
	l.if1, l.if2 = p+"-1a", p+"-2a"
	// Each admin host's uplink to wan, on a net of its own; the node's
	// default route is the VIP.
	l.wan1, l.wan2 = p+"-1w", p+"-2w"
	for _, u := range []struct{ ns, dev, peer, net string }{{l.a1, l.wan1, p + "-w1", "10.201.8"}, {l.a2, l.wan2, p + "-w2", "10.201.9"}} {
		l.sh("ip", "link", "add", u.dev, "netns", u.ns, "type", "veth", "peer", "name", u.peer, "netns", l.wan)
		l.sh("ip", "-n", u.ns, "addr", "add", u.net+".1/24", "dev", u.dev)
		l.sh("ip", "-n", l.wan, "addr", "add", u.net+".2/24", "dev", u.peer)
		l.sh("ip", "-n", u.ns, "link", "set", u.dev, "up")
		l.sh("ip", "-n", l.wan, "link", "set", u.peer, "up")
		l.sh("ip", "-n", u.ns, "route", "add", "default", "via", u.net+".2")
		// A new namespace may inherit the host's forwarding: start off, so
		// the gateway is what turns it on.
		l.sh("ip", "netns", "exec", u.ns, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")
	}
	l.sh("ip", "-n", l.node, "route", "add", "default", "via", haVIP)
	// wan's "internet" address, reached by both uplinks.
	l.sh("ip", "-n", l.wan, "addr", "add", "10.201.10.1/32", "dev", "lo")
	l.wanTCP = (&gwLab{}).listen(t, l.wan, "10.201.10.1:0")
	l.admin1URL = "https://" + haAdmin1 + ":8443"
}

// haConfig is one admin host's config; both share everything but the
// host-specific keys (and the standby's repo folder is empty: what it
// serves is the primary's copy).
func (l *haLab) haConfig(self, role, peer, iface, repoDir, uplink string) string {
	pin := ""
	if l.peerPin != "" {
		pin = "peer_ca_sha256: " + l.peerPin
	}
	return fmt.Sprintf(`
advertise: { name: admin.lab.internal, addresses: [%[4]s, %[1]s] }
web: { listen: "0.0.0.0:8443", tls: auto }
dns:
  listen: ["0.0.0.0:53"]
  allow_query: [127.0.0.0/8, 10.201.7.0/24]
  allow_recursion: [127.0.0.0/8]
  zones:
    - name: lab.internal
      records: ["admin 300 A %[4]s", "registry CNAME admin"] # %[7]s
ntp:
  listen: ["0.0.0.0:123"]
  allow: [10.201.7.0/24]
  local_stratum: 10
  ratelimit: { interval: -2, burst: 16 }
gateway:
  mode: apply
  ip_forward: true
  masquerade: [{ source: 10.201.7.0/24, out_interface: %[12]s }]
  reconcile_every: 2s
mirror:
  listen: "0.0.0.0:80"
  index_every: 1s
  repos:
    - { name: local, path: %[11]s }
registry:
  listen: "0.0.0.0:5000"
  tls: auto
  users: [{name: admin, password_hash: "%[8]s"}]
  pull_from: [127.0.0.0/8, 10.201.7.0/24]
ha:
  role: %[2]s
  peer: "https://%[3]s:8443"
  peer_token_file: %[5]s
  vip: %[4]s/24
  interface: %[6]s
  virtual_router_id: %[9]d
  follow_every: 1s
  %[10]s
`, self, role, peer, haVIP, l.tokenFile, iface, role, registryTestHash, l.vrid, pin, repoDir, uplink)
}

func (l *haLab) startPrimary() {
	t := l.t
	dir := t.TempDir()
	l.tokenFile = filepath.Join(t.TempDir(), "ha-peer.token")
	l.repo = &rpmUpstream{t: t, dir: t.TempDir()}
	l.repo.add("alpha", 20000)
	l.in1 = launchIn(t, l.a1, dir, l.haConfig(haAdmin1, "primary", haAdmin2, l.if1, l.repo.dir, l.wan1))
	l.in1.waitLog("airgapd ready", 20*time.Second)
	l.ca = filepath.Join(dir, "data", "pki", "ca.crt")
	body := l.control(l.in1, "POST", "/api/v1/tokens", `{"name":"ha-peer"}`, 201)
	var r struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Token == "" {
		t.Fatalf("token: %s", body)
	}
	l.token = r.Token
	if err := os.WriteFile(l.tokenFile, []byte(r.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pemData, err := os.ReadFile(l.ca)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemData)
	sum := sha256.Sum256(block.Bytes)
	l.peerPin = hex.EncodeToString(sum[:])
}

func (l *haLab) startStandby() {
	l.in2 = launchIn(l.t, l.a2, l.t.TempDir(), l.haConfig(haAdmin2, "standby", haAdmin1, l.if2, l.t.TempDir(), l.wan2))
	l.in2.waitLog("airgapd ready", 20*time.Second)
}

// control calls an instance's control socket with curl and checks the code.
func (l *haLab) control(in *instance, method, path, body string, want int) string {
	l.t.Helper()
	out, err := run(l.t, 30*time.Second, "curl", "-sS", "--unix-socket", filepath.Join(in.dir, "run", "api.sock"),
		"-X", method, "-H", "Content-Type: application/json", "-d", body, "-w", "\n%{http_code}", "http://localhost"+path)
	if err != nil {
		l.t.Fatalf("%s %s: %v\n%s", method, path, err, out)
	}
	i := strings.LastIndex(out, "\n")
	if code := strings.TrimSpace(out[i+1:]); code != fmt.Sprint(want) {
		l.t.Fatalf("%s %s: HTTP %s, want %d\n%s", method, path, code, want, out)
	}
	return out[:i]
}

func (l *haLab) vipOn(ns string) bool {
	out, _ := run(l.t, 10*time.Second, "ip", "-n", ns, "-o", "-4", "addr", "show")
	return strings.Contains(out, " "+haVIP+"/")
}

func (l *haLab) addrs() string {
	a1, _ := run(l.t, 10*time.Second, "ip", "-n", l.a1, "-o", "-4", "addr", "show")
	a2, _ := run(l.t, 10*time.Second, "ip", "-n", l.a2, "-o", "-4", "addr", "show")
	return "admin1:\n" + a1 + "admin2:\n" + a2
}

// dig asks server from the node.
func (l *haLab) dig(server, qname string) string {
	out, _ := run(l.t, 10*time.Second, "ip", "netns", "exec", l.node, "dig", "+short", "+time=1", "+tries=1", "@"+server, qname)
	return strings.TrimSpace(out)
}

// nodeTransport dials from the node and trusts the pair's CA only.
func (l *haLab) nodeTransport() *http.Transport {
	pool := x509.NewCertPool()
	if pemData, err := os.ReadFile(l.ca); err == nil {
		pool.AppendCertsFromPEM(pemData)
	}
	return &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := inNetns(l.node, func() (err error) {
				c, err = (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}
}

func (l *haLab) push(host, ref string, img v1.Image) error {
	r, err := name.ParseReference(host + ":5000/" + ref)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := l.nodeTransport()
	defer tr.CloseIdleConnections()
	return remote.Write(r, img, remote.WithTransport(tr), remote.WithContext(ctx),
		remote.WithAuth(&authn.Basic{Username: "admin", Password: "s3cret"}))
}

// pull fetches ref anonymously from the node and reads every blob.
func (l *haLab) pull(host, ref string) error {
	r, err := name.ParseReference(host + ":5000/" + ref)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tr := l.nodeTransport()
	defer tr.CloseIdleConnections()
	img, err := remote.Image(r, remote.WithTransport(tr), remote.WithContext(ctx))
	if err != nil {
		return err
	}
	return readBlobs(img)
}
