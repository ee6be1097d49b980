package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// uiPages are the signed-in pages a layout test walks.
var uiPages = []string{"/", "/dns", "/ntp", "/gateway", "/mirror", "/registry", "/nodes", "/settings", "/tokens", "/audit"}

func (b *browser) eval(js string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// TestBrowserMobile: at a 390 px wide viewport (a phone) no page is wider
// than the screen (document.scrollingElement.scrollWidth ≤ innerWidth)
// and the nav wraps onto lines of its own instead of running off.
func TestBrowserMobile(t *testing.T) {
	b := newBrowser(t)
	ws := startWebServer(t)
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	b.do(chromedp.Navigate(ws.ui + "/login"))
	b.do(chromedp.WaitVisible(chromedp.CSS("#password")))
	check := func(page string) {
		t.Helper()
		got := b.eval(`document.scrollingElement.scrollWidth + " " + window.innerWidth`)
		var sw, iw int
		if _, err := fmt.Sscan(got, &sw, &iw); err != nil || iw != 390 || sw > iw { // a wider page widens innerWidth on a phone
			t.Errorf("%s at 390 px: scrollWidth innerWidth = %s, want scrollWidth ≤ 390", page, got)
		}
	}
	check("/login")
	b.screenshot("mobile-login")
	b.do(chromedp.SendKeys(chromedp.CSS("#password"), webPassword), chromedp.Click(chromedp.CSS("#login")))
	b.do(chromedp.WaitVisible(chromedp.CSS("#services")))
	for _, p := range uiPages {
		b.do(chromedp.Navigate(ws.ui + p))
		b.do(chromedp.WaitVisible(chromedp.CSS("main")))
		check(p)
	}
	// The nav's last link is inside the screen, below the brand.
	if got := b.eval(`(function(){var n=document.querySelector("header.top nav"),a=n.lastElementChild.getBoundingClientRect(),br=document.querySelector(".brand").getBoundingClientRect();return (a.right<=innerWidth)+" "+(n.getBoundingClientRect().top>=br.bottom)})()`); got != "true true" {
		t.Errorf("nav at 390 px (last link inside, nav below the brand) = %s", got)
	}
	b.do(chromedp.Navigate(ws.ui + "/dns"))
	b.do(chromedp.WaitVisible(chromedp.CSS("#records")))
	b.screenshot("mobile-dns")
	b.do(chromedp.Navigate(ws.ui + "/"))
	b.do(chromedp.WaitVisible(chromedp.CSS("#services")))
	b.screenshot("mobile-overview")
}

// TestBrowserDarkMode: with prefers-color-scheme: dark emulated, the page,
// its panels and its inputs are dark with light text; light by default.
func TestBrowserDarkMode(t *testing.T) {
	b := newBrowser(t)
	ws := startWebServer(t)
	colors := `(function(){var g=function(el,p){return getComputedStyle(el)[p]};var panel=document.querySelector(".panel");return [g(document.body,"backgroundColor"),g(document.body,"color"),panel?g(panel,"backgroundColor"):""].join("|")})()`
	browserLogin(t, b, b.ctx, ws.ui)
	b.do(chromedp.Navigate(ws.ui + "/dns"))
	b.do(chromedp.WaitVisible(chromedp.CSS("#records")))
	light := b.eval(colors)
	b.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}))
	for _, p := range uiPages {
		b.do(chromedp.Navigate(ws.ui + p))
		b.do(chromedp.WaitVisible(chromedp.CSS("main")))
		got := strings.Split(b.eval(colors), "|")
		if lum(got[0]) > 60 || lum(got[1]) < 180 || (got[2] != "" && lum(got[2]) > 60) {
			t.Errorf("%s in dark mode: body bg, text, panel bg = %v (light: %s)", p, got, light)
		}
		if p == "/dns" || p == "/" || p == "/settings" {
			b.screenshot("dark" + strings.ReplaceAll(p, "/", "-"))
		}
	}
	if f := strings.Split(light, "|"); lum(f[0]) < 200 || lum(f[1]) > 80 {
		t.Errorf("light mode colours = %s, want a light page with dark text", light)
	}
}

// lum is the mean of an rgb()/rgba() colour's channels (0 black … 255
// white).
func lum(css string) int {
	css = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(css, "rgba("), "rgb("), ")")
	f := strings.Split(css, ",")
	if len(f) < 3 {
		return -1
	}
	var sum int
	for _, c := range f[:3] {
		var v int
		fmt.Sscan(strings.TrimSpace(c), &v)
		sum += v
	}
	return sum / 3
}
