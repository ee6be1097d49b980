package registry

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// sha512Push is one request of a push by sha512 digests and what it must
// answer.
type sha512Push struct {
	method, path string
	body         []byte
	contentType  string
	status       int
	digest       string // Docker-Content-Digest expected ("" = not checked)
}

func sha512Of(b []byte) string {
	s := sha512.Sum512(b)
	return "sha512:" + hex.EncodeToString(s[:])
}

// send makes one request as admin and checks its status and digest
// header; it returns the Location header.
func (tr *testRegistry) send(t *testing.T, p sha512Push) string {
	t.Helper()
	req, err := http.NewRequest(p.method, tr.srv.URL+p.path, bytes.NewReader(p.body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", "s3cret")
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	if p.contentType != "" {
		req.Header.Set("Content-Type", p.contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != p.status {
		t.Fatalf("%s %s: %d, want %d: %s", p.method, p.path, resp.StatusCode, p.status, body)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); p.digest != "" && got != p.digest {
		t.Fatalf("%s %s: Docker-Content-Digest %s, want %s", p.method, p.path, got, p.digest)
	}
	return resp.Header.Get("Location")
}

// pushBlob512 uploads b into repo by POST then PUT ?digest=sha512:….
func (tr *testRegistry) pushBlob512(t *testing.T, repo string, b []byte) string {
	t.Helper()
	d := sha512Of(b)
	loc := tr.send(t, sha512Push{method: http.MethodPost, path: "/v2/" + repo + "/blobs/uploads/", status: http.StatusAccepted})
	sep := "?"
	if bytes.ContainsRune([]byte(loc), '?') {
		sep = "&"
	}
	got := tr.send(t, sha512Push{method: http.MethodPut, path: loc + sep + "digest=" + d, body: b,
		contentType: "application/octet-stream", status: http.StatusCreated, digest: d})
	if want := "/v2/" + repo + "/blobs/" + d; got != want {
		t.Fatalf("upload Location %s, want %s", got, want)
	}
	return d
}

// TestSHA512EndToEnd pushes an image whose blobs and manifest are all
// addressed by sha512, mounts a blob by sha512, and checks every answer
// names the client's digest, the image survives a garbage collection, and
// a mismatched manifest digest is refused.
func TestSHA512EndToEnd(t *testing.T) {
	tr := newTestRegistry(t, testConfig("127.0.0.1/32"))
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := bytes.Repeat([]byte("sha512 layer "), 1000)
	configDigest := tr.pushBlob512(t, "lab/five12", config)
	layerDigest := tr.pushBlob512(t, "lab/five12", layer)
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		configDigest, len(config), layerDigest, len(layer)))
	md := sha512Of(manifest)
	const mt = "application/vnd.oci.image.manifest.v1+json"

	loc := tr.send(t, sha512Push{method: http.MethodPut, path: "/v2/lab/five12/manifests/" + md, body: manifest,
		contentType: mt, status: http.StatusCreated, digest: md})
	if want := "/v2/lab/five12/manifests/" + md; loc != want {
		t.Errorf("manifest Location %s, want %s", loc, want)
	}
	wrong := append(append([]byte(nil), manifest...), ' ')
	tr.send(t, sha512Push{method: http.MethodPut, path: "/v2/lab/five12/manifests/" + md, body: wrong,
		contentType: mt, status: http.StatusBadRequest})

	mount := "/v2/lab/other/blobs/uploads/?from=lab/five12&mount=" + layerDigest
	tr.send(t, sha512Push{method: http.MethodPost, path: mount, status: http.StatusCreated, digest: layerDigest})

	if res, err := tr.GC(context.Background(), false); err != nil || len(res.Blobs) != 0 || len(res.Kept) != 0 {
		t.Fatalf("GC removed %v, kept for pushes %v (%v); every blob is in use, no push runs", res.Blobs, res.Kept, err)
	}
	for _, p := range []sha512Push{
		{method: http.MethodGet, path: "/v2/lab/five12/manifests/" + md, status: http.StatusOK, digest: md},
		{method: http.MethodHead, path: "/v2/lab/five12/manifests/" + md, status: http.StatusOK, digest: md},
		{method: http.MethodGet, path: "/v2/lab/five12/blobs/" + configDigest, status: http.StatusOK, digest: configDigest},
		{method: http.MethodHead, path: "/v2/lab/five12/blobs/" + layerDigest, status: http.StatusOK, digest: layerDigest},
		{method: http.MethodGet, path: "/v2/lab/five12/blobs/" + layerDigest, status: http.StatusOK, digest: layerDigest},
		{method: http.MethodGet, path: "/v2/lab/other/blobs/" + layerDigest, status: http.StatusOK, digest: layerDigest},
	} {
		t.Run(p.method+" "+p.path[len("/v2/"):len("/v2/")+30], func(t *testing.T) { tr.send(t, p) })
	}
}

// TestReferrersTagSchema: the tag a subject's referrers are kept under, as
// the referrers tag schema cuts it.
func TestReferrersTagSchema(t *testing.T) {
	sha512Hex := strings.Repeat("ab", 64)
	for _, c := range []struct{ subject, want string }{
		{"sha256:" + strings.Repeat("0f", 32), "sha256-" + strings.Repeat("0f", 32)},
		{"sha512:" + sha512Hex, "sha512-" + sha512Hex[:64]},
	} {
		if got := referrersTag(digest.Digest(c.subject)); got != c.want {
			t.Errorf("referrersTag(%s) = %s, want %s", c.subject, got, c.want)
		}
	}
}

// TestPushWithTags: a manifest PUT by digest with ?tag= (how regctl tags
// what it pushes by sha512) is stored, tagged with every tag and answered
// with OCI-Tag naming them; a bad tag is refused before anything is stored.
func TestPushWithTags(t *testing.T) {
	tr := newTestRegistry(t, testConfig("127.0.0.1/32"))
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	cd := tr.pushBlob512(t, "lab/tagged", config)
	const mt = "application/vnd.oci.image.manifest.v1+json"
	manifest := func(note string) []byte {
		return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[],"annotations":{"n":%q}}`,
			mt, cd, len(config), note))
	}
	put := func(ref, query string, body []byte) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPut, tr.srv.URL+"/v2/lab/tagged/manifests/"+ref+query, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("admin", "s3cret")
		req.Header.Set("Content-Type", mt)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, c := range []struct {
		name, ref, query string
		body             []byte
		status           int
		tags             []string // want OCI-Tag and each tag to resolve to the body
	}{
		{"sha512, two tags", sha512Of(manifest("a")), "?tag=v1&tag=v2", manifest("a"), http.StatusCreated, []string{"v1", "v2"}},
		{"sha256, one tag", digest.FromBytes(manifest("b")).String(), "?tag=v3", manifest("b"), http.StatusCreated, []string{"v3"}},
		{"bad tag", sha512Of(manifest("c")), "?tag=-no", manifest("c"), http.StatusBadRequest, nil},
		{"tag param on a tag", "v4", "?tag=v5", manifest("d"), http.StatusBadRequest, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := put(c.ref, c.query, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("PUT %s%s: %d, want %d", c.ref, c.query, resp.StatusCode, c.status)
			}
			if got, want := resp.Header.Get("OCI-Tag"), strings.Join(c.tags, ","); got != want {
				t.Errorf("OCI-Tag %q, want %q", got, want)
			}
			if c.status == http.StatusCreated && resp.Header.Get("Docker-Content-Digest") != c.ref {
				t.Errorf("Docker-Content-Digest %s, want %s", resp.Header.Get("Docker-Content-Digest"), c.ref)
			}
			for _, tag := range c.tags {
				tr.send(t, sha512Push{method: http.MethodGet, path: "/v2/lab/tagged/manifests/" + tag, status: http.StatusOK,
					digest: digest.FromBytes(c.body).String()})
			}
		})
	}
	tr.send(t, sha512Push{method: http.MethodGet, path: "/v2/lab/tagged/manifests/" + sha512Of(manifest("c")), status: http.StatusNotFound})
}
