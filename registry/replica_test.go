package registry

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
)

// What an HA standby relies on: only-if-cached never reaches the upstream,
// Stored lists pulled-through content with its pins, SetTag and
// DeleteManifest change the store as the primary's did.
func TestStoredAndOnlyIfCached(t *testing.T) {
	ctx := context.Background()
	a, _, _ := images(t)
	up := newTestRegistry(t, testConfig("127.0.0.0/8"))
	if err := remote.Write(up.ref(t, "lib/app:v1"), a, remote.WithAuth(pusher)); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("127.0.0.0/8")
	cfg.Mirrors = []Mirror{{Name: "up.test", URL: up.srv.URL}}
	tr := newTestRegistry(t, cfg)
	d, err := a.Digest()
	if err != nil {
		t.Fatal(err)
	}
	get := func(cacheOnly bool) int {
		req, _ := http.NewRequest(http.MethodGet, tr.srv.URL+"/v2/up.test/lib/app/manifests/v1", nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
		if cacheOnly {
			req.Header.Set("Cache-Control", "max-age=0, only-if-cached")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	steps := []struct {
		what      string
		cacheOnly bool
		code      int
		tags      int
		pinned    bool
	}{
		{"only-if-cached before any pull: 404, where a pull-through would have fetched it", true, http.StatusNotFound, 0, false},
		{"a pull through stores the tag, unpinned", false, http.StatusOK, 1, false},
		{"only-if-cached after it: served from the store", true, http.StatusOK, 1, false},
	}
	for _, s := range steps {
		if got := get(s.cacheOnly); got != s.code {
			t.Errorf("%s: HTTP %d, want %d", s.what, got, s.code)
		}
		st, err := tr.Stored(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tag, ok := st.Tags["up.test/lib/app:v1"]
		if len(st.Tags) != s.tags || (ok && (tag.Digest != d.String() || tag.Pinned != s.pinned)) {
			t.Errorf("%s: Stored tags %+v", s.what, st.Tags)
		}
	}
	if err := tr.SetTag(ctx, "up.test/lib/app", "pinned", digest.Digest(d.String()), true); err != nil {
		t.Fatal(err)
	}
	st, _ := tr.Stored(ctx)
	if got := st.Tags["up.test/lib/app:pinned"]; !got.Pinned || got.Digest != d.String() || len(st.Manifests["up.test/lib/app"]) != 1 {
		t.Errorf("after SetTag: %+v", st)
	}
	if err := tr.DeleteManifest(ctx, "up.test/lib/app", digest.Digest(d.String())); err != nil {
		t.Fatal(err)
	}
	st, _ = tr.Stored(ctx)
	if len(st.Tags) != 0 || len(st.Manifests) != 0 || tr.pinned(ctx, "up.test/lib/app", "pinned") {
		t.Errorf("after DeleteManifest: %+v (pin left: %v)", st, tr.pinned(ctx, "up.test/lib/app", "pinned"))
	}
}
