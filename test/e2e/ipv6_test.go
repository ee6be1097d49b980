package e2e

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestIPv6Listeners: every listener on an IPv6 address ([::1]:0) and an
// IPv6 advertise address: the web UI, mirror and registry answer there,
// DNS and NTP too, the server certificate names the address, and what
// nodes are given (.repo baseurls, node.sh, the registry host) brackets it
// (issue 18).
func TestIPv6Listeners(t *testing.T) {
	need(t, "dig", "curl")
	dir := t.TempDir()
	repo := filepath.Join(dir, "rpms")
	os.MkdirAll(repo, 0o755)
	in := start(t, dir, `
advertise: { addresses: ["fd00::10"] }
web: { listen: "[::1]:0", tls: off }
dns:
  listen: ["[::1]:0"]
  allow_query: ["::1"]
  forward: only
  zones: [{ name: lab.internal, records: ["admin AAAA fd00::10"] }]
ntp: { listen: ["[::1]:0"], allow: ["::1"], local_stratum: 10 }
registry: { listen: "[::1]:0", tls: auto, mirrors: [docker.io] }
mirror:
  listen: "[::1]:0"
  repos: [{ name: local, path: `+repo+` }]
`)
	st := in.status()
	for _, name := range []string{"ui", "mirror", "registry"} {
		if l := st.listener(name); !strings.Contains(l, "[::1]:") {
			t.Errorf("%s listens on %q, want [::1]", name, l)
		}
	}
	if code, body := httpGet(t, nil, st.listener("ui")+"/healthz"); code != 200 {
		t.Errorf("GET [::1] /healthz = %d %s", code, body)
	}
	mirror := st.listener("mirror")
	code, dotRepo := httpGet(t, nil, mirror+"/repos/local.repo")
	if code != 200 || !strings.Contains(dotRepo, "baseurl=http://[fd00::10]:") {
		t.Errorf("local.repo = %d, want a bracketed baseurl:\n%s", code, dotRepo)
	}
	code, script := httpGet(t, nil, mirror+"/bootstrap/node.sh")
	if code != 200 {
		t.Fatalf("node.sh = %d", code)
	}
	for _, want := range []string{"ADMIN_ADDR='fd00::10'", "MIRROR_URL='http://[fd00::10]:", "REGISTRY='[fd00::10]:"} {
		if !strings.Contains(script, want) {
			t.Errorf("node.sh lacks %s", want)
		}
	}
	if got := dig(t, dnsAddr(t, in), "admin.lab.internal", "AAAA"); !got.answerHas("AAAA fd00::10") {
		t.Errorf("dig over [::1] = %s %v", got.status, got.answer)
	}
	if _, ok, out := chronyQAt(t, "::1", in.ntpAddr(), 10); !ok {
		t.Errorf("chronyd -Q over [::1] did not sync:\n%s", out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "data", "pki", "server.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ip := range cert.IPAddresses {
		found = found || ip.Equal(net.ParseIP("fd00::10"))
	}
	if !found {
		t.Errorf("the server certificate names %v, not fd00::10", cert.IPAddresses)
	}
}

// chronyQAt is chronyQ against host, at the port of addr.
func chronyQAt(t *testing.T, host, addr string, limit int) (float64, bool, string) {
	t.Helper()
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	conf := filepath.Join(dir, "client.conf")
	os.WriteFile(conf, []byte("server "+host+" port "+port+" iburst\nport 0\ncmdport 0\npidfile "+dir+"/chronyd.pid\n"), 0o600)
	out, err := run(t, time.Duration(limit+10)*time.Second, "chronyd", "-Q", "-u", "root", "-t", strconv.Itoa(limit), "-f", conf)
	m := wrongBy.FindStringSubmatch(out)
	if err != nil || m == nil {
		return 0, false, out
	}
	v, perr := strconv.ParseFloat(m[1], 64)
	return v, perr == nil, out
}
