package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestChartArtifacts: what mirror/charts does with the registry — push a
// helm artifact, list the charts/ tags, read its manifest and blobs back —
// with Changes moving on each push and delete.
func TestChartArtifacts(t *testing.T) {
	tr := newTestRegistry(t, testConfig("127.0.0.1/32"))
	ctx := context.Background()
	config := []byte(`{"name":"demo","version":"0.1.0","apiVersion":"v2"}`)
	tgz := []byte("not really a tgz, the registry does not care")
	desc := func(mt string, b []byte) string {
		return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, mt, digest.FromBytes(b), len(b))
	}
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":` +
		desc("application/vnd.cncf.helm.config.v1+json", config) + `,"layers":[` +
		desc("application/vnd.cncf.helm.chart.content.v1.tar+gzip", tgz) + `]}`)
	before := tr.Changes()
	d, err := tr.PushManifest(ctx, "charts/demo", "0.1.0", "application/vnd.oci.image.manifest.v1+json", manifest, [][]byte{config, tgz})
	if err != nil {
		t.Fatal(err)
	}
	if d != digest.FromBytes(manifest).String() {
		t.Errorf("PushManifest = %s, want %s", d, digest.FromBytes(manifest))
	}
	if tr.Changes() == before {
		t.Error("Changes did not move on a push")
	}
	if _, err := tr.PushManifest(ctx, "lab/other", "v1", "application/vnd.oci.image.manifest.v1+json", manifest, [][]byte{config, tgz}); err != nil {
		t.Fatal(err)
	}
	tags, err := tr.TagDigests(ctx, "charts/")
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 1 || tags["charts/demo"]["0.1.0"] != d {
		t.Fatalf("TagDigests = %v", tags)
	}
	m, err := tr.ReadManifest(ctx, "charts/demo", d)
	if err != nil || string(m) != string(manifest) {
		t.Fatalf("ReadManifest = %s, %v", m, err)
	}
	var parsed struct{ Layers []struct{ Digest string } }
	json.Unmarshal(m, &parsed)
	rc, err := tr.OpenBlob(ctx, "charts/demo", parsed.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != string(tgz) {
		t.Errorf("OpenBlob = %q", b)
	}
	if _, err := tr.PushManifest(ctx, "charts/demo", "0.1.0+x", "application/vnd.oci.image.manifest.v1+json", manifest, nil); err == nil {
		t.Error("a tag with '+' was accepted")
	}
	ch := tr.Changes()
	if err := tr.DeleteTag(ctx, "charts/demo", "0.1.0"); err != nil {
		t.Fatal(err)
	}
	if tr.Changes() == ch {
		t.Error("Changes did not move on a delete")
	}
	if tags, _ := tr.TagDigests(ctx, "charts/"); len(tags) != 0 {
		t.Errorf("after the delete TagDigests = %v", tags)
	}
}
