package e2e

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airgapd/airgapd/api"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address local (127.0.0.2 …), as a node on the lab network would.
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestBrowserNodesPage: two nodes (127.0.0.2 and 127.0.0.3) ask DNS and
// NTP; one downloads a .repo file and reports its checklist; the Nodes
// page lists both with their zone names, counts and the checklist; a
// report from outside dns.allow_query is refused.
func TestBrowserNodesPage(t *testing.T) {
	b := newBrowser(t)
	need(t, "dig")
	cfg := strings.Replace(webTestConfig, `        - "registry CNAME admin"
`, `        - "registry CNAME admin"
        - "node2 300 A 127.0.0.2"
        - "node3 300 A 127.0.0.3"
`, 1)
	cfg = strings.Replace(cfg, "  forward: only ", "  allow_query: [127.0.0.1/32, 127.0.0.2/32, 127.0.0.3/32]\n  forward: only ", 1)
	ws := startWebServerConfig(t, cfg)
	host, port, _ := net.SplitHostPort(ws.dns)
	var ntp api.NTPStatus
	ws.status().detail(t, "ntp", &ntp)
	for _, node := range []string{"127.0.0.2", "127.0.0.3"} {
		for range 2 {
			if out, err := exec.Command("dig", "+short", "+time=2", "+tries=1", "-b", node, "@"+host, "-p", port, "admin.lab.internal", "A").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "127.0.0.1" {
				t.Fatalf("dig from %s: %v %s", node, err, out)
			}
		}
		if _, err := ntpQuery(ntp.Listen[0], node); err != nil {
			t.Fatalf("NTP query from %s: %v", node, err)
		}
	}
	mirror := ws.status().listener("mirror")
	report := "PASS  chrony selected the admin host\nFAIL  the default route goes via 127.0.0.1\n"
	resp, err := clientFrom("127.0.0.2").Post(mirror+"/bootstrap/report?host=k8s-node2", "text/plain", strings.NewReader(report))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("report from 127.0.0.2: %v %v", err, resp)
	}
	resp.Body.Close()
	if resp, err := clientFrom("127.0.0.4").Post(mirror+"/bootstrap/report", "text/plain", strings.NewReader(report)); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("report from 127.0.0.4 (not in allow_query): %v %v, want 403", err, resp)
	}

	browserLogin(t, b, b.ctx, ws.ui)
	b.do(chromedp.Navigate(ws.ui + "/nodes"))
	b.do(chromedp.WaitVisible(chromedp.CSS("#nodes")))
	var n2, n3 string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		b.do(chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#nodes")))
		html, _ := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("#nodes")))
		if strings.Contains(html, `id="node-127.0.0.2"`) && strings.Contains(html, `id="node-127.0.0.3"`) {
			n2, n3 = b.text(`tr[id="node-127.0.0.2"]`), b.text(`tr[id="node-127.0.0.3"]`)
			break
		}
	}
	for _, c := range []struct{ row, name string }{{n2, "node2.lab.internal"}, {n3, "node3.lab.internal"}} {
		f := strings.Split(c.row, "\t")
		if len(f) < 8 || !strings.Contains(f[1], c.name) || f[2] != "2" || f[3] != "1" {
			t.Errorf("row %q: want %s, 2 DNS queries, 1 NTP request", c.row, c.name)
		}
	}
	if !strings.Contains(n2, "k8s-node2") || !strings.Contains(n2, "1 failed") {
		t.Errorf("node 127.0.0.2's row %q: want its host name and the checklist's failure", n2)
	}
	if !strings.Contains(n3, "none reported") {
		t.Errorf("node 127.0.0.3's row %q", n3)
	}
	b.do(chromedp.Click(chromedp.CSS(`tr[id="node-127.0.0.2"] summary`)))
	b.screenshot("nodes")
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if txt, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[id="node-127.0.0.2"] pre.checklist`))); !strings.Contains(txt, "FAIL  the default route goes via 127.0.0.1") {
		t.Errorf("checklist shown: %q", txt)
	}
}
