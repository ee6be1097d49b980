package e2e

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/bcrypt"

	"github.com/airgapd/airgapd/api"
)

// webPassword is the admin password of webTestConfig; its hash is made
// with bcrypt's lowest cost so that tests log in fast.
const webPassword = "correct horse battery"

// webTestConfig runs every service on loopback, with comments and odd
// spacing that a UI edit must leave alone. %s is the password hash.
const webTestConfig = `# the lab's admin host, as written by hand
advertise: { name: localhost, addresses: [127.0.0.1] }
web:
  listen: "127.0.0.1:0"     # the UI, the API and /metrics
  tls: off
  admin: { password_hash: "%s" }
dns:
  listen: ["127.0.0.1:0"]
  forward: only             # nothing leaves loopback
  zones:
    - name: lab.internal    # the lab's own names
      records:
        - "admin 300 A 127.0.0.1"     # this host
        - "registry CNAME admin"
ntp:
  listen: ["127.0.0.1:0"]
  allow: [127.0.0.0/8]
gateway:
  mode: plan                # touch nothing on this host
  masquerade: [{ source: 192.168.10.0/24, out_interface: lo }]
mirror:
  listen: "127.0.0.1:0"
registry:
  listen: "127.0.0.1:0"
  tls: off
  pull_from: [127.0.0.0/8]
# end of file
`

// webServer is a running airgapd with the UI on, and how to reach it.
type webServer struct {
	*instance
	ui     string // http://127.0.0.1:PORT
	dns    string // 127.0.0.1:PORT
	client *http.Client
}

func startWebServer(t *testing.T) *webServer {
	t.Helper()
	return startWebServerConfig(t, webTestConfig)
}

