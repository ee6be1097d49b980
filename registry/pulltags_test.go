package registry

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestPullTags: a mirrored repository lists the upstream's tags and the
// store's own, paged by n and last; with the upstream gone, the store's.
func TestPullTags(t *testing.T) {
	a, b, _ := images(t)
	up := newTestRegistry(t, testConfig("127.0.0.0/8"))
	for _, tag := range []string{"v1", "v3"} {
		if err := remote.Write(up.ref(t, "library/app:"+tag), a, remote.WithAuth(pusher)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig("127.0.0.0/8")
	cfg.Mirrors = []Mirror{{Name: "docker.io", URL: up.srv.URL}}
	tr := newTestRegistry(t, cfg)
	// Pushed under the upstream's name: the store's own tag.
	if err := remote.Write(tr.ref(t, "docker.io/library/app:v2"), b, remote.WithAuth(pusher)); err != nil {
		t.Fatal(err)
	}
	list := func(query string) ([]string, string) {
		t.Helper()
		resp, err := http.Get(tr.srv.URL + "/v2/docker.io/library/app/tags/list" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Tags []string }
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
			t.Fatalf("tags/list%s: %s", query, resp.Status)
		}
		return body.Tags, resp.Header.Get("Link")
	}
	for _, c := range []struct {
		query, link string
		want        []string
	}{
		{"", "", []string{"v1", "v2", "v3"}},
		{"?n=2", `</v2/docker.io/library/app/tags/list?last=v2&n=2>; rel="next"`, []string{"v1", "v2"}},
		{"?n=2&last=v2", "", []string{"v3"}},
		{"?last=v1", "", []string{"v2", "v3"}},
		{"?n=0", "", []string{}},
	} {
		if got, link := list(c.query); !slices.Equal(got, c.want) || link != c.link {
			t.Errorf("tags/list%s: %q (Link %q), want %q (Link %q)", c.query, got, link, c.want, c.link)
		}
	}
	up.srv.Close()
	if got, _ := list(""); !slices.Equal(got, []string{"v2"}) {
		t.Errorf("upstream gone: %q, want the store's [v2]", got)
	}
}
