package e2e

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// pypiStandIn is a PEP 503 upstream of one project per name given, each
// with one pure-Python wheel of size bytes: a sync checks the sha256, not
// what the wheel holds. add puts another project in later.
type pypiStandIn struct {
	srv   *httptest.Server
	mu    sync.Mutex
	pages map[string]string
	files map[string][]byte
}

func newPyPIStandIn(t *testing.T) *pypiStandIn {
	u := &pypiStandIn{pages: map[string]string{}, files: map[string][]byte{}}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		defer u.mu.Unlock()
		if name, ok := strings.CutPrefix(r.URL.Path, "/simple/"); ok {
			if page, ok := u.pages[strings.TrimSuffix(name, "/")]; ok {
				fmt.Fprint(w, page)
				return
			}
		}
		if b, ok := u.files[strings.TrimPrefix(r.URL.Path, "/files/")]; ok {
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// add publishes project name's wheel of version, size bytes, and returns
// the wheel's file name.
func (u *pypiStandIn) add(name, version string, size int) string {
	whl := fmt.Sprintf("%s-%s-py3-none-any.whl", name, version)
	u.put(name, whl, []byte(strings.Repeat(name+" ", size)[:size]))
	return whl
}

// put makes file (its content b) project name's one file.
func (u *pypiStandIn) put(name, file string, b []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.files[file] = b
	u.pages[name] = fmt.Sprintf("<!DOCTYPE html><html><body>\n<a href=\"../../files/%s#sha256=%x\">%s</a>\n</body></html>\n", file, sha256.Sum256(b), file)
}

// TestWebLanguagePages: in headless chromium, "Sync now" on the PyPI and
// Go proxy pages runs the sync as a job; when it ends the page shows the
// synced project with its version and size, the module with its version;
// the search box narrows the table.
func TestWebLanguagePages(t *testing.T) {
	b := newBrowser(t)
	py := newPyPIStandIn(t)
	py.add("alpha", "1.0", 3072)
	py.add("alphabet", "2.5", 1024)
	gu := newGoUpstream(t)
	cfg := strings.Replace(webTestConfig, "registry:\n", fmt.Sprintf(`pypi:
  upstreams: [{ name: stand-in, url: "%s/simple/" }]
  packages: [alpha, alphabet]
goproxy:
  upstream: %s
  modules: [lab.test/Greet@v1.0.0, lab.test/words@v1.1.0]
  sumdb: { url: %q, key: %q }
registry:
`, py.srv.URL, gu.proxy.URL, gu.sumdb.URL, gu.key), 1)
	ws := startWebServerConfig(t, cfg)
	browserLogin(t, b, b.ctx, ws.ui)

	for _, c := range []struct {
		page   string
		want   []string // in the package table after the sync
		search string
		kept   string
		gone   string
	}{
		{"pypi", []string{"alpha", "1.0", "3.0 KiB", "alphabet", "2.5", "1.0 KiB"}, "alphab", "alphabet", "3.0 KiB"},
		{"goproxy", []string{"lab.test/Greet", "v1.0.0", "lab.test/words", "v1.1.0"}, "WORDS", "lab.test/words", "lab.test/Greet"},
	} {
		b.do(chromedp.Navigate(ws.ui + "/" + c.page))
		b.do(chromedp.WaitVisible(chromedp.CSS("#sync-now")))
		if txt := b.text("#packages"); !strings.Contains(txt, "nothing published") {
			t.Errorf("%s before a sync: %q", c.page, txt)
		}
		b.do(chromedp.Click(chromedp.CSS("#sync-now")))
		// The job is listed; the page polls it and reloads when it ends.
		// Wait for the job's end, shown after the reload.
		b.do(chromedp.WaitVisible(chromedp.CSS("#jobs .job[data-state=ok]")))
		txt := b.text("#packages")
		for _, w := range c.want {
			if !strings.Contains(txt, w) {
				t.Errorf("%s table after the sync lacks %q:\n%s", c.page, w, txt)
			}
		}
		if job := b.text("#jobs .job"); !strings.Contains(job, "synced") || !strings.Contains(job, c.page+" sync") {
			t.Errorf("%s job after the sync: %q", c.page, job)
		}
		if last := b.text("#summary"); strings.Contains(last, "failed") {
			t.Errorf("%s summary %q", c.page, last)
		}
		b.screenshot("lang-" + c.page)
		b.do(chromedp.SendKeys(chromedp.CSS(`input[name=q]`), c.search), chromedp.Submit(chromedp.CSS(`input[name=q]`)))
		b.do(chromedp.WaitVisible(chromedp.CSS(`input[name=q][value="` + c.search + `"]`)))
		if txt := b.text("#packages"); !strings.Contains(txt, c.kept) || strings.Contains(txt, c.gone) {
			t.Errorf("%s search %q: %q, want %s and not %s", c.page, c.search, txt, c.kept, c.gone)
		}
	}
}