// startWebServerConfig starts airgapd on cfg, a variant of webTestConfig
// (%s is the password hash).
func startWebServerConfig(t *testing.T, cfg string) *webServer {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(webPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	in := start(t, t.TempDir(), strings.Replace(cfg, "%s", string(hash), 1))
	st := in.status()
	ws := &webServer{instance: in, ui: st.listener("ui"), client: &http.Client{Timeout: 10 * time.Second}}
	var dns api.DNSStatus
	st.detail(t, "dns", &dns)
	for _, l := range dns.Listen {
		if a, ok := strings.CutPrefix(l, "udp/"); ok {
			ws.dns = a
		}
	}
	if ws.ui == "" || ws.dns == "" {
		t.Fatalf("no UI or DNS listener in the status: ui %q dns %q", ws.ui, ws.dns)
	}
	return ws
}

// do sends a request; hdr holds extra headers ("Authorization", …).
func (ws *webServer) do(t *testing.T, c *http.Client, method, path, body string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, ws.ui+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		if strings.Contains(body, "=") && !strings.HasPrefix(body, "{") {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c == nil {
		c = ws.client
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// login signs in through POST /login and returns a client holding the
// session cookie.
func (ws *webServer) login(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Timeout: 10 * time.Second, Jar: jar}
	code, body, _ := ws.do(t, c, "POST", "/login", "password="+url.QueryEscape(webPassword)+"&next=/", nil)
	if code != 200 || !strings.Contains(body, "id=\"services\"") {
		t.Fatalf("login: %d\n%s", code, body)
	}
	return c
}

// newToken creates an API token with a session.
func (ws *webServer) newToken(t *testing.T, c *http.Client, name string) string {
	t.Helper()
	code, body, _ := ws.do(t, c, "POST", "/api/v1/tokens", `{"name":"`+name+`"}`, nil)
	var r struct {
		Token string `json:"token"`
	}
	if code != 201 || json.Unmarshal([]byte(body), &r) != nil || r.Token == "" {
		t.Fatalf("create token: %d %s", code, body)
	}
	return r.Token
}

// TestWebAPIAuth: every /api/v1 endpoint over TCP answers 401 without a
// session or token, works with either, and refuses a cross-site POST.
func TestWebAPIAuth(t *testing.T) {
	ws := startWebServer(t)
	endpoints := []struct{ method, path, body string }{
		{"GET", "/api/v1/status", ""},
		{"POST", "/api/v1/dns/cache/flush", ""},
		{"GET", "/api/v1/dns/records", ""},
		{"POST", "/api/v1/dns/records", `{"zone":"lab.internal","record":"x A 10.0.0.1"}`},
		{"PUT", "/api/v1/dns/records", `{"zone":"lab.internal","old":"x A 10.0.0.1","record":"x A 10.0.0.2"}`},
		{"DELETE", "/api/v1/dns/records", `{"zone":"lab.internal","record":"registry CNAME admin"}`},
		{"POST", "/api/v1/ntp/settime", `{"time":"2026-11-21T16:30:05+09:00"}`},
		{"GET", "/api/v1/config", ""},
		{"PUT", "/api/v1/config", "dns: {}\n"},
		{"GET", "/api/v1/audit", ""},
		{"GET", "/api/v1/tokens", ""},
		{"POST", "/api/v1/tokens", `{"name":"x"}`},
		{"DELETE", "/api/v1/tokens/0000", ""},
		{"POST", "/api/v1/registry/gc?dry_run=true", ""},
		{"POST", "/api/v1/registry/import?path=/nonexistent", ""},
		{"POST", "/api/v1/mirror/sync", ""},
		{"GET", "/api/v1/nope", ""},
	}
	for _, ep := range endpoints {
		for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer agd_00000000_bogus"}} {
			code, body, h := ws.do(t, nil, ep.method, ep.path, ep.body, hdr)
			if code != http.StatusUnauthorized || !strings.Contains(body, "authentication required") || h.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s with %v = %d %q, want 401", ep.method, ep.path, hdr, code, body)
			}
		}
	}
	// Pages send people to the login form.
	noRedirect := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/", "/dns", "/ntp", "/gateway", "/mirror", "/registry", "/settings", "/tokens", "/audit"} {
		if code, _, h := ws.do(t, noRedirect, "GET", p, "", nil); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login") {
			t.Errorf("GET %s without a session = %d → %q, want 303 to /login", p, code, h.Get("Location"))
		}
	}
	// Open endpoints stay open.
	for _, p := range []string{"/healthz", "/readyz", "/ca.crt", "/metrics", "/login", "/static/app.css", "/bootstrap/node.sh"} {
		if code, _, _ := ws.do(t, nil, "GET", p, "", nil); code != 200 {
			t.Errorf("GET %s = %d, want 200", p, code)
		}
	}
	// The login page's headers.
	_, _, h := ws.do(t, nil, "GET", "/login", "", nil)
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("no nosniff: %v", h)
	}

	c := ws.login(t)
	// The session cookie's attributes.
	u, _ := url.Parse(ws.ui)
	if len(c.Jar.Cookies(u)) != 1 {
		t.Fatalf("cookies after login: %v", c.Jar.Cookies(u))
	}
	tok := ws.newToken(t, c, "ci")

	// A cross-site POST is refused even with a valid session: /login too.
	cross := map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}
	for _, p := range []string{"/login", "/api/v1/dns/cache/flush", "/dns/records", "/settings", "/logout"} {
		if code, body, _ := ws.do(t, c, "POST", p, "password=x&zone=lab.internal&record=evil+A+10.6.6.6", cross); code != http.StatusForbidden {
			t.Errorf("cross-site POST %s = %d %q, want 403", p, code, body)
		}
	}

	// With a token (and with the session), every endpoint answers.
	want := map[string]int{
		"/api/v1/dns/records POST":                       200,
		"/api/v1/dns/records DELETE":                     200,
		"/api/v1/ntp/settime POST":                       200,
		"/api/v1/config PUT":                             422, // it takes a whole config; this one lacks data_dir's folders
		"/api/v1/tokens POST":                            201,
		"/api/v1/tokens/0000 DELETE":                     404,
		"/api/v1/registry/import?path=/nonexistent POST": 200, // streams; the error is in the body
		"/api/v1/registry/gc?dry_run=true POST":          409, // reached: an empty registry has nothing to collect
		"/api/v1/mirror/sync POST":                       409, // reached: no repo to sync
		"/api/v1/nope GET":                               404,
	}
	for _, ep := range endpoints {
		code, body, _ := ws.do(t, nil, ep.method, ep.path, ep.body, map[string]string{"Authorization": "Bearer " + tok})
		w, ok := want[ep.path+" "+ep.method]
		if !ok {
			w = 200
		}
		if ep.path == "/api/v1/config" && ep.method == "PUT" {
			continue // checked in TestWebConfigEdits
		}
		if code != w {
			t.Errorf("%s %s with a token = %d %s, want %d", ep.method, ep.path, code, body, w)
		}
	}
	if code, body, _ := ws.do(t, c, "GET", "/api/v1/status", "", nil); code != 200 || !strings.Contains(body, `"services"`) {
		t.Errorf("status with a session = %d", code)
	}
	// The CLI reaches the instance with a token.
	out, err := exec.Command(airgapdBin, "status", "--api", ws.ui, "--token", tok).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "dns") {
		t.Errorf("airgapd status --api --token: %v\n%s", err, out)
	}
	// A read-scoped token reads (the CLI too) and changes nothing.
	code, body, _ := ws.do(t, c, "POST", "/api/v1/tokens", `{"name":"grafana","scope":"read","expires_in":"30d"}`, nil)
	var ro struct{ Token, Scope string }
	if code != 201 || json.Unmarshal([]byte(body), &ro) != nil || ro.Scope != "read" {
		t.Fatalf("create a read token: %d %s", code, body)
	}
	if out, err := exec.Command(airgapdBin, "status", "--api", ws.ui, "--token", ro.Token).CombinedOutput(); err != nil {
		t.Errorf("airgapd status with a read token: %v\n%s", err, out)
	}
	if code, body, _ := ws.do(t, nil, "POST", "/api/v1/dns/cache/flush", "", map[string]string{"Authorization": "Bearer " + ro.Token}); code != 403 || !strings.Contains(body, "read-only") {
		t.Errorf("a change with a read token = %d %s, want 403 naming read-only", code, body)
	}
	// The audit log names who did what.
	_, body, _ = ws.do(t, c, "GET", "/api/v1/audit", "", nil)
	for _, w := range []string{`"who": "admin (session)"`, `"action": "api token created"`, `"who": "token:ci (token)"`, `"action": "dns record added"`} {
		if !strings.Contains(body, w) {
			t.Errorf("audit log lacks %s:\n%s", w, body)
		}
	}
	// A revoked token stops working.
	var toks []struct{ ID, Name string }
	_, body, _ = ws.do(t, c, "GET", "/api/v1/tokens", "", nil)
	json.Unmarshal([]byte(body), &toks)
	for _, tk := range toks {
		if tk.Name == "ci" {
			ws.do(t, c, "DELETE", "/api/v1/tokens/"+tk.ID, "", nil)
		}
	}
	if code, _, _ := ws.do(t, nil, "GET", "/api/v1/status", "", map[string]string{"Authorization": "Bearer " + tok}); code != 401 {
		t.Errorf("revoked token = %d, want 401", code)
	}

	// Login attempts are rate-limited (last: it locks this address out).
	for i := 0; i < 5; i++ {
		if code, _, _ := ws.do(t, nil, "POST", "/login", "password=wrong", nil); code != http.StatusUnauthorized {
			t.Errorf("wrong password %d = %d, want 401", i, code)
		}
	}
	if code, _, h := ws.do(t, nil, "POST", "/login", "password="+url.QueryEscape(webPassword), nil); code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Errorf("6th attempt = %d, want 429 with Retry-After", code)
	}
}

