package pypi

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// wheel makes a small wheel of name-version with a METADATA file.
func wheel(t *testing.T, name, version string) []byte {
	t.Helper()
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	w, _ := z.Create(name + "-" + version + ".dist-info/METADATA")
	fmt.Fprintf(w, "Metadata-Version: 2.1\nName: %s\nVersion: %s\n", name, version)
	w, _ = z.Create(name + "/__init__.py")
	fmt.Fprintf(w, "VERSION = %q\n", version)
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// upstream is a stand-in simple index: alpha's page in PEP 503 HTML,
// beta's in PEP 691 JSON (only to a client that asks for it).
type upstream struct {
	mu    sync.Mutex
	files map[string][]byte // path → body served
	sums  map[string]string // file name → the sha256 the page says
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch r.URL.Path {
	case "/simple/alpha/":
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<html><body><a href="../../f/alpha-1.0-py3-none-any.whl#sha256=%s" data-requires-python="&gt;=3.8" data-core-metadata="sha256=%s">alpha-1.0-py3-none-any.whl</a>
<a href="../../f/alpha-1.0.tar.gz#sha256=%s">alpha-1.0.tar.gz</a></body></html>`,
			u.sums["alpha-1.0-py3-none-any.whl"], u.sums["alpha-1.0-py3-none-any.whl.metadata"], u.sums["alpha-1.0.tar.gz"])
		return
	case "/simple/beta/", "/simple/gamma/":
		name := strings.Trim(strings.TrimPrefix(r.URL.Path, "/simple/"), "/")
		if !strings.Contains(r.Header.Get("Accept"), typeJSON) {
			http.Error(w, "JSON only here", http.StatusNotAcceptable)
			return
		}
		w.Header().Set("Content-Type", typeJSON)
		fn := name + "-2.0-py3-none-any.whl"
		json.NewEncoder(w).Encode(map[string]any{"meta": map[string]string{"api-version": "1.1"}, "name": name, "files": []map[string]any{
			{"filename": fn, "url": "/f/" + fn, "hashes": map[string]string{"sha256": u.sums[fn]}, "requires-python": ">=3.9", "yanked": false},
			{"filename": name + "-2.0-cp311-cp311-win_amd64.whl", "url": "/f/x.whl", "hashes": map[string]string{"sha256": strings.Repeat("0", 64)}},
		}})
		return
	}
	if b, ok := u.files[r.URL.Path]; ok {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
		return
	}
	http.NotFound(w, r)
}

func (u *upstream) add(name string, body []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.files["/f/"+name] = body
	u.sums[name] = sum(body)
}

func get(t *testing.T, h http.Handler, path, accept string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestSyncServeUpload(t *testing.T) {
	up := &upstream{files: map[string][]byte{}, sums: map[string]string{}}
	alpha := wheel(t, "alpha", "1.0")
	up.add("alpha-1.0-py3-none-any.whl", alpha)
	up.add("alpha-1.0-py3-none-any.whl.metadata", []byte("Metadata-Version: 2.1\nName: alpha\nVersion: 1.0\n"))
	up.add("alpha-1.0.tar.gz", []byte("an sdist"))
	up.add("beta-2.0-py3-none-any.whl", wheel(t, "beta", "2.0"))
	srv := httptest.NewServer(up)
	defer srv.Close()

	dir := t.TempDir()
	req := filepath.Join(dir, "req.txt")
	os.WriteFile(req, []byte("Alpha==1.0 --hash=sha256:"+sum(alpha)+"\nbeta==2.0\n"), 0o644)
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	cfg := DefaultConfig()
	cfg.Upstreams = []Upstream{{Name: "up", URL: srv.URL + "/simple/"}}
	cfg.Requirements = []string{req}
	cfg.PythonVersions, cfg.Platforms = []string{"3.11"}, []string{"manylinux_2_17_x86_64"}
	cfg.Users = []User{{Name: "ci", PasswordHash: string(hash)}}
	x, err := New(cfg, Deps{DataDir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	res, err := x.Sync(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// alpha's wheel (the requirement's hash keeps its sdist out, and
	// sdists: is off anyway) and its metadata, beta's py3 wheel.
	if res.Packages != 2 || res.Fetched != 3 {
		t.Fatalf("sync: %+v", res)
	}
	if l, err := x.Projects("ALP", 0, 10); err != nil || l.Total != 1 || len(l.Packages) != 1 || l.Packages[0].Name != "alpha" ||
		l.Packages[0].Files != 1 || l.Packages[0].Bytes != int64(len(alpha)) || fmt.Sprint(l.Packages[0].Versions) != "[1.0]" {
		t.Fatalf("Projects(ALP): %+v %v", l, err)
	}
	if l, _ := x.Projects("", 1, 10); l.Total != 2 || len(l.Packages) != 1 || l.Packages[0].Name != "beta" {
		t.Fatalf("Projects from 1: %+v", l)
	}
	first, _ := x.Store(TreeIndex).Current()
	if again, err := x.Sync(context.Background(), nil); err != nil || !again.UpToDate || again.Revision != res.Revision || again.Fetched != 0 {
		t.Fatalf("second sync: %+v %v", again, err)
	}
	if cur, _ := x.Store(TreeIndex).Current(); cur != first {
		t.Fatalf("an up-to-date sync published %s", cur)
	}
	h := x.Handler()
	if w := get(t, h, "/pypi/simple/Alpha/", ""); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/pypi/simple/alpha/" {
		t.Fatalf("non-normalised name: %d %v", w.Code, w.Header())
	}
	w := get(t, h, "/pypi/simple/alpha/", "text/html")
	page := w.Body.String()
	for _, want := range []string{"#sha256=" + sum(alpha), `data-requires-python="&gt;=3.8"`, `data-core-metadata="sha256=`, `data-dist-info-metadata="sha256=`} {
		if !strings.Contains(page, want) {
			t.Errorf("alpha's page lacks %s:\n%s", want, page)
		}
	}
	w = get(t, h, "/pypi/simple/beta/", typeJSON)
	if w.Header().Get("Content-Type") != typeJSON {
		t.Fatalf("JSON asked, got %q", w.Header().Get("Content-Type"))
	}
	var pj struct {
		Files []struct {
			URL            string            `json:"url"`
			Hashes         map[string]string `json:"hashes"`
			RequiresPython string            `json:"requires-python"`
		} `json:"files"`
		Versions []string `json:"versions"`
	}
	json.Unmarshal(w.Body.Bytes(), &pj)
	if len(pj.Files) != 1 || pj.Files[0].RequiresPython != ">=3.9" || pj.Versions[0] != "2.0" {
		t.Fatalf("beta's JSON page: %s", w.Body)
	}
	fileURL := "/pypi/simple/beta/" + pj.Files[0].URL
	if w := get(t, h, filepath.Clean(fileURL), ""); w.Code != http.StatusOK || sum(w.Body.Bytes()) != pj.Files[0].Hashes["sha256"] {
		t.Fatalf("GET %s: %d", fileURL, w.Code)
	}
	before, _ := x.Store(TreeIndex).Current()

	// A damaged file refuses the sync by name; the published tree stays.
	up.add("gamma-2.0-py3-none-any.whl", wheel(t, "gamma", "2.0"))
	up.mu.Lock()
	up.files["/f/gamma-2.0-py3-none-any.whl"] = []byte("damaged")
	up.mu.Unlock()
	os.WriteFile(req, []byte("alpha==1.0\nbeta==2.0\ngamma==2.0\n"), 0o644)
	_, err = x.Sync(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "gamma-2.0-py3-none-any.whl: damaged") || !strings.Contains(err.Error(), "nothing published") {
		t.Fatalf("damaged file: %v", err)
	}
	if after, _ := x.Store(TreeIndex).Current(); after != before {
		t.Fatalf("a refused sync published %s", after)
	}
	if w := get(t, h, "/pypi/simple/gamma/", ""); w.Code != http.StatusNotFound {
		t.Fatalf("gamma served after a refused sync: %d", w.Code)
	}

	// Upload: wrong password, then right, then other content again.
	delta := wheel(t, "delta", "0.1")
	for _, tc := range []struct {
		pass string
		body []byte
		want int
	}{{"wrong", delta, 401}, {"s3cret", delta, 200}, {"s3cret", delta, 200}, {"s3cret", wheel(t, "delta", "0.1.0"), 409}} {
		if w := upload(t, h, "ci", tc.pass, "delta", "0.1", "delta-0.1-py3-none-any.whl", tc.body); w.Code != tc.want {
			t.Fatalf("upload with %s: %d %s, want %d", tc.pass, w.Code, w.Body, tc.want)
		}
	}
	w = get(t, h, "/pypi/simple/", typeJSON)
	if !strings.Contains(w.Body.String(), `"delta"`) || !strings.Contains(w.Body.String(), `"alpha"`) {
		t.Fatalf("project list: %s", w.Body)
	}
	page = get(t, h, "/pypi/simple/delta/", "").Body.String()
	if !strings.Contains(page, "../../files/local/delta/delta-0.1-py3-none-any.whl#sha256="+sum(delta)) || !strings.Contains(page, "data-core-metadata") {
		t.Fatalf("delta's page: %s", page)
	}
	if w := get(t, h, "/pypi/files/local/delta/delta-0.1-py3-none-any.whl.metadata", ""); !strings.Contains(w.Body.String(), "Name: delta") {
		t.Fatalf("delta's metadata: %d %s", w.Code, w.Body)
	}
	if st := x.Status(); st.Summary != "3 projects, 3 files, last sync failed" {
		t.Fatalf("status: %q", st.Summary)
	}
}

func upload(t *testing.T, h http.Handler, user, pass, name, version, filename string, content []byte) *httptest.ResponseRecorder {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range map[string]string{":action": "file_upload", "name": name, "version": version, "sha256_digest": sum(content), "filetype": "bdist_wheel", "protocol_version": "1"} {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("content", filename)
	io.Copy(fw, bytes.NewReader(content))
	mw.Close()
	r := httptest.NewRequest(http.MethodPost, "/pypi/legacy/", &b)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	r.SetBasicAuth(user, pass)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct{ accept, want string }{
		{"", typeHTML},
		{"application/vnd.pypi.simple.v1+json", typeJSON},
		{"application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01", typeJSON},
		{"text/html, application/vnd.pypi.simple.v1+json;q=0.5", typeHTML},
		{"application/vnd.pypi.simple.latest+json", typeJSON},
		{"*/*", typeHTML},
		{"image/png", ""},
	} {
		r := httptest.NewRequest(http.MethodGet, "/pypi/simple/", nil)
		r.Header.Set("Accept", tc.accept)
		if got, _ := negotiate(r); got != tc.want {
			t.Errorf("Accept %q: got %q, want %q", tc.accept, got, tc.want)
		}
	}
}

// TestUpstreamFailoverAndAuth: a project the first upstream lacks comes
// from the next, with that upstream's credentials on its page and files.
func TestUpstreamFailoverAndAuth(t *testing.T) {
	empty := httptest.NewServer(http.NotFoundHandler())
	defer empty.Close()
	whl := wheel(t, "alpha", "1.0")
	var mu sync.Mutex
	var unauthorized int
	private := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "bot" || p != "pw" {
			mu.Lock()
			unauthorized++
			mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/simple/alpha/":
			fmt.Fprintf(w, `<a href="/f/alpha-1.0-py3-none-any.whl#sha256=%s">alpha-1.0-py3-none-any.whl</a>`, sum(whl))
		case "/f/alpha-1.0-py3-none-any.whl":
			w.Write(whl)
		default:
			http.NotFound(w, r)
		}
	}))
	defer private.Close()
	cfg := DefaultConfig()
	cfg.Upstreams = []Upstream{{Name: "empty", URL: empty.URL + "/simple"}, {Name: "private", URL: private.URL + "/simple/", Username: "bot", Password: "pw"}}
	cfg.Packages = []string{"alpha"}
	x, err := New(cfg, Deps{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := x.Sync(context.Background(), nil)
	if err != nil || res.Packages != 1 || unauthorized != 0 {
		t.Fatalf("sync: %+v %v (%d unauthorized requests)", res, err, unauthorized)
	}
	if st := x.Status(); st.Trees[0].Upstream != "private" {
		t.Fatalf("upstream recorded: %q", st.Trees[0].Upstream)
	}
}
