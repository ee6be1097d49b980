package rpm

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/airgapd/airgapd/internal/testpki"
)

func TestUpstreamExpandVars(t *testing.T) {
	vars := repoVars(map[string]string{"releasever": "9.4", "basearch": "x86_64"}, map[string]string{"basearch": "aarch64", "contentdir": "pub/rocky"})
	cases := []struct {
		in, want string
		missing  []string
	}{
		{in: "https://dl.example/$contentdir/$releasever/BaseOS/$basearch/os/", want: "https://dl.example/pub/rocky/9.4/BaseOS/aarch64/os/"},
		{in: "https://dl.example/${releasever}x/${basearch}/", want: "https://dl.example/9.4x/aarch64/"},
		{in: "https://dl.example/$releasever_major/", want: "https://dl.example/9/"},
		{in: "https://dl.example/el$releasever_minor", want: "https://dl.example/el4"},
		{in: "https://dl.example/$releaseverx/", want: "https://dl.example/$releaseverx/", missing: []string{"releaseverx"}},
		{in: "https://dl.example/$stream/$stream/${arch}", want: "https://dl.example/$stream/$stream/${arch}", missing: []string{"stream", "arch"}},
		{in: "https://dl.example/cost$/a$-b${/c", want: "https://dl.example/cost$/a$-b${/c"},
		{in: "", want: ""},
	}
	for _, tc := range cases {
		got, missing := expandVars(tc.in, vars)
		if got != tc.want || !slices.Equal(missing, tc.missing) {
			t.Errorf("expandVars(%q) = %q, missing %q; want %q, missing %q", tc.in, got, missing, tc.want, tc.missing)
		}
	}
}

func TestUpstreamValidate(t *testing.T) {
	dir := t.TempDir()
	pki := testpki.New(t, dir)
	strp := func(s string) *string { return &s }
	no := false
	cases := []struct {
		name     string
		vars     map[string]string
		repo     Repo
		wantPath string // "" = valid
		want     string
	}{
		{name: "plain baseurl", repo: Repo{BaseURL: "http://up/"}},
		{name: "mirrorlist", repo: Repo{Mirrorlist: "https://mirrors.example/mirrorlist?repo=BaseOS-$releasever"}, vars: map[string]string{"releasever": "9"}},
		{name: "metalink", repo: Repo{Metalink: "https://mirrors.example/metalink?repo=epel-$releasever&arch=$basearch", Vars: map[string]string{"releasever": "9", "basearch": "x86_64"}}},
		{name: "variable without a value", repo: Repo{BaseURL: "http://up/$releasever/$basearch/"}, vars: map[string]string{"basearch": "x86_64"}, wantPath: "repos[0].baseurl", want: "uses $releasever with no value"},
		{name: "braced variable without a value", repo: Repo{Metalink: "http://up/?repo=${stream}"}, wantPath: "repos[0].metalink", want: "uses $stream"},
		{name: "substituted, still not a URL", repo: Repo{BaseURL: "$proto://up/"}, vars: map[string]string{"proto": "ftp"}, wantPath: "repos[0].baseurl", want: "not a repo URL"},
		{name: "baseurl and mirrorlist", repo: Repo{BaseURL: "http://up/", Mirrorlist: "http://up/list"}, wantPath: "repos[0]", want: "has baseurl and mirrorlist"},
		{name: "metalink and path", repo: Repo{Metalink: "http://up/ml", Path: "/srv/rpms"}, wantPath: "repos[0]", want: "has metalink and path"},
		{name: "nothing", repo: Repo{}, wantPath: "repos[0]", want: "no baseurl, mirrorlist, metalink or path"},
		{name: "proxy", repo: Repo{BaseURL: "http://up/", Proxy: strp("http://proxy:3128"), ProxyUsername: "u", ProxyPassword: "p"}},
		{name: "proxy _none_", repo: Repo{BaseURL: "http://up/", Proxy: strp("_none_")}},
		{name: "proxy empty", repo: Repo{BaseURL: "http://up/", Proxy: strp("")}},
		{name: "proxy not a URL", repo: Repo{BaseURL: "http://up/", Proxy: strp("proxy:3128")}, wantPath: "repos[0].proxy", want: "not a proxy URL"},
		{name: "proxy user without proxy", repo: Repo{BaseURL: "http://up/", ProxyUsername: "u"}, wantPath: "repos[0]", want: "no proxy"},
		{name: "tls files", repo: Repo{BaseURL: "https://up/", SSLCACert: pki.CAFile, SSLClientCert: pki.ClientCert, SSLClientKey: pki.ClientKey}},
		{name: "sslverify false", repo: Repo{BaseURL: "https://up/", SSLVerify: &no}},
		{name: "cacert missing", repo: Repo{BaseURL: "https://up/", SSLCACert: filepath.Join(dir, "nope.crt")}, wantPath: "repos[0].sslcacert", want: "cannot read"},
		{name: "cert without key", repo: Repo{BaseURL: "https://up/", SSLClientCert: pki.ClientCert}, wantPath: "repos[0]", want: "only one of sslclientcert and sslclientkey"},
		{name: "key without cert", repo: Repo{BaseURL: "https://up/", SSLClientKey: pki.ClientKey}, wantPath: "repos[0]", want: "only one of sslclientcert and sslclientkey"},
		{name: "proxy on a local repo", repo: Repo{Path: "/srv/rpms", Proxy: strp("http://proxy:3128")}, wantPath: "repos[0]", want: "local folder"},
		{name: "bad var name", repo: Repo{BaseURL: "http://up/", Vars: map[string]string{"base-arch": "x"}}, wantPath: "repos[0].vars.base-arch", want: "not a variable name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Vars = tc.vars
			tc.repo.Name = "r"
			c.Repos = []Repo{tc.repo}
			err := c.Validate()
			if tc.wantPath == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want a problem at %s with %q, got none", tc.wantPath, tc.want)
			}
			found := false
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(line, tc.wantPath+": ") && strings.Contains(line, tc.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("want a problem at %s with %q, got:\n%v", tc.wantPath, tc.want, err)
			}
		})
	}
}