// TestWebMetrics: /metrics is Prometheus text with series from every
// service and the Go runtime.
func TestWebMetrics(t *testing.T) {
	ws := startWebServer(t)
	// The mirror's series count requests: make one.
	if code, _ := httpGet(t, nil, ws.status().listener("mirror")+"/repos/none/"); code != 404 {
		t.Errorf("mirror /repos/none/ = %d, want 404", code)
	}
	resp, err := ws.client.Get(ws.ui + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, prefix := range []string{"airgapd_dns_", "airgapd_ntp_", "airgapd_gateway_", "airgapd_mirror_", "airgapd_registry_", "go_", "process_", "airgapd_build_info"} {
		found := false
		for name, f := range fams {
			if strings.HasPrefix(name, prefix) && len(f.GetMetric()) > 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("/metrics has no series named %s*", prefix)
		}
	}
}

// TestWebConfigEdits: a record added through the UI's form is answered by
// DNS, and only its line is new in the file; an invalid config changes
// nothing on disk.
func TestWebConfigEdits(t *testing.T) {
	need(t, "dig")
	ws := startWebServer(t)
	c := ws.login(t)
	before, err := os.ReadFile(ws.config)
	if err != nil {
		t.Fatal(err)
	}
	code, body, _ := ws.do(t, c, "POST", "/dns/records", "zone=lab.internal&record="+url.QueryEscape("node1 300 A 192.168.10.21"), nil)
	if code != 200 || !strings.Contains(body, "Record added") {
		t.Fatalf("add record: %d\n%s", code, body)
	}
	after, _ := os.ReadFile(ws.config)
	removed, added := lines(string(before), string(after))
	if len(removed) != 0 || len(added) != 1 || added[0] != `        - "node1 300 A 192.168.10.21"` {
		t.Errorf("the edit changed more than one line: removed %q, added %q", removed, added)
	}
	if prev, _ := os.ReadFile(ws.config + ".prev"); string(prev) != string(before) {
		t.Errorf("%s.prev is not the previous file", ws.config)
	}
	if got := digShort(t, ws.dns, "node1.lab.internal"); got != "192.168.10.21" {
		t.Errorf("dig node1.lab.internal = %q, want 192.168.10.21", got)
	}
	// Editing it in place on the DNS page changes that line only.
	code, body, _ = ws.do(t, c, "POST", "/dns/records/edit", "zone=lab.internal&old="+url.QueryEscape("node1 300 A 192.168.10.21")+"&record="+url.QueryEscape("node1 300 A 192.168.10.22"), nil)
	if code != 200 || !strings.Contains(body, "Record changed") {
		t.Fatalf("edit record: %d\n%s", code, body)
	}
	edited, _ := os.ReadFile(ws.config)
	removed, added = lines(string(after), string(edited))
	if len(removed) != 1 || len(added) != 1 || removed[0] != `        - "node1 300 A 192.168.10.21"` || added[0] != `        - "node1 300 A 192.168.10.22"` {
		t.Errorf("the edit changed more than that line: removed %q, added %q", removed, added)
	}
	if got := digShort(t, ws.dns, "node1.lab.internal"); got != "192.168.10.22" {
		t.Errorf("dig node1.lab.internal after the edit = %q, want 192.168.10.22", got)
	}
	if !ws.auditHas(t, c, "dns record changed", "") {
		t.Error("the audit log lacks the record change")
	}
	// And back through the API: the file is as after the add.
	code, body, _ = ws.do(t, c, "PUT", "/api/v1/dns/records", `{"zone":"lab.internal","old":"node1 300 A 192.168.10.22","record":"node1 300 A 192.168.10.21"}`, nil)
	if now, _ := os.ReadFile(ws.config); code != 200 || string(now) != string(after) {
		t.Errorf("PUT /api/v1/dns/records = %d %s; file back as after the add: %v", code, body, string(now) == string(after))
	}
	if got := digShort(t, ws.dns, "node1.lab.internal"); got != "192.168.10.21" {
		t.Errorf("dig node1.lab.internal after the API edit = %q, want 192.168.10.21", got)
	}
	// An invalid replacement: 422, nothing written.
	code, _, _ = ws.do(t, c, "PUT", "/api/v1/dns/records", `{"zone":"lab.internal","old":"node1 300 A 192.168.10.21","record":"node1 300 A 999.1.1.1"}`, nil)
	if now, _ := os.ReadFile(ws.config); code != 422 || string(now) != string(after) {
		t.Errorf("invalid replacement: %d, file changed: %v", code, string(now) != string(after))
	}
	// Deleting it restores the file byte for byte.
	code, _, _ = ws.do(t, c, "POST", "/dns/records/delete", "zone=lab.internal&record="+url.QueryEscape("node1 300 A 192.168.10.21"), nil)
	if now, _ := os.ReadFile(ws.config); code != 200 || string(now) != string(before) {
		t.Errorf("delete: %d; file now differs from the original:\n%s", code, now)
	}
	// An invalid record and an invalid whole file: 422, nothing written.
	code, body, _ = ws.do(t, c, "POST", "/dns/records", "zone=lab.internal&record="+url.QueryEscape("bad 300 A 999.1.1.1"), nil)
	if now, _ := os.ReadFile(ws.config); code != 422 || string(now) != string(before) {
		t.Errorf("invalid record: %d, file changed: %v\n%s", code, string(now) != string(before), body)
	}
	bad := strings.Replace(string(before), "allow: [127.0.0.0/8]", "allow: [127.0.0.1/8]", 1)
	code, body, _ = ws.do(t, c, "PUT", "/api/v1/config", bad, map[string]string{"Content-Type": "application/yaml"})
	var ce struct {
		Problems []struct {
			Line int    `json:"line"`
			Path string `json:"path"`
		} `json:"problems"`
	}
	json.Unmarshal([]byte(body), &ce)
	wantLine := 1 + strings.Count(strings.Split(bad, "127.0.0.1/8")[0], "\n")
	if code != 422 || len(ce.Problems) != 1 || ce.Problems[0].Line != wantLine || ce.Problems[0].Path != "ntp.allow[0]" {
		t.Errorf("PUT invalid config = %d %s, want 422 with ntp.allow[0] at line %d", code, body, wantLine)
	}
	if now, _ := os.ReadFile(ws.config); string(now) != string(before) {
		t.Error("an invalid config changed the file")
	}
}

// lines returns the lines removed from a and added in b around the one
// place where they differ.
func lines(a, b string) (removed, added []string) {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	i := 0
	for i < len(al) && i < len(bl) && al[i] == bl[i] {
		i++
	}
	j, k := len(al), len(bl)
	for j > i && k > i && al[j-1] == bl[k-1] {
		j--
		k--
	}
	return al[i:j], bl[i:k]
}

func digShort(t *testing.T, server, name string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(server)
	out, err := exec.Command("dig", "+short", "+time=2", "+tries=1", "@"+host, "-p", port, name, "A").CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestPasswd: `airgapd passwd` stores a bcrypt hash and changes nothing
// else in the file; the previous file is kept.
func TestPasswd(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, strings.Replace(webTestConfig, "%s", "", 1))
	before, _ := os.ReadFile(path)
	cmd := exec.Command(airgapdBin, "passwd", "--config", path)
	cmd.Stdin = strings.NewReader("a new passphrase\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("passwd: %v\n%s", err, out)
	}
	after, _ := os.ReadFile(path)
	removed, added := lines(string(before), string(after))
	if len(removed) != 1 || len(added) != 1 || !strings.HasPrefix(added[0], `  admin: { password_hash: "$2a$`) {
		t.Fatalf("passwd changed %q → %q", removed, added)
	}
	hash := strings.TrimSuffix(strings.TrimPrefix(added[0], `  admin: { password_hash: "`), `" }`)
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte("a new passphrase")) != nil {
		t.Errorf("stored hash %q does not match the password", hash)
	}
	if prev, _ := os.ReadFile(path + ".prev"); string(prev) != string(before) {
		t.Error("the previous file was not kept")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode changed to %v", fi.Mode().Perm())
	}
	// Too short: refused, nothing written.
	cmd = exec.Command(airgapdBin, "passwd", "--config", path)
	cmd.Stdin = strings.NewReader("short\n")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "too short") {
		t.Errorf("short password: %v %s", err, out)
	}
	if now, _ := os.ReadFile(path); string(now) != string(after) {
		t.Error("a refused password changed the file")
	}
}

