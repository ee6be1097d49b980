package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserSettingsDiff: the Settings page hides the password hash;
// "Check and save" shows the diff and writes nothing until "Save these
// changes", which keeps the real hash; an edit made on a page loaded
// before a hand edit shows what changed outside and is not saved; the
// restore shows its diff under the .prev file's real name first.
func TestBrowserSettingsDiff(t *testing.T) {
	b := newBrowser(t)
	ws := startWebServer(t)
	browserLogin(t, b, b.ctx, ws.ui)
	orig, err := os.ReadFile(ws.config)
	if err != nil {
		t.Fatal(err)
	}
	b.do(chromedp.Navigate(ws.ui + "/settings"))
	b.do(chromedp.WaitVisible(chromedp.CSS("#config")))
	shown, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS("#config")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(shown, "$2a$") || !strings.Contains(shown, `password_hash: "(hidden; saving keeps the current value)"`) {
		t.Fatalf("the editor shows the hash or no placeholder:\n%s", shown)
	}
	html, _ := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if strings.Contains(html, "$2a$") {
		t.Error("the page's HTML holds the bcrypt hash")
	}

	// Check and save: the diff, nothing written.
	edited := strings.Replace(shown, "# end of file", "# end of the file", 1)
	b.do(chromedp.SetValue(chromedp.CSS("#config"), edited), chromedp.Click(chromedp.CSS("#save")))
	b.do(chromedp.WaitVisible(chromedp.CSS("#save-diff")))
	diff := b.text("#save-diff")
	if !strings.Contains(diff, "-# end of file") || !strings.Contains(diff, "+# end of the file") || strings.Contains(diff, "password_hash") {
		t.Errorf("save diff = %q, want the one changed line and no secret", diff)
	}
	if now, _ := os.ReadFile(ws.config); string(now) != string(orig) {
		t.Error("showing the diff wrote the file")
	}
	b.screenshot("settings-1-diff")
	b.do(chromedp.Click(chromedp.CSS("#confirm-save")))
	b.do(chromedp.WaitVisible(chromedp.CSS("#flash")))
	if f := b.text("#flash"); !strings.Contains(f, "kept as airgapd.yaml.prev") {
		t.Errorf("flash after save = %q", f)
	}
	if now, _ := os.ReadFile(ws.config); string(now) != strings.Replace(string(orig), "# end of file", "# end of the file", 1) {
		t.Errorf("after save the file is\n%s\nwant the original with one comment changed (the real hash kept)", now)
	}

	// A hand edit after the page loaded: shown, the page's edit not saved.
	b.do(chromedp.Navigate(ws.ui + "/settings"))
	b.do(chromedp.WaitVisible(chromedp.CSS("#config")))
	saved, _ := os.ReadFile(ws.config)
	hand := string(saved) + "# a hand edit\n"
	if err := os.WriteFile(ws.config, []byte(hand), 0o600); err != nil {
		t.Fatal(err)
	}
	shown, _ = chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS("#config")))
	b.do(chromedp.SetValue(chromedp.CSS("#config"), strings.Replace(shown, "# the lab's admin host", "# the lab's admin", 1)), chromedp.Click(chromedp.CSS("#save")))
	b.do(chromedp.WaitVisible(chromedp.CSS("#outside-changes")))
	if txt := b.text("#outside-changes"); !strings.Contains(txt, "+# a hand edit") {
		t.Errorf("outside changes = %q", txt)
	}
	if e := b.text("#error"); !strings.Contains(e, "changed outside this page") {
		t.Errorf("error = %q", e)
	}
	if now, _ := os.ReadFile(ws.config); string(now) != hand {
		t.Error("an edit made on a stale page was saved over a hand edit")
	}
	b.screenshot("settings-2-outside")

	// Restore: its diff first, under the real name.
	b.do(chromedp.Navigate(ws.ui + "/settings"))
	b.do(chromedp.WaitVisible(chromedp.CSS("#restore")), chromedp.Click(chromedp.CSS("#restore")))
	b.do(chromedp.WaitVisible(chromedp.CSS("#restore-diff")))
	rd := b.text("#restore-diff")
	if !strings.Contains(rd, "airgapd.yaml.prev") || strings.Contains(rd, "FILE.prev") || !strings.Contains(rd, "-# a hand edit") || !strings.Contains(rd, "+# end of file") {
		t.Errorf("restore diff = %q", rd)
	}
	b.screenshot("settings-3-restore")
	b.do(chromedp.Click(chromedp.CSS("#restore-confirm")))
	b.do(chromedp.WaitVisible(chromedp.CSS("#flash")))
	if now, _ := os.ReadFile(ws.config); string(now) != string(orig) {
		t.Errorf("after restore the file is\n%s", now)
	}
}