// deadURL is an http:// URL on loopback where nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// syncWith runs one sync of repo "up" configured by edit.
func syncWith(t *testing.T, edit func(*Repo)) (*Mirror, error) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	r := Repo{Name: "up"}
	edit(&r)
	cfg.Repos = []Repo{r}
	m, err := New(cfg, Deps{DataDir: t.TempDir(), Listen: "127.0.0.1:8081", AdvertiseAddresses: []string{"192.0.2.1"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Sync(context.Background(), nil, nil)
	return m, err
}

func TestUpstreamMirrorlist(t *testing.T) {
	up := newFakeRepo(map[string][]byte{"a": bytes.Repeat([]byte("a"), 3000)}, "")
	good := httptest.NewServer(up)
	defer good.Close()
	list := "# mirrors for up\n\n" + deadURL(t) + "/el/$releasever/\nrsync://mirror.invalid/el/9/\n" + good.URL + "/\n"
	lists := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(list)) }))
	defer lists.Close()

	m, err := syncWith(t, func(r *Repo) {
		r.Mirrorlist = lists.URL + "/mirrorlist?release=$releasever"
		r.Vars = map[string]string{"releasever": "9"}
	})
	if err != nil {
		t.Fatalf("sync through the mirrorlist: %v", err)
	}
	if rec := get(t, m.Handler(), "/repos/up/repodata/repomd.xml"); rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), up.files["repodata/repomd.xml"]) {
		t.Errorf("repomd.xml from the second mirror: %d", rec.Code)
	}
	if got := m.Status().Repos[0].Upstream; got != good.URL+"/" {
		t.Errorf("status upstream %q, want the second mirror %s/", got, good.URL)
	}
	if len(up.gets["Packages/a-1-1.noarch.rpm"]) != 1 {
		t.Errorf("package fetched %d times from the good mirror, want 1", len(up.gets["Packages/a-1-1.noarch.rpm"]))
	}

	// Every mirror dead: the error names the list and each mirror.
	list = deadURL(t) + "/\n"
	_, err = syncWith(t, func(r *Repo) { r.Mirrorlist = lists.URL + "/mirrorlist" })
	if err == nil || !strings.Contains(err.Error(), "mirrorlist "+lists.URL+"/mirrorlist") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("sync with only a dead mirror: %v", err)
	}
}