// auditHas reports whether the audit log has an entry with action and a
// result starting with result.
func (ws *webServer) auditHas(t *testing.T, c *http.Client, action, result string) bool {
	t.Helper()
	_, body, _ := ws.do(t, c, "GET", "/api/v1/audit", "", nil)
	var entries []struct {
		Who    string `json:"who"`
		Action string `json:"action"`
		Result string `json:"result"`
	}
	if err := json.Unmarshal([]byte(body), &entries); err != nil {
		t.Fatalf("audit log: %v\n%s", err, body)
	}
	for _, e := range entries {
		if e.Action == action && strings.HasPrefix(e.Result, result) && e.Who == "admin (session)" {
			return true
		}
	}
	t.Logf("audit log:\n%s", body)
	return false
}

// TestWebNTPSetTimeForm: the NTP page's "Set time" form moves the time
// the NTP service serves, shows the step and is audited; a time it cannot
// read changes nothing.
func TestWebNTPSetTimeForm(t *testing.T) {
	ws := startWebServer(t)
	c := ws.login(t)
	if code, body, _ := ws.do(t, c, "GET", "/ntp", "", nil); code != 200 || !strings.Contains(body, `action="/ntp/settime"`) {
		t.Fatalf("NTP page: %d, no set-time form\n%s", code, body)
	}
	// Local time as typed, an hour ahead.
	to := time.Now().Add(time.Hour).Local().Format("2006-01-02 15:04:05")
	code, body, _ := ws.do(t, c, "POST", "/ntp/settime", "time="+url.QueryEscape(to), nil)
	if code != 200 || !strings.Contains(body, `id="flash"`) || !strings.Contains(body, "the served clock stepped &#43;59m5") {
		t.Fatalf("set time: %d\n%s", code, body)
	}
	var ntp api.NTPStatus
	ws.status().detail(t, "ntp", &ntp)
	if len(ntp.Listen) != 1 {
		t.Fatalf("ntp listens on %v", ntp.Listen)
	}
	r, err := ntpQuery(ntp.Listen[0], "")
	if err != nil {
		t.Fatal(err)
	}
	if d := r.ClockOffset - time.Hour; d.Abs() > 2*time.Second {
		t.Errorf("served time is %s ahead of this host, want 1h", r.ClockOffset)
	}
	// The API's status says so too.
	_, body, _ = ws.do(t, c, "GET", "/api/v1/status", "", nil)
	var st struct {
		Services []struct {
			Name    string `json:"name"`
			Summary string `json:"summary"`
		} `json:"services"`
	}
	json.Unmarshal([]byte(body), &st)
	for _, sv := range st.Services {
		if sv.Name == "ntp" && !strings.Contains(sv.Summary, "time set by operator") {
			t.Errorf("NTP status summary: %s", sv.Summary)
		}
	}
	if !ws.auditHas(t, c, "ntp time set", "ok: stepped +") {
		t.Error("the audit log has no successful ntp time set by the session")
	}
	// Unreadable: 422 with the reason, the served time stays.
	code, body, _ = ws.do(t, c, "POST", "/ntp/settime", "time=tomorrow", nil)
	if code != 422 || !strings.Contains(body, `id="error"`) || !strings.Contains(body, "RFC 3339") {
		t.Errorf("bad time: %d\n%s", code, body)
	}
	if r, err := ntpQuery(ntp.Listen[0], ""); err != nil || (r.ClockOffset-time.Hour).Abs() > 2*time.Second {
		t.Errorf("after a refused time the served offset is %v (%v), want 1h", r.ClockOffset, err)
	}
	// A cross-site post is refused.
	if code, _, _ := ws.do(t, c, "POST", "/ntp/settime", "time="+url.QueryEscape(to), map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}); code != http.StatusForbidden {
		t.Errorf("cross-site set time = %d, want 403", code)
	}
}

