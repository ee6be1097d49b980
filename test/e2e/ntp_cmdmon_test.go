package e2e

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/facebook/time/ntp/chrony"
)

// TestNTPChronycCmdMon: airgapd synced to a real chronyd answers the real
// chronyc on ntp.cmdmon.listen: tracking, sources -v, sourcestats and
// activity print what airgapd's status says; clients is refused with 501
// Not authorised; an address outside cmdmon.allow gets no answer.
func TestNTPChronycCmdMon(t *testing.T) {
	need(t, "chronyd", "chronyc")
	upPort := freeUDPPort(t)
	upAddr := fmt.Sprintf("127.0.0.1:%d", upPort)
	chronyd(t, "upstream", fmt.Sprintf("port %d", upPort), "bindaddress 127.0.0.1", "local stratum 3",
		"allow 127.0.0.0/8", "cmdport 0")
	eventually(t, 10*time.Second, "upstream chronyd answers", func() (bool, string) {
		r, err := ntpQuery(upAddr, "")
		return err == nil && r.Stratum == 3, fmt.Sprint(err)
	})

	cmdPort := strconv.Itoa(freeUDPPort(t))
	in := start(t, t.TempDir(), fmt.Sprintf(`ntp:
  listen: [127.0.0.1:0]
  allow: [127.0.0.0/8]
  servers: [%q]
  minpoll: 0
  maxpoll: 1
  fallback_after: 10s
  cmdmon:
    listen: ["127.0.0.1:%s"]
    allow: [127.0.0.1/32]
`, upAddr, cmdPort))
	eventually(t, 15*time.Second, "airgapd selects the upstream (^*)", func() (bool, string) {
		d := in.ntp()
		return d.State == "synced" && len(d.Sources) == 1 && d.Sources[0].Mark == "*", d.Summary + "\n" + d.SourcesView
	})
	chronyc := func(args ...string) string {
		t.Helper()
		out, err := run(t, 20*time.Second, "chronyc", append([]string{"-n", "-h", "127.0.0.1", "-p", cmdPort}, args...)...)
		if err != nil && !strings.Contains(out, "501 Not authorised") {
			t.Fatalf("chronyc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	tracking := chronyc("tracking")
	t.Logf("chronyc tracking against airgapd:\n%s", tracking)
	d := in.ntp()
	for _, want := range []string{
		`Reference ID\s*: 7F000001 \(127\.0\.0\.1\)`,
		fmt.Sprintf(`Stratum\s*: %d\n`, d.Stratum),
		`Leap status\s*: Normal`,
		`System time\s*: [0-9.]+ seconds (slow|fast) of NTP time`,
	} {
		if !regexp.MustCompile(want).MatchString(tracking) {
			t.Errorf("tracking does not match %q", want)
		}
	}
	if d.Stratum != 4 {
		t.Errorf("airgapd serves stratum %d, want 4", d.Stratum)
	}

	sources := chronyc("sources", "-v")
	t.Logf("chronyc sources -v against airgapd:\n%s", sources)
	m := regexp.MustCompile(`(?m)^\^(.) 127\.0\.0\.1\s+(\d+)\s+(-?\d+)\s+(\d+)`).FindStringSubmatch(sources)
	d = in.ntp()
	if m == nil || m[1] != d.Sources[0].Mark || m[2] != "3" || m[3] != strconv.Itoa(d.Sources[0].Poll) {
		t.Errorf("sources line %q; status: mark %s, stratum %d, poll %d", m, d.Sources[0].Mark, d.Sources[0].Stratum, d.Sources[0].Poll)
	}
	if !strings.Contains(sources, "Source state '*' = current best") {
		t.Errorf("sources -v has no legend")
	}

	stats := chronyc("sourcestats")
	if !regexp.MustCompile(`(?m)^127\.0\.0\.1\s+\d+\s+\d+\s+\d+`).MatchString(stats) {
		t.Errorf("sourcestats:\n%s", stats)
	}
	if act := chronyc("activity"); !strings.Contains(act, "1 sources online") {
		t.Errorf("activity:\n%s", act)
	}
	if out := chronyc("clients"); !strings.Contains(out, "501 Not authorised") {
		t.Errorf("clients: want 501 Not authorised:\n%s", out)
	}

	// From 127.0.0.2, outside cmdmon.allow: silence.
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: mustAtoi(t, cmdPort)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if r, err := (&chrony.Client{Connection: conn}).Communicate(chrony.NewTrackingPacket()); err == nil {
		t.Errorf("127.0.0.2 is outside cmdmon.allow but got %+v", r)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