func TestUpstreamMetalink(t *testing.T) {
	up := newFakeRepo(map[string][]byte{"a": bytes.Repeat([]byte("a"), 3000)}, "")
	good := httptest.NewServer(up)
	defer good.Close()
	other := httptest.NewServer(newFakeRepo(map[string][]byte{"b": bytes.Repeat([]byte("b"), 3000)}, ""))
	defer other.Close()
	tmpl, err := os.ReadFile("testdata/metalink.xml")
	if err != nil {
		t.Fatal(err)
	}
	md := up.files["repodata/repomd.xml"]
	s512 := sha512.Sum512(md)
	cases := []struct {
		name   string
		sha256 string
		sha512 string
		want   string // "" = the sync succeeds
	}{
		{name: "sha256 matches", sha256: sum(md), sha512: strings.Repeat("0", 128)},
		{name: "sha512 matches", sha256: strings.Repeat("0", 64), sha512: hex.EncodeToString(s512[:])},
		{name: "no hash matches", sha256: strings.Repeat("0", 64), sha512: strings.Repeat("0", 128), want: "matches none of the metalink's hashes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.NewReplacer("@SIZE@", strconv.Itoa(len(md)), "@SHA256@", tc.sha256, "@SHA512@", tc.sha512,
				"@GOOD@", good.URL, "@DEAD@", deadURL(t), "@WRONG@", other.URL).Replace(string(tmpl))
			links := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(doc)) }))
			defer links.Close()
			m, err := syncWith(t, func(r *Repo) { r.Metalink = links.URL + "/metalink?repo=up" })
			rec := get(t, m.Handler(), "/repos/up/repodata/repomd.xml")
			if tc.want == "" {
				if err != nil || rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), md) {
					t.Fatalf("sync: %v; repomd.xml %d", err, rec.Code)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "metalink "+links.URL+"/metalink?repo=up") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("sync: %v, want an error naming the metalink and %q", err, tc.want)
			}
			if rec.Code != http.StatusNotFound {
				t.Errorf("a failed sync published repomd.xml: %d", rec.Code)
			}
		})
	}
}

