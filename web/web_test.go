package web

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airgapd/airgapd/api"
)

// fakeInstance answers with what its fields say.
type fakeInstance struct {
	status func() any
	ready  func() bool
	ca     func() []byte
}

func (f fakeInstance) Status() api.StatusReport { return reportOf(f.status()) }

// reportOf reads a fake's status (any JSON-shaped value) as the report
// /api/v1/status would carry; another shape gives an empty report.
func reportOf(v any) api.StatusReport {
	var r api.StatusReport
	if b, err := json.Marshal(v); err == nil {
		json.Unmarshal(b, &r)
	}
	return r
}
func (f fakeInstance) Ready() bool       { return f.ready() }
func (f fakeInstance) CACertPEM() []byte { return f.ca() }

var _ Instance = fakeInstance{}

func listen(t *testing.T, network, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// startWeb runs a web server on fresh loopback listeners and stops it when
// the test ends.
func startWeb(t *testing.T, inst fakeInstance) (deps Deps) {
	t.Helper()
	return startWebWith(t, inst, func(*Deps) {})
}

// startWebWith lets a test add to the deps before the server starts.
func startWebWith(t *testing.T, inst fakeInstance, edit func(*Deps)) (deps Deps) {
	t.Helper()
	deps = Deps{
		Metrics:         prometheus.NewRegistry(),
		Instance:        inst,
		UI:              listen(t, "tcp", "127.0.0.1:0"),
		Control:         listen(t, "unix", filepath.Join(t.TempDir(), "api.sock")),
		Mirror:          listen(t, "tcp", "127.0.0.1:0"),
		Registry:        listen(t, "tcp", "127.0.0.1:0"),
		MirrorHandler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "mirror "+r.URL.Path) }),
		RegistryHandler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "registry "+r.URL.Path) }),
	}
	edit(&deps)
	s, err := New(DefaultConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s of cancel")
		}
	})
	return deps
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRoutes(t *testing.T) {
	ready := false
	deps := startWeb(t, fakeInstance{
		status: func() any { return api.StatusReport{Version: "world"} },
		ready:  func() bool { return ready },
		ca:     func() []byte { return nil },
	})
	ui := "http://" + deps.UI.Addr().String()
	mirror := "http://" + deps.Mirror.Addr().String()
	registry := "http://" + deps.Registry.Addr().String()
	c := &http.Client{Timeout: 5 * time.Second}

	cases := []struct {
		name     string
		url      string
		wantCode int
		wantBody string
	}{
		{"ui healthz", ui + "/healthz", 200, "ok"},
		{"ui readyz while starting", ui + "/readyz", 503, "starting"},
		{"ui api needs login", ui + "/api/v1/status", 401, "authentication required"},
		{"ui unknown api", ui + "/api/v1/nope", 401, "authentication required"},
		{"ui no CA", ui + "/ca.crt", 404, "no appliance CA"},
		{"mirror repos mounted", mirror + "/repos/x/repodata/repomd.xml", 200, "mirror /repos/x/repodata/repomd.xml"},
		{"mirror files mounted", mirror + "/files/a.tgz", 200, "mirror /files/a.tgz"},
		{"mirror has no API", mirror + "/api/v1/status", 404, ""},
		{"registry v2 mounted", registry + "/v2/", 200, "registry /v2/"},
		{"registry has no UI", registry + "/", 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, c, tc.url)
			if code != tc.wantCode || !strings.Contains(body, tc.wantBody) {
				t.Errorf("GET %s = %d %q, want %d with %q", tc.url, code, body, tc.wantCode, tc.wantBody)
			}
		})
	}
	ready = true
	if code, _ := get(t, c, ui+"/readyz"); code != 200 {
		t.Errorf("readyz when ready = %d", code)
	}
}

func TestControlSocketServesAPIToRoot(t *testing.T) {
	deps := startWeb(t, fakeInstance{
		status: func() any { return api.StatusReport{Version: "world"} },
		ready:  func() bool { return true },
		ca:     func() []byte { return []byte("PEM") },
	})
	sock := deps.Control.Addr().String()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	code, body := get(t, c, "http://airgapd/api/v1/status")
	if os.Getuid() == 0 {
		var got map[string]any
		if code != 200 || json.Unmarshal([]byte(body), &got) != nil || got["version"] != "world" {
			t.Errorf("status over control socket as root = %d %q", code, body)
		}
	} else if code != http.StatusForbidden || !strings.Contains(body, "root only") {
		t.Errorf("status over control socket as non-root = %d %q, want 403", code, body)
	}
}

// fakeServices answer the control API's actions with what their fields say.
type fakeServices struct {
	flush   func(name string) (int, error)
	setTime func(time.Time) (time.Duration, error)
}

func (f fakeServices) FlushDNSCache(name string) (int, error)                 { return f.flush(name) }
func (f fakeServices) SetNTPTime(to time.Time, _ bool) (time.Duration, error) { return f.setTime(to) }

