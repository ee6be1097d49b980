package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airgapd/airgapd/internal/testpki"
)

// TestNTPNTSChrony: Debian's chronyd 4.3 as an NTS client of airgapd
// (`server 127.0.0.1 port P iburst nts ntsport K`, ntstrustedcerts =
// airgapd's CA) does the key exchange and syncs on authenticated packets;
// a chronyd trusting another CA fails the key exchange; after airgapd
// restarts, the first client keeps syncing on the cookies it holds: the
// new airgapd counts authenticated requests but no key exchange; with
// the key ring deleted, the client gets a KoD NTSN and redoes the exchange.
func TestNTPNTSChrony(t *testing.T) {
	need(t, "chronyd", "chronyc")
	dir := t.TempDir()
	ntpPort, kePort := freeUDPPort(t), freePort(t)
	cfg := fmt.Sprintf(`ntp:
  listen: ["127.0.0.1:%d"]
  allow: [127.0.0.0/8]
  ratelimit: { enabled: false }
  nts:
    enabled: true
    listen: "127.0.0.1:%d"
`, ntpPort, kePort)
	in := start(t, dir, cfg)
	caFile := filepath.Join(dir, "data", "pki", "ca.crt")

	// Each client is asked on its Unix socket: authdata is a privileged
	// command.
	client := func(name, trusted string) (sock string) {
		dir, _ := chronyd(t, name, fmt.Sprintf("server 127.0.0.1 port %d iburst nts ntsport %d minpoll 0 maxpoll 0", ntpPort, kePort),
			"ntstrustedcerts "+trusted, "port 0", "cmdport 0")
		return filepath.Join(dir, "chronyd.sock")
	}
	chronyc := func(sock string, args ...string) string {
		out, _ := run(t, 5*time.Second, "chronyc", append([]string{"-n", "-h", sock}, args...)...)
		return out
	}
	// authdata: Name/IP  Mode KeyID Type KLen Last Atmp NAK Cook CLen
	authLine := regexp.MustCompile(`(?m)^127\.0\.0\.1\s+NTS\s+\d+\s+(\d+)\s+(\d+)\s+\S+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)`)
	cookies := func(port string) (int, string) {
		out := chronyc(port, "authdata")
		m := authLine.FindStringSubmatch(out)
		if m == nil {
			return -1, out
		}
		n, _ := strconv.Atoi(m[5])
		return n, out
	}

	good := client("good", caFile)
	eventually(t, 30*time.Second, "the NTS client selects airgapd (^*) with cookies", func() (bool, string) {
		src := chronyc(good, "sources")
		n, auth := cookies(good)
		return strings.Contains(src, "^* 127.0.0.1") && n > 0, src + auth
	})
	t.Logf("chronyc authdata:\n%s", chronyc(good, "authdata"))
	nts := in.ntp().NTS
	if nts == nil || nts.Handshakes != 1 || nts.Authenticated == 0 {
		t.Fatalf("airgapd's NTS status %+v, want 1 handshake and authenticated requests", nts)
	}
	t.Logf("airgapd NTS: %d handshake(s), %d authenticated requests, cookie key %d", nts.Handshakes, nts.Authenticated, nts.CookieKeyID)

	// Another CA: the TLS handshake fails, no cookies, no sync.
	other := testpki.New(t, t.TempDir())
	bad := client("othera", other.CAFile)
	eventually(t, 20*time.Second, "airgapd counts the failed key exchange", func() (bool, string) {
		n := in.ntp().NTS
		return n.Failures["ke_tls"] > 0, fmt.Sprint(n.Failures)
	})
	if n, out := cookies(bad); n > 0 || strings.Contains(chronyc(bad, "sources"), "^*") {
		t.Errorf("a client trusting another CA got %d cookies:\n%s", n, out)
	}

	// Restart airgapd: the key ring is in data_dir, so the cookies the
	// client holds still open.
	in.signal(syscall.SIGTERM)
	if code := in.waitExit(15 * time.Second); code != 0 {
		t.Fatalf("airgapd exited %d", code)
	}
	in = start(t, dir, cfg)
	eventually(t, 20*time.Second, "the client's NTS requests authenticate on the new airgapd", func() (bool, string) {
		n := in.ntp().NTS
		return n.Authenticated >= 5, fmt.Sprintf("%+v", n)
	})
	nts = in.ntp().NTS
	src := chronyc(good, "sources")
	if nts.Handshakes != 0 || !strings.Contains(src, "^* 127.0.0.1") {
		t.Errorf("after restart: %d key exchanges (want 0), %d authenticated; sources:\n%s", nts.Handshakes, nts.Authenticated, src)
	}
	if nts.Failures["cookie"] != 0 {
		t.Errorf("after restart %d cookies did not open", nts.Failures["cookie"])
	}
	t.Logf("after restart: %d key exchanges, %d authenticated requests; chronyc authdata:\n%s", nts.Handshakes, nts.Authenticated, chronyc(good, "authdata"))

	// Without the key ring the cookies are dead: the client is told so
	// (KoD NTSN) and does the key exchange again.
	in.signal(syscall.SIGTERM)
	if code := in.waitExit(15 * time.Second); code != 0 {
		t.Fatalf("airgapd exited %d", code)
	}
	if err := os.Remove(filepath.Join(dir, "data", "ntp", "nts-keys.json")); err != nil {
		t.Fatal(err)
	}
	in = start(t, dir, cfg)
	eventually(t, 30*time.Second, "the client redoes the key exchange after a NAK", func() (bool, string) {
		n := in.ntp().NTS
		return n.Failures["cookie"] > 0 && n.Handshakes >= 1 && n.Authenticated > 0, fmt.Sprintf("%+v", n)
	})
}

// TestWebNTPPageNTS: the NTP page shows NTS's state: off by default, and
// with ntp.nts on its key-exchange listener and counters.
func TestWebNTPPageNTS(t *testing.T) {
	for _, tc := range []struct {
		name, extra, want string
	}{
		{"off", "", `<dd id="nts">off`},
		{"on", "  nts: { enabled: true, listen: \"127.0.0.1:0\" }\n", `<dd id="nts">on, key exchange on 127.0.0.1:`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := startWebServerConfig(t, strings.Replace(webTestConfig, "  allow: [127.0.0.0/8]\ngateway:", "  allow: [127.0.0.0/8]\n"+tc.extra+"gateway:", 1))
			c := ws.login(t)
			code, body, _ := ws.do(t, c, "GET", "/ntp", "", nil)
			i := strings.Index(body, `<dd id="nts">`)
			if code != 200 || !strings.Contains(body, tc.want) {
				t.Fatalf("NTP page %d: want %q in\n%s", code, tc.want, body[max(0, i):min(len(body), max(0, i)+300)])
			}
			t.Logf("NTS on the NTP page: %s", body[i:i+strings.Index(body[i:], "</dd>")])
		})
	}
}