func TestUpstreamParseMetalink(t *testing.T) {
	tmpl, err := os.ReadFile("testdata/metalink.xml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.NewReplacer("@SIZE@", "100", "@SHA256@", strings.Repeat("a", 64), "@SHA512@", strings.Repeat("b", 128),
		"@GOOD@", "https://good.example/pub", "@DEAD@", "http://dead.example", "@WRONG@", "http://wrong.example/x").Replace(string(tmpl))
	ml, err := parseMetalink([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://dead.example/", "http://wrong.example/x/", "https://good.example/pub/"} // by preference, rsync dropped
	if !slices.Equal(ml.bases, want) {
		t.Errorf("bases %q, want %q", ml.bases, want)
	}
	if len(ml.versions) != 2 || ml.versions[1].Size != 4242 {
		t.Errorf("versions (current and alternate): %+v", ml.versions)
	}
	if !isMetalink([]byte(doc)) || isMetalink([]byte("http://a/\n")) {
		t.Error("isMetalink cannot tell a metalink from a mirrorlist")
	}
	for _, bad := range []string{"not xml", `<metalink><files><file name="other.xml"/></files></metalink>`,
		`<metalink><files><file name="repomd.xml"><verification><hash type="md5">00</hash></verification></file></files></metalink>`} {
		if _, err := parseMetalink([]byte(bad)); err == nil {
			t.Errorf("parseMetalink(%q) accepted it", bad)
		}
	}
}

func TestUpstreamProxySetting(t *testing.T) {
	strp := func(s string) *string { return &s }
	target, _ := url.Parse("http://mirror.example/el9/repodata/repomd.xml")
	cases := []struct {
		name  string
		proxy *string
		user  string
		want  string // proxy URL for target; "" = direct
	}{
		{name: "_none_ beats the environment", proxy: strp("_none_")},
		{name: "empty beats the environment", proxy: strp("")},
		{name: "absent: the environment's", proxy: nil, want: "env"},
		{name: "own proxy", proxy: strp("http://127.0.0.1:3128"), want: "http://127.0.0.1:3128"},
		{name: "own proxy with login", proxy: strp("http://127.0.0.1:3128"), user: "alice", want: "http://alice:s3cret@127.0.0.1:3128"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := newFetcher(slog.New(slog.DiscardHandler), 1, Repo{Name: "x", Proxy: tc.proxy, ProxyUsername: tc.user, ProxyPassword: "s3cret"})
			if err != nil {
				t.Fatal(err)
			}
			tr := f.Client.Transport.(*http.Transport)
			if tc.want == "env" {
				if tr.Proxy == nil {
					t.Error("absent proxy: the environment's proxy is not consulted")
				}
				return
			}
			var got string
			if tr.Proxy != nil {
				u, err := tr.Proxy(&http.Request{URL: target})
				if err != nil {
					t.Fatal(err)
				}
				if u != nil {
					got = u.String()
				}
			}
			if got != tc.want {
				t.Errorf("proxy for %s: %q, want %q", target, got, tc.want)
			}
		})
	}
}

func TestUpstreamClientCertificate(t *testing.T) {
	dir := t.TempDir()
	pki := testpki.New(t, dir)
	up := newFakeRepo(map[string][]byte{"a": bytes.Repeat([]byte("a"), 3000)}, "")
	srv := httptest.NewUnstartedServer(up)
	srv.TLS = pki.ServerTLS(t)
	srv.StartTLS()
	defer srv.Close()
	cases := []struct {
		name string
		edit func(*Repo)
		want string // "" = the sync succeeds
	}{
		{name: "no CA", edit: func(*Repo) {}, want: "set sslcacert"},
		{name: "CA, no client certificate", edit: func(r *Repo) { r.SSLCACert = pki.CAFile }, want: "set sslclientcert and sslclientkey"},
		{name: "CA and client certificate", edit: func(r *Repo) {
			r.SSLCACert, r.SSLClientCert, r.SSLClientKey = pki.CAFile, pki.ClientCert, pki.ClientKey
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := syncWith(t, func(r *Repo) { r.BaseURL = srv.URL + "/"; tc.edit(r) })
			t.Logf("sync: %v", err)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("sync: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestUpstreamPackageFailover: a package or metadata file the chosen mirror
// does not give (missing there, or with the wrong bytes) comes from the
// list's next mirror in the same sync; one no mirror gives fails the sync
// by name.
func TestUpstreamPackageFailover(t *testing.T) {
	pkgs := map[string][]byte{"a": bytes.Repeat([]byte("a"), 3000), "b": bytes.Repeat([]byte("b"), 3000), "c": bytes.Repeat([]byte("c"), 3000)}
	// Two mirrors of one repo: the same files (primary.xml's order, hence
	// its checksum, follows a map's).
	first := newFakeRepo(pkgs, "")
	second := &fakeRepo{files: maps.Clone(first.files), gets: map[string][]string{}, fail: map[string]int{}}
	delete(first.files, "Packages/a-1-1.noarch.rpm")                           // missing on the first mirror
	first.files["Packages/b-1-1.noarch.rpm"] = bytes.Repeat([]byte("x"), 3000) // damaged there
	var primary string
	for p := range first.files {
		if strings.HasSuffix(p, "-primary.xml.gz") {
			primary = p
		}
	}
	delete(first.files, primary) // metadata too
	firstSrv, secondSrv := httptest.NewServer(first), httptest.NewServer(second)
	defer firstSrv.Close()
	defer secondSrv.Close()
	list := firstSrv.URL + "/\n" + secondSrv.URL + "/\n"
	lists := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(list)) }))
	defer lists.Close()

	m, err := syncWith(t, func(r *Repo) { r.Mirrorlist = lists.URL + "/mirrorlist" })
	if err != nil {
		t.Fatalf("sync with a package missing and one damaged on the first mirror: %v", err)
	}
	for name, body := range pkgs {
		href := "Packages/" + name + "-1-1.noarch.rpm"
		if rec := get(t, m.Handler(), "/repos/up/"+href); rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), body) {
			t.Errorf("%s served: %d, want the upstream's bytes", href, rec.Code)
		}
	}
	for href, want := range map[string]int{"Packages/a-1-1.noarch.rpm": 1, "Packages/b-1-1.noarch.rpm": 1, "Packages/c-1-1.noarch.rpm": 0, primary: 1} {
		if got := len(second.gets[href]); got != want {
			t.Errorf("%s asked of the second mirror %d times, want %d", href, got, want)
		}
	}
	if got := m.Status().Repos[0].Upstream; got != firstSrv.URL+"/" {
		t.Errorf("status upstream %q, want the first mirror", got)
	}

	// Missing everywhere: the sync fails naming it.
	delete(second.files, "Packages/a-1-1.noarch.rpm")
	_, err = syncWith(t, func(r *Repo) { r.Mirrorlist = lists.URL + "/mirrorlist" })
	if err == nil || !strings.Contains(err.Error(), "Packages/a-1-1.noarch.rpm") {
		t.Errorf("sync with a package no mirror has: %v", err)
	}
}