func TestControlActions(t *testing.T) {
	var flushed string
	var set time.Time
	svc := fakeServices{
		flush:   func(name string) (int, error) { flushed = name; return 3, nil },
		setTime: func(to time.Time) (time.Duration, error) { set = to; return 90 * time.Second, nil },
	}
	deps := startWebWith(t, fakeInstance{status: func() any { return nil }, ready: func() bool { return true }, ca: func() []byte { return nil }},
		func(d *Deps) { d.DNSCache, d.NTPClock = svc, svc })
	sock := deps.Control.Addr().String()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	post := func(path, body string) (int, string) {
		resp, err := c.Post("http://airgapd"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		name, path, body string
		code             int
		want             string
	}{
		{"flush one name", "/api/v1/dns/cache/flush?name=www.example.test", "", 200, `"flushed": 3`},
		{"settime", "/api/v1/ntp/settime", `{"time": "2026-11-21T16:30:05+09:00"}`, 200, `"step_seconds": 90`},
		{"settime without a time", "/api/v1/ntp/settime", `{}`, 400, "RFC 3339"},
		{"settime garbage", "/api/v1/ntp/settime", `not json`, 400, "RFC 3339"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(tc.path, tc.body)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("POST %s = %d %s, want %d with %q", tc.path, code, body, tc.code, tc.want)
			}
		})
	}
	if flushed != "www.example.test" {
		t.Errorf("flushed %q", flushed)
	}
	if want := time.Date(2026, 11, 21, 7, 30, 5, 0, time.UTC); !set.Equal(want) {
		t.Errorf("set %v, want %v", set, want)
	}
}

func TestMetricsConfig(t *testing.T) {
	c := DefaultConfig()
	c.Metrics = MetricsConfig{Allow: []string{"10.0.0.0/8", "192.168.1.5"}, Token: "0123456789abcdef"}
	if err := c.Validate(); err != nil {
		t.Errorf("valid metrics config: %v", err)
	}
	c.Metrics = MetricsConfig{Allow: []string{"10.0.0.1/8"}, Token: "short"}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "metrics.allow[0]") || !strings.Contains(err.Error(), "metrics.token") {
		t.Errorf("invalid metrics config: %v", err)
	}
	allow := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for addr, want := range map[string]bool{"10.1.2.3:5555": true, "[::ffff:10.1.2.3]:1": true, "127.0.0.1:80": false, "junk": false} {
		if got := addrAllowed(addr, allow); got != want {
			t.Errorf("addrAllowed(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestDNSPageForwarders: a forwarder never asked is "unknown", not
// "healthy"; one that answered is healthy, one that failed is down.
func TestDNSPageForwarders(t *testing.T) {
	status := map[string]any{"services": []map[string]any{{
		"name": "dns", "enabled": true, "state": "up",
		"detail": map[string]any{"upstreams": []map[string]any{
			{"address": "192.0.2.1:53", "healthy": true, "queries": 0, "errors": 0},
			{"address": "192.0.2.2:53", "healthy": true, "queries": 12, "errors": 0},
			{"address": "192.0.2.3:53", "healthy": false, "queries": 3, "errors": 3},
		}},
	}}}
	s, err := New(DefaultConfig(), Deps{Instance: fakeInstance{status: func() any { return status }}, Control: listen(t, "unix", filepath.Join(t.TempDir(), "api.sock"))})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s.renderDNS(w, httptest.NewRequest("GET", "/dns", nil), 200, "")
	body := w.Body.String()
	for addr, want := range map[string]string{"192.0.2.1:53": "unknown", "192.0.2.2:53": "healthy", "192.0.2.3:53": "down"} {
		i := strings.Index(body, addr)
		if i < 0 || !strings.Contains(body[i:min(len(body), i+300)], ">"+want+"<") {
			t.Errorf("forwarder %s is not shown as %s", addr, want)
		}
	}
}

// TestRegistryPageUpstreams: the Registry page tables each upstream of the
// status's `upstreams` with its reachability, hits, misses and bytes.
func TestRegistryPageUpstreams(t *testing.T) {
	status := map[string]any{"services": []map[string]any{{
		"name": "registry", "enabled": true, "state": "up",
		"detail": map[string]any{
			"repositories": []map[string]any{{"name": "lab/app", "tags": []string{"v1"}, "manifests": 1, "bytes": 100}},
			"upstreams": []map[string]any{
				{"name": "docker.io", "url": "https://registry-1.docker.io", "reachable": true, "hits": 30, "misses": 10, "bytes_fetched": 3 << 20},
				{"name": "quay.io", "url": "https://quay.io", "reachable": false, "last_error": "dial tcp: no route to host", "hits": 0, "misses": 0},
			},
		},
	}}}
	s, err := New(DefaultConfig(), Deps{Instance: fakeInstance{status: func() any { return status }}, Control: listen(t, "unix", filepath.Join(t.TempDir(), "api.sock"))})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s.renderService(w, httptest.NewRequest("GET", "/registry", nil), "registry", 200, "", "", nil)
	body := w.Body.String()
	for _, want := range []string{`id="upstreams"`, "docker.io", "https://registry-1.docker.io", "reachable", ">30<", ">10<", "75%", "3.0 MiB", "quay.io", "unreachable", "no route to host", "lab/app"} {
		if !strings.Contains(body, want) {
			t.Errorf("registry page lacks %q", want)
		}
	}
	if strings.Contains(body, `action="/registry/tags/delete"`) {
		t.Error("delete-tag forms without a RegistryAdmin")
	}
}
