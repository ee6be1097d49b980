package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// nsRT adds ?ns= to every request, as containerd does.
type nsRT string

func (n nsRT) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	q := req.URL.Query()
	q.Set("ns", string(n))
	req.URL.RawQuery = q.Encode()
	return http.DefaultTransport.RoundTrip(req)
}

// bearerUpstream serves tr behind Docker Hub's token flow: a 401 with a
// Bearer challenge, a token endpoint that wants the repository pull scope.
func bearerUpstream(t *testing.T, tr *testRegistry, tokens *atomic.Int64) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/token" {
			if !strings.HasPrefix(req.URL.Query().Get("scope"), "repository:") || req.URL.Query().Get("service") != "stand-in" {
				http.Error(w, "bad scope", http.StatusBadRequest)
				return
			}
			tokens.Add(1)
			json.NewEncoder(w).Encode(map[string]string{"token": "t0ken"})
			return
		}
		if req.Header.Get("Authorization") != "Bearer t0ken" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="stand-in"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		req.Header.Del("Authorization")
		tr.srv.Config.Handler.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestPullThroughNamespaces(t *testing.T) {
	a, b, _ := images(t)
	up := newTestRegistry(t, testConfig("127.0.0.0/8"))
	if err := remote.Write(up.ref(t, "library/app:v1"), a, remote.WithAuth(pusher)); err != nil {
		t.Fatal(err)
	}
	var tokens atomic.Int64
	bearer := bearerUpstream(t, up, &tokens)

	cfg := testConfig("127.0.0.0/8")
	cfg.Mirrors = []Mirror{{Name: "docker.io", URL: bearer.URL}}
	tr := newTestRegistry(t, cfg)

	pull := func(ns, ref string) (string, error) {
		r, err := name.ParseReference(tr.host+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		opts := []remote.Option{}
		if ns != "" {
			opts = append(opts, remote.WithTransport(nsRT(ns)))
		}
		img, err := remote.Image(r, opts...)
		if err != nil {
			return "", err
		}
		if err := validateImage(img); err != nil {
			return "", err
		}
		d, err := img.Digest()
		return d.String(), err
	}
	want := digestOf(t, a).String()
	for _, c := range []struct{ ns, ref string }{
		{"docker.io", "library/app:v1"},
		{"docker.io", "app:v1"}, // library/ implied
		{"", "docker.io/library/app:v1"},
		{"", "docker.io/app:v1"},
	} {
		if got, err := pull(c.ns, c.ref); err != nil || got != want {
			t.Errorf("ns=%q %s: %s, %v; want %s", c.ns, c.ref, got, err, want)
		}
	}
	if tokens.Load() == 0 {
		t.Error("no token was fetched from the upstream's realm")
	}
	// Not under a mirror: not pulled through.
	if _, err := pull("", "library/app:v1"); err == nil {
		t.Error("library/app:v1 without a namespace was pulled through")
	}

	// The upstream moves the tag: the next lookup follows it.
	if err := remote.Write(up.ref(t, "library/app:v1"), b, remote.WithAuth(pusher)); err != nil {
		t.Fatal(err)
	}
	if got, err := pull("docker.io", "library/app:v1"); err != nil || got != digestOf(t, b).String() {
		t.Errorf("after the upstream moved the tag: %s, %v; want %s", got, err, digestOf(t, b))
	}

	// A tag pushed under the upstream's name is pinned: the upstream's
	// own tag of the same name does not replace it.
	if err := remote.Write(tr.ref(t, "docker.io/library/app:v1"), a, remote.WithAuth(pusher)); err != nil {
		t.Fatal(err)
	}
	if got, err := pull("docker.io", "library/app:v1"); err != nil || got != want {
		t.Errorf("pushed tag: %s, %v; want the pushed %s", got, err, want)
	}

	// A blob HEAD with credentials (a push deciding what to send) hears
	// about the store only; an anonymous one hears about the upstream too.
	c, _, _ := images(t)
	if err := remote.Write(up.ref(t, "library/other:v1"), c, remote.WithAuth(pusher)); err != nil {
		t.Fatal(err)
	}
	m, err := c.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	head := func(auth bool) int {
		req, _ := http.NewRequest(http.MethodHead, tr.srv.URL+"/v2/docker.io/library/other/blobs/"+m.Layers[1].Digest.String(), nil)
		if auth {
			req.SetBasicAuth("admin", "s3cret")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := head(true); got != http.StatusNotFound {
		t.Errorf("HEAD of an upstream-only blob with credentials: %d, want 404", got)
	}
	if got := head(false); got != http.StatusOK {
		t.Errorf("anonymous HEAD of an upstream-only blob: %d, want 200", got)
	}
	if got, err := pull("docker.io", "library/other:v1"); err != nil || got != digestOf(t, c).String() {
		t.Errorf("library/other:v1: %s, %v", got, err)
	}
	st := tr.Status()
	if got, err := testutil.GatherAndCount(tr.metrics, "airgapd_registry_upstream_misses_total", "airgapd_registry_upstream_reachable"); err != nil || got != 2 {
		t.Errorf("upstream metrics: %d series, %v", got, err)
	}
	if len(st.Upstreams) != 1 || !st.Upstreams[0].Reachable || st.Upstreams[0].Misses == 0 || st.Upstreams[0].Refreshes == 0 {
		t.Errorf("status: %+v", st.Upstreams)
	}

	// The upstream goes: cached tags and blobs are served at once.
	bearer.Close()
	began := time.Now()
	if got, err := pull("docker.io", "library/app:v1"); err != nil || got != want {
		t.Errorf("offline: %s, %v", got, err)
	}
	if got, err := pull("docker.io", "library/other:v1"); err != nil || got != digestOf(t, c).String() {
		t.Errorf("offline library/other:v1: %s, %v", got, err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("offline pull took %s", d)
	}
	if st := tr.Status(); st.Upstreams[0].Reachable {
		t.Errorf("status after the upstream went: %+v", st.Upstreams[0])
	}
}

// TestImportUnderUpstreamName: an image named registry.k8s.io/pause:3.10 in
// the file is stored under that name and served to ns=registry.k8s.io with
// no upstream at all.
func TestImportUnderUpstreamName(t *testing.T) {
	a, _, _ := images(t)
	dir := t.TempDir()
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(a, layout.WithAnnotations(map[string]string{annotationContainerdName: "registry.k8s.io/pause:3.10"})); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("127.0.0.0/8")
	cfg.Mirrors = []Mirror{{Name: "registry.k8s.io", URL: "http://127.0.0.1:1"}} // nothing listens
	tr := newTestRegistry(t, cfg)
	res, err := tr.Import(context.Background(), filepath.Join(dir, "layout"), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || res.Images[0].Name != "registry.k8s.io/pause:3.10" {
		t.Fatalf("import result %+v", res)
	}
	r, _ := name.ParseReference(tr.host+"/pause:3.10", name.Insecure)
	img, err := remote.Image(r, remote.WithTransport(nsRT("registry.k8s.io")))
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, img) != digestOf(t, a) {
		t.Errorf("digest %s, want %s", digestOf(t, img), digestOf(t, a))
	}
	if err := validateImage(img); err != nil {
		t.Error(err)
	}
}

func TestNamespaceRouting(t *testing.T) {
	cfg := testConfig("127.0.0.0/8")
	cfg.Mirrors = []Mirror{{Name: "docker.io"}, {Name: "registry.k8s.io"}}
	r, err := New(cfg, Deps{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	h := r.namespaces(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { got = req.URL.RequestURI() }))
	for _, c := range []struct {
		name, host, uri, want, header string
	}{
		{"ns", "admin:5000", "/v2/pause/manifests/3.10?ns=registry.k8s.io", "/v2/registry.k8s.io/pause/manifests/3.10", "registry.k8s.io"},
		{"docker library", "admin:5000", "/v2/nginx/blobs/sha256:ab?ns=docker.io", "/v2/docker.io/library/nginx/blobs/sha256:ab", "docker.io"},
		{"prefix", "admin:5000", "/v2/registry.k8s.io/pause/manifests/3.10", "/v2/registry.k8s.io/pause/manifests/3.10", "registry.k8s.io"},
		{"prefix library", "admin:5000", "/v2/docker.io/nginx/tags/list", "/v2/docker.io/library/nginx/tags/list", "docker.io"},
		{"both", "admin:5000", "/v2/docker.io/library/nginx/manifests/1?ns=docker.io", "/v2/docker.io/library/nginx/manifests/1?ns=docker.io", "docker.io"},
		{"unconfigured upstream", "admin:5000", "/v2/x/y/manifests/1?ns=ghcr.io", "/v2/ghcr.io/x/y/manifests/1", "ghcr.io"},
		{"itself", "admin.lab:5000", "/v2/lab/app/manifests/1?ns=admin.lab", "/v2/lab/app/manifests/1?ns=admin.lab", ""},
		{"no namespace", "admin:5000", "/v2/lab/app/manifests/1", "/v2/lab/app/manifests/1", ""},
		{"ping", "admin:5000", "/v2/?ns=docker.io", "/v2/?ns=docker.io", "docker.io"},
	} {
		req := httptest.NewRequest(http.MethodGet, c.uri, nil)
		req.Host = c.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got != c.want || rec.Header().Get("OCI-Namespace") != c.header {
			t.Errorf("%s: %s → %s, OCI-Namespace %q; want %s, %q", c.name, c.uri, got, rec.Header().Get("OCI-Namespace"), c.want, c.header)
		}
	}
}

func TestMirrorConfig(t *testing.T) {
	for _, c := range []struct {
		name    string
		mirrors []Mirror
		bad     string
	}{
		{"ok", []Mirror{{Name: "docker.io"}, {Name: "quay.io", URL: "https://quay.example", Username: "u", Password: "p"}}, ""},
		{"twice", []Mirror{{Name: "docker.io"}, {Name: "docker.io"}}, "listed twice"},
		{"not a host", []Mirror{{Name: "library"}}, "not a registry host name"},
		{"half credentials", []Mirror{{Name: "quay.io", Username: "u"}}, "go together"},
		{"bad url", []Mirror{{Name: "quay.io", URL: "ftp://x"}}, "not a registry URL"},
	} {
		cfg := testConfig()
		cfg.Mirrors = c.mirrors
		err := cfg.Validate()
		if (c.bad == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.bad)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.bad)
		}
	}
}

// TestUpstreamAuth drives upstream.do against stand-in upstreams for each
// way a registry asks for credentials (it replaces the test of the former
// hand-written challenge parser: go-containerregistry parses it now).
func TestUpstreamAuth(t *testing.T) {
	const user, pass = "mirror", "s3cret"
	for _, c := range []struct {
		name       string
		scheme     string // "", "basic" or "bearer"
		user, pass string
		want       int    // status returned, 0 = an error
		wantErr    string // in the error
	}{
		{name: "anonymous", want: http.StatusOK},
		{name: "basic", scheme: "basic", user: user, pass: pass, want: http.StatusOK},
		{name: "basic without credentials", scheme: "basic", wantErr: "asks for credentials"},
		{name: "basic wrong password", scheme: "basic", user: user, pass: "nope", wantErr: "refused"},
		{name: "bearer anonymous", scheme: "bearer", want: http.StatusOK},
		{name: "bearer with credentials", scheme: "bearer", user: user, pass: pass, want: http.StatusOK},
		{name: "bearer wrong password", scheme: "bearer", user: "other", pass: pass, wantErr: "refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var tokens atomic.Int64
			srv := authUpstream(t, c.scheme, user, pass, &tokens)
			u, err := newUpstream(Mirror{Name: "quay.io", URL: srv.URL, Username: c.user, Password: c.pass}, time.Now)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second request reuses the transport, and the token
				resp, err := u.do(context.Background(), http.MethodGet, "team/app", "/manifests/v1", nil)
				if c.want == 0 {
					if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, errUpstreamDown) {
						t.Fatalf("err %v, want one with %q", err, c.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				drain(resp)
				if resp.StatusCode != c.want {
					t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
				}
			}
			if c.scheme == "bearer" && tokens.Load() != 1 {
				t.Errorf("%d tokens fetched, want 1", tokens.Load())
			}
		})
	}
}

// authUpstream answers /v2/ and /v2/team/app/manifests/v1 behind scheme
// ("" = anonymous): Basic with user:pass, or a Bearer token from /token,
// which checks the scope and, when the client sends them, user:pass.
func authUpstream(t *testing.T, scheme, user, pass string, tokens *atomic.Int64) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/token" {
			u, p, ok := req.BasicAuth()
			if req.URL.Query().Get("scope") != "repository:team/app:pull" || (ok && (u != user || p != pass)) {
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			tokens.Add(1)
			json.NewEncoder(w).Encode(map[string]string{"access_token": "t0ken"})
			return
		}
		authorized := false
		switch scheme {
		case "":
			authorized = true
		case "basic":
			u, p, ok := req.BasicAuth()
			authorized = ok && u == user && p == pass
			w.Header().Set("WWW-Authenticate", `Basic realm="stand-in"`)
		case "bearer":
			authorized = req.Header.Get("Authorization") == "Bearer t0ken"
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="stand-in",scope="repository:team/app:pull"`)
		}
		if !authorized {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Del("WWW-Authenticate")
		switch req.URL.Path {
		case "/v2/", "/v2/team/app/manifests/v1":
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}