// TestWebMirrorSyncForm: the mirror page's "Sync now" syncs the repo to
// the end, shows the summary, and the repo's last sync in the status
// changes from never to ok.
func TestWebMirrorSyncForm(t *testing.T) {
	u := newRPMUpstream(t)
	u.add("webpkg", 4096)
	u.index()
	cfg := strings.Replace(webTestConfig, `mirror:
  listen: "127.0.0.1:0"
`, `mirror:
  listen: "127.0.0.1:0"
  repos:
    - { name: upstream, baseurl: "`+u.url()+`" }
`, 1)
	ws := startWebServerConfig(t, cfg)
	c := ws.login(t)
	type repo = api.RepoStatus
	lastSync := func() repo {
		var m api.MirrorStatus
		ws.status().detail(t, "mirror", &m)
		for _, r := range m.Repos {
			if r.Name == "upstream" {
				return r
			}
		}
		t.Fatalf("no repo upstream in the mirror's status: %+v", m)
		return repo{}
	}
	before := lastSync()
	if !before.LastSync.IsZero() {
		t.Fatalf("the repo was synced before the test asked: %+v", before)
	}
	if code, body, _ := ws.do(t, c, "GET", "/mirror", "", nil); code != 200 || !strings.Contains(body, "Sync now") {
		t.Fatalf("mirror page: %d, no Sync now\n%s", code, body)
	}
	// The form starts a job and shows the page with it listed.
	code, body, _ := ws.do(t, c, "POST", "/mirror/sync", "repo=upstream", nil)
	if code != 200 || !strings.Contains(body, `id="jobs"`) || !strings.Contains(body, "closing this page does not stop it") {
		t.Fatalf("sync now: %d\n%s", code, body)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, body, _ = ws.do(t, c, "GET", "/mirror", "", nil); !strings.Contains(body, `data-state="running"`) {
			break
		}
	}
	if !strings.Contains(body, "upstream synced: 1 package, 1 fetched") || !strings.Contains(body, `class="job-results"`) {
		t.Fatalf("the mirror page after the job:\n%s", body)
	}
	after := lastSync()
	if after.LastSync.IsZero() || after.LastResult != "ok" || after.Packages != 1 {
		t.Errorf("after sync now the repo's status is %+v, want a last sync ok with 1 package", after)
	}
	if n := u.count("Packages/webpkg-1.0-1.noarch.rpm"); n != 1 {
		t.Errorf("the package was fetched %d times, want 1", n)
	}
	if !ws.auditHas(t, c, "mirror sync finished", "ok: upstream synced") {
		t.Error("the audit log has no successful mirror sync by the session")
	}
	// An unknown repo: the reason, nothing run.
	if code, body, _ := ws.do(t, c, "POST", "/mirror/sync", "repo=nope", nil); code != 409 || !strings.Contains(body, "no such repo") {
		t.Errorf("sync of an unknown repo: %d\n%s", code, body)
	}
}

