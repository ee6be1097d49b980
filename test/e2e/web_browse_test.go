package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWebBrowse: the DNS page searches the local records; the Registry
// page searches repositories and tags, and a repository's page shows each
// tag's digest (the one skopeo sees) with a ready pull command; a mirror
// repo's page lists its packages from its repodata, with a search.
func TestWebBrowse(t *testing.T) {
	need(t, "skopeo")
	u := newRPMUpstream(t)
	u.add("browsepkg", 4096)
	u.index()
	cfg := strings.Replace(webMirrorConfig(u.url()), "  pull_from: [127.0.0.0/8]\n", "  pull_from: [127.0.0.0/8]\n  users: [{name: admin, password_hash: \""+registryTestHash+"\"}]\n", 1)
	ws := startWebServerConfig(t, cfg)
	c := ws.login(t)

	// DNS record search.
	_, body, _ := ws.do(t, c, "GET", "/dns?rq=cname", "", nil)
	if !strings.Contains(body, "registry CNAME admin") || strings.Contains(body, "admin 300 A 127.0.0.1</summary>") {
		t.Errorf("record search for cname: want only the CNAME\n%s", body)
	}

	// Registry: push one image, search, see its digest.
	host := strings.TrimPrefix(ws.status().listener("registry"), "http://")
	dir := t.TempDir()
	lay := writeLayout(t, filepath.Join(dir, "layout"), ociImage(t, nil, 8<<10), "v1")
	skopeo := func(args ...string) string {
		cmd := exec.Command("skopeo", args...)
		cmd.Env = append(os.Environ(), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "admin:s3cret", "oci:"+lay+":v1", "docker://"+host+"/lab/browse:v1")
	var insp struct{ Digest string }
	json.Unmarshal([]byte(skopeo("inspect", "--tls-verify=false", "docker://"+host+"/lab/browse:v1")), &insp)
	if insp.Digest == "" {
		t.Fatal("skopeo inspect gave no digest")
	}
	var page string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if _, page, _ = ws.do(t, c, "GET", "/registry?q=brow", "", nil); strings.Contains(page, "lab/browse") {
			break
		}
	}
	if !strings.Contains(page, `href="/registry/repo?name=lab%2fbrowse"`) {
		t.Fatalf("registry search for brow: no lab/browse\n%s", page)
	}
	if _, page, _ = ws.do(t, c, "GET", "/registry?q=nothing-like-it", "", nil); !strings.Contains(page, "no repository or tag matches") || strings.Contains(page, "lab/browse") {
		t.Errorf("registry search with no match:\n%s", page)
	}
	code, page, _ := ws.do(t, c, "GET", "/registry/repo?name=lab/browse", "", nil)
	if code != 200 || !strings.Contains(page, insp.Digest) || !strings.Contains(page, "crictl pull "+host+"/lab/browse@"+insp.Digest) {
		t.Errorf("repository page: %d, want digest %s and its pull command\n%s", code, insp.Digest, page)
	}

	// Mirror: sync, then the repo's package list.
	if code, body, _ := ws.do(t, c, "POST", "/api/v1/mirror/sync?repo=upstream", "", nil); code != 200 || !strings.Contains(body, `"done": true`) && !strings.Contains(body, `"done":true`) {
		t.Fatalf("sync: %d %s", code, body)
	}
	code, page, _ = ws.do(t, c, "GET", "/mirror/repo?name=upstream", "", nil)
	if code != 200 || !strings.Contains(page, ">browsepkg</a>") || !strings.Contains(page, "1 package") {
		t.Errorf("package list: %d\n%s", code, page)
	}
	if _, page, _ = ws.do(t, c, "GET", "/mirror/repo?name=upstream&q=zzz", "", nil); !strings.Contains(page, "no packages match") {
		t.Errorf("package search with no match:\n%s", page)
	}
	if code, _, _ := ws.do(t, c, "GET", "/mirror/repo?name=nope", "", nil); code != 404 {
		t.Errorf("unknown repo page = %d, want 404", code)
	}
}
