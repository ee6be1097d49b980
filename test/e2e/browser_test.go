package e2e

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// browser starts Debian's headless chromium with a fresh profile and the
// flags that keep it off the network (PEERS.md), and records every URL the
// pages request. It skips when chromium is missing outside CI.
type browser struct {
	t    *testing.T
	ctx  context.Context
	shot string // folder for screenshots

	mu   sync.Mutex
	urls []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is missing; scripts/install-test-deps.sh installs it")
		}
		t.Skip("chromium is not installed (apt-get install chromium); skipping the browser tests")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx, shot: filepath.Join(t.TempDir(), "screenshots")}
	os.MkdirAll(b.shot, 0o755)
	if dir := os.Getenv("AIRGAPD_SCREENSHOTS"); dir != "" { // to look at them after the run
		b.shot = dir
		os.MkdirAll(dir, 0o755)
	}
	done := make(chan struct{})
	events := chromedp.Events(ctx, network.RequestWillBeSent)
	go func() {
		defer close(done)
		for ev, err := range events {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.urls = append(b.urls, ev.Request.URL)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	})
	return b
}

// run runs actions with a bound.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// screenshot saves the whole page as NAME.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG; below: JPEG
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join(b.shot, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
}

// TestBrowserUI drives the admin UI in headless chromium: log in through
// the form, see every service, add a DNS record that dig then answers, get
// an invalid settings edit refused at its line with nothing written, and
// check that no page loaded anything from outside the appliance.
func TestBrowserUI(t *testing.T) {
	b := newBrowser(t)
	need(t, "dig")
	ws := startWebServer(t)
	ui, _ := url.Parse(ws.ui)

	// Log in through the form.
	b.do(chromedp.Navigate(ws.ui + "/"))
	b.do(chromedp.WaitVisible(chromedp.CSS("#password")))
	if cmd := b.text("#node-command"); !strings.Contains(cmd, "/bootstrap/node.sh | sh -s -- --ca-sha256 ") {
		t.Errorf("login page's node command: %q", cmd)
	}
	b.screenshot("01-login")
	b.do(chromedp.SendKeys(chromedp.CSS("#password"), webPassword), chromedp.Click(chromedp.CSS("#login")))
	b.do(chromedp.WaitVisible(chromedp.CSS("#services")))

	// The overview shows every service.
	for _, svc := range []string{"gateway", "dns", "ntp", "mirror", "registry", "web"} {
		txt := b.text("#svc-" + svc)
		if !strings.Contains(strings.ToLower(txt), svc) {
			t.Errorf("overview card %s: %q", svc, txt)
		}
	}
	if txt := b.text("#svc-dns"); !strings.Contains(txt, "up") {
		t.Errorf("dns card: %q", txt)
	}
	b.screenshot("02-overview")

	// Add a DNS record in the UI; dig answers it.
	b.do(chromedp.Navigate(ws.ui + "/dns"))
	b.do(chromedp.WaitVisible(chromedp.CSS("#records")))
	b.do(chromedp.SendKeys(chromedp.CSS(`form.add-record input[name=record]`), "node7 300 A 192.168.10.27"),
		chromedp.Click(chromedp.CSS(`form.add-record button`)))
	b.do(chromedp.WaitVisible(chromedp.CSS("#flash")))
	if txt := b.text("#records"); !strings.Contains(txt, "node7 300 A 192.168.10.27") {
		t.Errorf("records after add: %q", txt)
	}
	if got := digShort(t, ws.dns, "node7.lab.internal"); got != "192.168.10.27" {
		t.Errorf("dig node7.lab.internal = %q, want 192.168.10.27", got)
	}
	b.screenshot("03-dns")

	// The other service pages render their status.
	for _, p := range []string{"ntp", "gateway", "mirror", "registry"} {
		b.do(chromedp.Navigate(ws.ui + "/" + p))
		b.do(chromedp.WaitVisible(chromedp.CSS("#state")))
		if st := b.text("#state"); st == "" || st == "disabled" {
			t.Errorf("%s page state %q", p, st)
		}
		b.screenshot("04-" + p)
	}

	// A settings edit with an invalid CIDR: the error at its line, the
	// file untouched.
	before, err := os.ReadFile(ws.config)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(before), "allow: [127.0.0.0/8]", "allow: [127.0.0.1/8]", 1)
	wantLine := 1 + strings.Count(strings.Split(bad, "127.0.0.1/8")[0], "\n")
	b.do(chromedp.Navigate(ws.ui + "/settings"))
	b.do(chromedp.WaitVisible(chromedp.CSS("#config")))
	b.do(chromedp.SetValue(chromedp.CSS("#config"), bad), chromedp.Click(chromedp.CSS("#save")))
	b.do(chromedp.WaitVisible(chromedp.CSS("#save-diff")), chromedp.Click(chromedp.CSS("#confirm-save")))
	b.do(chromedp.WaitVisible(chromedp.CSS("#problems")))
	msg := b.text(".problem-at")
	if !strings.Contains(msg, "line "+strconv.Itoa(wantLine)) || !strings.Contains(msg, "127.0.0.1/8") || !strings.Contains(msg, "did you mean 127.0.0.0/8") {
		t.Errorf("problem shown %q, want it at line %d", msg, wantLine)
	}
	b.do(chromedp.ScrollIntoView(chromedp.CSS(".problem-at")))
	b.screenshot("05-settings-error")
	if now, _ := os.ReadFile(ws.config); string(now) != string(before) {
		t.Error("an invalid settings edit changed the config file")
	}

	b.do(chromedp.Navigate(ws.ui + "/audit"))
	b.do(chromedp.WaitVisible(chromedp.CSS("table")))
	b.screenshot("06-audit")

	// Nothing was requested from outside the appliance.
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.urls) < 10 {
		t.Errorf("only %d requests seen: is the network event recorder working?", len(b.urls))
	}
	for _, u := range b.urls {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "about" && p.Scheme != "data" && p.Host != ui.Host) {
			t.Errorf("a page requested %s, outside the appliance (%s)", u, ui.Host)
		}
	}
}