// TestWebRegistryGCForm: the registry page's "GC dry run" lists an
// unreferenced blob and leaves it; "GC" lists it and removes it.
func TestWebRegistryGCForm(t *testing.T) {
	ws := startWebServer(t)
	c := ws.login(t)
	// A blob no manifest references, as a deleted image leaves behind.
	content := []byte("an orphaned layer for the web GC test\n")
	sum := sha256.Sum256(content)
	hex := fmt.Sprintf("%x", sum)
	v2 := filepath.Join(ws.dir, "data", "registry", "docker", "registry", "v2")
	blob := filepath.Join(v2, "blobs", "sha256", hex[:2], hex, "data")
	os.MkdirAll(filepath.Dir(blob), 0o755)
	os.MkdirAll(filepath.Join(v2, "repositories"), 0o755)
	if err := os.WriteFile(blob, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := ws.do(t, c, "GET", "/registry", "", nil); code != 200 || !strings.Contains(body, "GC dry run") {
		t.Fatalf("registry page: %d, no GC buttons\n%s", code, body)
	}
	code, body, _ := ws.do(t, c, "POST", "/registry/gc", "dry_run=true", nil)
	if code != 200 || !strings.Contains(body, `id="gc-result"`) || !strings.Contains(body, "sha256:"+hex) || !strings.Contains(body, "would remove 1 blob") {
		t.Fatalf("gc dry run: %d\n%s", code, body)
	}
	if _, err := os.Stat(blob); err != nil {
		t.Errorf("the dry run removed the blob: %v", err)
	}
	code, body, _ = ws.do(t, c, "POST", "/registry/gc", "", nil)
	if code != 200 || !strings.Contains(body, "sha256:"+hex) || !strings.Contains(body, "Garbage collection removed 1 blob") {
		t.Fatalf("gc: %d\n%s", code, body)
	}
	if _, err := os.Stat(blob); !os.IsNotExist(err) {
		t.Errorf("the blob is still on disk after GC: %v", err)
	}
	if !ws.auditHas(t, c, "registry gc dry run", "ok: would remove 1 blob") || !ws.auditHas(t, c, "registry gc", "ok: removed 1 blob") {
		t.Error("the audit log lacks the session's gc runs")
	}
}

// TestWebMetricsRestricted: with web.metrics.token set, /metrics on the UI
// listener needs the bearer token; outside web.metrics.allow it is 403;
// the control socket's /metrics stays open to root.
func TestWebMetricsRestricted(t *testing.T) {
	const token = "scrape-me-0123456789abcdef"
	cfg := strings.Replace(webTestConfig, "  tls: off\n", "  tls: off\n  metrics: { allow: [127.0.0.0/8], token: \""+token+"\" }\n", 1)
	ws := startWebServerConfig(t, cfg)
	if code, _, h := ws.do(t, nil, "GET", "/metrics", "", nil); code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("/metrics without token = %d, want 401 with WWW-Authenticate", code)
	}
	if code, _, _ := ws.do(t, nil, "GET", "/metrics", "", map[string]string{"Authorization": "Bearer wrong"}); code != 401 {
		t.Errorf("/metrics with a wrong token = %d, want 401", code)
	}
	code, body, _ := ws.do(t, nil, "GET", "/metrics", "", map[string]string{"Authorization": "Bearer " + token})
	if code != 200 || !strings.Contains(body, "airgapd_build_info") {
		t.Errorf("/metrics with the token = %d, want 200 with series", code)
	}
	// An API token is not the metrics token.
	if code, _, _ := ws.do(t, nil, "GET", "/metrics", "", map[string]string{"Authorization": "Bearer " + ws.newToken(t, ws.login(t), "scripts")}); code != 401 {
		t.Errorf("/metrics with an API token = %d, want 401", code)
	}
	out, err := run(t, 10*time.Second, "curl", "-fsS", "--unix-socket", filepath.Join(ws.dir, "run", "api.sock"), "http://airgapd/metrics")
	if err != nil || !strings.Contains(out, "airgapd_build_info") {
		t.Errorf("control socket /metrics: %v\n%.200s", err, out)
	}

	// Outside allow: 403, token or not.
	cfg = strings.Replace(webTestConfig, "  tls: off\n", "  tls: off\n  metrics: { allow: [10.0.0.0/8] }\n", 1)
	ws = startWebServerConfig(t, cfg)
	if code, _, _ := ws.do(t, nil, "GET", "/metrics", "", nil); code != 403 {
		t.Errorf("/metrics from 127.0.0.1 with allow [10.0.0.0/8] = %d, want 403", code)
	}
	if code, _, _ := ws.do(t, nil, "GET", "/healthz", "", nil); code != 200 {
		t.Errorf("/healthz = %d: the restriction must cover /metrics only", code)
	}
}

