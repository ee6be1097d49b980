package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airgapd/airgapd/api"
)

// gatedUpstream fronts an RPM upstream and holds every package download
// until open is called, so a sync stays running as long as a test needs.
type gatedUpstream struct {
	*rpmUpstream
	srv  *httptest.Server
	gate chan struct{}
}

func newGatedUpstream(t *testing.T, u *rpmUpstream) *gatedUpstream {
	g := &gatedUpstream{rpmUpstream: u, gate: make(chan struct{})}
	target, _ := url.Parse(u.url())
	proxy := httputil.NewSingleHostReverseProxy(target)
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".rpm") {
			select {
			case <-g.gate:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	t.Cleanup(g.open)
	return g
}

func (g *gatedUpstream) open() {
	select {
	case <-g.gate:
	default:
		close(g.gate)
	}
}

func webMirrorConfig(baseurl string) string {
	return strings.Replace(webTestConfig, `mirror:
  listen: "127.0.0.1:0"
`, `mirror:
  listen: "127.0.0.1:0"
  repos:
    - { name: upstream, baseurl: "`+baseurl+`" }
`, 1)
}

// browserLogin signs in through the form in the tab of ctx.
func browserLogin(t *testing.T, b *browser, ctx context.Context, ui string) {
	t.Helper()
	do := func(a ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(c, a...); err != nil {
			t.Fatalf("browser: %v", err)
		}
	}
	do(chromedp.Navigate(ui + "/login"))
	do(chromedp.WaitVisible(chromedp.CSS("#password")))
	do(chromedp.SendKeys(chromedp.CSS("#password"), webPassword), chromedp.Click(chromedp.CSS("#login")))
	do(chromedp.WaitVisible(chromedp.CSS("#services")))
}

// TestBrowserSyncOutlivesPage: "Sync now" starts a job listed at the top
// of the mirror page with its progress and a cancel button; the tab is
// closed while the package download is held upstream; the sync goes on
// on the server and ends ok, as the status and a new tab show.
func TestBrowserSyncOutlivesPage(t *testing.T) {
	b := newBrowser(t)
	u := newRPMUpstream(t)
	u.add("slowpkg", 256<<10)
	u.index()
	g := newGatedUpstream(t, u)
	ws := startWebServerConfig(t, webMirrorConfig(g.srv.URL))

	tab, closeTab := chromedp.NewContext(b.ctx)
	defer closeTab()
	if err := chromedp.Do(tab); err != nil { // opens the tab, with no timeout
		t.Fatal(err)
	}
	browserLogin(t, b, tab, ws.ui)
	tb := &browser{t: t, ctx: tab, shot: b.shot}
	tb.do(chromedp.Navigate(ws.ui + "/mirror"))
	tb.do(chromedp.Click(chromedp.CSS(`td form[action="/mirror/sync"] button`)))
	tb.do(chromedp.WaitVisible(chromedp.CSS(`#jobs .job[data-state=running] form[action$="/cancel"] button`)))
	var txt string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if txt = tb.text("#jobs"); strings.Contains(txt, "0/1 packages") {
			break
		}
	}
	if !strings.Contains(txt, "mirror sync") || !strings.Contains(txt, "upstream: packages · 0/1 packages") || !strings.Contains(txt, "(0%)") {
		t.Errorf("job panel = %q, want the running sync with upstream's package and byte counts", txt)
	}
	tb.screenshot("jobs-1-running")
	closeTab() // the browser tab goes away mid-sync
	// A reload that rebuilds web (its section changed) leaves the job
	// running: the job table is the server's, not the web instance's.
	cfgFile, err := os.ReadFile(ws.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ws.config, []byte(strings.Replace(string(cfgFile), "  tls: off\n", "  tls: off\n  metrics: { allow: [127.0.0.0/8] }\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	ws.signal(syscall.SIGHUP)
	ws.waitLog("config reloaded", 15*time.Second)
	g.open()

	// The sync ends ok on the server.
	var m api.MirrorStatus
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ws.status().detail(t, "mirror", &m)
		if len(m.Repos) == 1 && m.Repos[0].LastResult == "ok" {
			break
		}
	}
	if len(m.Repos) != 1 || m.Repos[0].LastResult != "ok" || m.Repos[0].Packages != 1 {
		t.Fatalf("after the tab closed the repo's status is %+v, want a sync that ended ok with 1 package", m.Repos)
	}
	// A new tab shows the finished job with its result.
	b.do(chromedp.Navigate(ws.ui + "/mirror"))
	b.do(chromedp.WaitVisible(chromedp.CSS(`#jobs .job[data-state=ok]`)))
	if txt := b.text("#jobs .job"); !strings.Contains(txt, "upstream synced: 1 package, 1 fetched") {
		t.Errorf("finished job = %q", txt)
	}
	b.screenshot("jobs-2-done")
}

// TestWebJobsAPI: ?job=true answers 202 with a job id at once; the job is
// listed, can be cancelled (state canceled, audited), and the streaming
// form of the same endpoint still works for the CLI.
func TestWebJobsAPI(t *testing.T) {
	u := newRPMUpstream(t)
	u.add("apipkg", 64<<10)
	u.index()
	g := newGatedUpstream(t, u)
	ws := startWebServerConfig(t, webMirrorConfig(g.srv.URL))
	c := ws.login(t)
	tok := ws.newToken(t, c, "jobs")
	auth := map[string]string{"Authorization": "Bearer " + tok}

	code, body, hdr := ws.do(t, nil, "POST", "/api/v1/mirror/sync?repo=upstream&job=true", "", auth)
	var started struct{ Job, URL string }
	if code != http.StatusAccepted || json.Unmarshal([]byte(body), &started) != nil || started.Job == "" || hdr.Get("Location") != started.URL {
		t.Fatalf("start job: %d %s %v", code, body, hdr)
	}
	getJob := func() (j struct{ State, Kind, What, Error, Summary string }) {
		code, body, _ := ws.do(t, nil, "GET", started.URL, "", auth)
		if code != 200 || json.Unmarshal([]byte(body), &j) != nil {
			t.Fatalf("get job: %d %s", code, body)
		}
		return j
	}
	if j := getJob(); j.State != "running" || j.Kind != "mirror sync" || j.What != "upstream" {
		t.Errorf("job just started: %+v", j)
	}
	if code, body, _ := ws.do(t, nil, "GET", "/api/v1/jobs", "", auth); code != 200 || !strings.Contains(body, `"id": "`+started.Job+`"`) {
		t.Errorf("job list: %d %s", code, body)
	}
	if code, body, _ := ws.do(t, c, "DELETE", started.URL, "", nil); code != 200 {
		t.Fatalf("cancel: %d %s", code, body)
	}
	var j struct{ State, Kind, What, Error, Summary string }
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if j = getJob(); j.State != "running" {
			break
		}
	}
	if j.State != "canceled" {
		t.Errorf("after cancel the job is %+v, want canceled", j)
	}
	if !ws.auditHas(t, c, "job canceled", "ok: mirror sync upstream") {
		t.Error("no audit entry for the cancel")
	}
	// An unknown repo is refused at once.
	if code, body, _ := ws.do(t, nil, "POST", "/api/v1/mirror/sync?repo=nope&job=true", "", auth); code != 409 || !strings.Contains(body, "no such repo") {
		t.Errorf("job for an unknown repo: %d %s", code, body)
	}
	// The stream (what `airgapd mirror sync` reads) still ends with done.
	g.open()
	code, body, _ = ws.do(t, nil, "POST", "/api/v1/mirror/sync?repo=upstream", "", auth)
	lines := strings.Split(strings.TrimSpace(body), "\n")
	var last api.SyncEvent
	if code != 200 || json.Unmarshal([]byte(lines[len(lines)-1]), &last) != nil || !last.Done || len(last.Results) != 1 || !last.Results[0].OK {
		t.Errorf("streamed sync: %d %s", code, body)
	}
}
