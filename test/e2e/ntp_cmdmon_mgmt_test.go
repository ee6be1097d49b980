package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNTPChronycMgmt: `chronyc serverstats` and `chronyc clients` are
// answered to cmdmon.mgmt (127.0.0.1) with airgapd's counters and clients
// table; once a reload makes cmdmon.mgmt another network, they are refused
// ("501 Not authorised") to 127.0.0.1, which cmdmon.allow still lets ask
// tracking. (chronyc has no source-address option and on loopback always
// sends from 127.0.0.1, hence the reload.)
func TestNTPChronycMgmt(t *testing.T) {
	need(t, "chronyc")
	cmdPort := strconv.Itoa(freeUDPPort(t))
	cfg := func(mgmt string) string {
		return fmt.Sprintf(`ntp:
  listen: [127.0.0.1:0]
  allow: [127.0.0.0/8]
  cmdmon:
    listen: ["127.0.0.1:%s"]
    allow: [127.0.0.0/8]
    mgmt: [%s]
`, cmdPort, mgmt)
	}
	in := start(t, t.TempDir(), cfg("127.0.0.1/32"))
	addr := in.ntpAddr()
	for range 3 {
		if _, err := ntpQuery(addr, "127.0.0.3"); err != nil {
			t.Fatal(err)
		}
	}
	chronyc := func(host string, args ...string) string {
		t.Helper()
		out, _ := run(t, 20*time.Second, "chronyc", append([]string{"-n", "-h", host, "-p", cmdPort}, args...)...)
		return out
	}

	stats := chronyc("127.0.0.1", "serverstats")
	t.Logf("chronyc serverstats from 127.0.0.1:\n%s", stats)
	if m := regexp.MustCompile(`NTP packets received\s*: (\d+)`).FindStringSubmatch(stats); m == nil || m[1] != "3" {
		t.Errorf("serverstats: want 3 NTP packets received:\n%s", stats)
	}
	clients := chronyc("127.0.0.1", "clients")
	t.Logf("chronyc clients from 127.0.0.1:\n%s", clients)
	if !regexp.MustCompile(`(?m)^127\.0\.0\.3\s+3\s+0\s`).MatchString(clients) {
		t.Errorf("clients: want 127.0.0.3 with 3 requests, 0 drops:\n%s", clients)
	}

	in.rewrite(cfg("10.20.0.0/16"))
	in.signal(syscall.SIGHUP)
	in.waitLog("config reloaded", 10*time.Second)
	for _, cmd := range []string{"serverstats", "clients"} {
		out := chronyc("127.0.0.1", cmd)
		if !strings.Contains(out, "501 Not authorised") {
			t.Errorf("%s from 127.0.0.1, now outside cmdmon.mgmt: want 501 Not authorised:\n%s", cmd, out)
		}
		t.Logf("chronyc %s from outside cmdmon.mgmt: %s", cmd, strings.TrimSpace(out))
	}
	if out := chronyc("127.0.0.1", "tracking"); !strings.Contains(out, "Reference ID") {
		t.Errorf("tracking from 127.0.0.1 (in cmdmon.allow):\n%s", out)
	}
}