// TestWebRegistryDeleteTag: a tag pushed with skopeo is deleted through
// DELETE /api/v1/registry/tags and the Registry page's form; it is gone
// from the registry's tag list, the other tag stays, and both are audited.
func TestWebRegistryDeleteTag(t *testing.T) {
	need(t, "skopeo")
	cfg := strings.Replace(webTestConfig, "  pull_from: [127.0.0.0/8]\n", "  pull_from: [127.0.0.0/8]\n  users: [{name: admin, password_hash: \""+registryTestHash+"\"}]\n", 1)
	ws := startWebServerConfig(t, cfg)
	host := strings.TrimPrefix(ws.status().listener("registry"), "http://")
	dir := t.TempDir()
	lay := writeLayout(t, filepath.Join(dir, "layout"), ociImage(t, nil, 16<<10), "v1")
	skopeo := func(args ...string) (string, error) {
		cmd := exec.Command("skopeo", args...)
		cmd.Env = append(os.Environ(), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, tag := range []string{"v1", "v2", "v3"} {
		if out, err := skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "admin:s3cret", "oci:"+lay+":v1", "docker://"+host+"/lab/app:"+tag); err != nil {
			t.Fatalf("skopeo push %s: %v\n%s", tag, err, out)
		}
	}
	tags := func() []string {
		out, err := skopeo("list-tags", "--tls-verify=false", "docker://"+host+"/lab/app")
		var l struct{ Tags []string }
		if err != nil || json.Unmarshal([]byte(out), &l) != nil {
			t.Fatalf("skopeo list-tags: %v\n%s", err, out)
		}
		return l.Tags
	}
	c := ws.login(t)
	tok := ws.newToken(t, c, "ci")
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	if code, body, _ := ws.do(t, nil, "DELETE", "/api/v1/registry/tags?repo=lab/app&tag=v1", "", bearer); code != 200 || !strings.Contains(body, "lab/app:v1") {
		t.Fatalf("DELETE /api/v1/registry/tags = %d %s", code, body)
	}
	if got := strings.Join(tags(), ","); got != "v2,v3" {
		t.Errorf("tags after the API delete = %s, want v2,v3", got)
	}
	if code, _, _ := ws.do(t, nil, "DELETE", "/api/v1/registry/tags?repo=lab/app&tag=v1", "", bearer); code != 404 {
		t.Errorf("deleting a missing tag = %d, want 404", code)
	}
	if code, _, _ := ws.do(t, nil, "DELETE", "/api/v1/registry/tags?repo=lab/app&tag=v2", "", nil); code != 401 {
		t.Errorf("DELETE without a token = %d, want 401", code)
	}
	// The page lists the tags with delete buttons; its form deletes one.
	// (The page's repository list is recounted in the background.)
	var page string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, page, _ = ws.do(t, c, "GET", "/registry", "", nil); strings.Contains(page, `name="tag" value="v2"`) {
			break
		}
	}
	if !strings.Contains(page, `action="/registry/tags/delete"`) || !strings.Contains(page, `name="tag" value="v3"`) || !strings.Contains(page, `id="upstreams"`) {
		t.Errorf("registry page has no delete-tag forms or upstreams table:\n%s", page)
	}
	code, body, _ := ws.do(t, c, "POST", "/registry/tags/delete", "repo=lab/app&tag=v3", nil)
	if code != 200 || !strings.Contains(body, "Tag lab/app:v3 deleted") {
		t.Fatalf("delete-tag form: %d\n%s", code, body)
	}
	if got := strings.Join(tags(), ","); got != "v2" {
		t.Errorf("tags after the form's delete = %s, want v2", got)
	}
	if !ws.auditHas(t, c, "registry tag deleted", "ok") {
		t.Error("the audit log lacks the session's tag deletion")
	}
}
