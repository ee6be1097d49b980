package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// TestReferrersAPI pushes an image and two artifacts whose subject is the
// image, as oras or cosign would, then reads them back through the
// referrers API, filtered and not, and through the referrers tag that
// tag-schema clients read.
func TestReferrersAPI(t *testing.T) {
	tr := newTestRegistry(t, testConfig("127.0.0.0/8"))
	img, _, _ := images(t)
	if err := remote.Write(tr.ref(t, "lab/app:v1"), img, remote.WithAuth(pusher)); err != nil {
		t.Fatal(err)
	}
	subject := digestOf(t, img)
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	subjectDesc := v1.Descriptor{MediaType: mt, Digest: subject, Size: int64(len(raw))}
	const sigType, sbomType = "application/vnd.dev.cosign.artifact.sig.v1+json", "application/spdx+json"
	artifacts := map[string]v1.Hash{}
	for _, artifactType := range []string{sigType, sbomType} {
		a, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		a = mutate.MediaType(a, types.OCIManifestSchema1)
		a = mutate.ConfigMediaType(a, types.MediaType(artifactType))
		a = mutate.Subject(a, subjectDesc).(v1.Image)
		d := digestOf(t, a)
		// By digest, as referrers are pushed: no tag of their own.
		if err := remote.Write(tr.ref(t, "lab/app@"+d.String()), a, remote.WithAuth(pusher)); err != nil {
			t.Fatal(err)
		}
		artifacts[artifactType] = d
	}
	// A second push of the same artifact lists it once.
	if err := remote.Write(tr.ref(t, "lab/app:again"), mustImage(t, tr, "lab/app@"+artifacts[sigType].String()), remote.WithAuth(pusher)); err != nil {
		t.Fatal(err)
	}

	// The registry says it listed the referrer, so clients leave the list
	// to it (the spec's OCI-Subject).
	rawSBOM, err := mustImage(t, tr, "lab/app@"+artifacts[sbomType].String()).RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	put, err := http.NewRequest(http.MethodPut, tr.srv.URL+"/v2/lab/app/manifests/sbom", bytes.NewReader(rawSBOM))
	if err != nil {
		t.Fatal(err)
	}
	put.Header.Set("Content-Type", string(types.OCIManifestSchema1))
	put.SetBasicAuth("admin", "s3cret")
	resp, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("OCI-Subject") != subject.String() {
		t.Errorf("PUT of a manifest with a subject: %s, OCI-Subject %q; want 201 and %s", resp.Status, resp.Header.Get("OCI-Subject"), subject)
	}

	base := tr.srv.URL + "/v2/lab/app/referrers/"
	for _, tc := range []struct {
		name, url string
		code      int
		want      []v1.Hash
	}{
		{"all", base + subject.String(), http.StatusOK, []v1.Hash{artifacts[sigType], artifacts[sbomType]}},
		{"filtered", base + subject.String() + "?artifactType=application/spdx%2Bjson", http.StatusOK, []v1.Hash{artifacts[sbomType]}},
		{"nothing refers", base + "sha256:" + "0000000000000000000000000000000000000000000000000000000000000000", http.StatusOK, nil},
		{"unknown repository", tr.srv.URL + "/v2/lab/none/referrers/" + subject.String(), http.StatusOK, nil},
		{"not a digest", base + "latest", http.StatusBadRequest, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := getBody(t, tc.url)
			if code != tc.code {
				t.Fatalf("GET %s: %d, want %d\n%s", tc.url, code, tc.code, body)
			}
			if code != http.StatusOK {
				return
			}
			var idx v1.IndexManifest
			if err := json.Unmarshal([]byte(body), &idx); err != nil {
				t.Fatalf("not an index: %v\n%s", err, body)
			}
			if idx.MediaType != types.OCIImageIndex || idx.SchemaVersion != 2 {
				t.Errorf("index media type %q, schema %d", idx.MediaType, idx.SchemaVersion)
			}
			var got []v1.Hash
			for _, d := range idx.Manifests {
				got = append(got, d.Digest)
				if d.ArtifactType == "" || d.Size == 0 || d.MediaType == "" {
					t.Errorf("referrer entry lacks fields: %+v", d)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("referrers %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("referrers %v, want %v", got, tc.want)
				}
			}
		})
	}

	// A tag-schema client reads the same list under sha256-HEX.
	fallback, err := remote.Index(tr.ref(t, "lab/app:sha256-"+subject.Hex))
	if err != nil {
		t.Fatalf("the referrers tag: %v", err)
	}
	im, err := fallback.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Errorf("referrers tag lists %d manifests, want 2", len(im.Manifests))
	}
	// go-containerregistry asks the API.
	refs, err := remote.Referrers(tr.ref(t, "lab/app@"+subject.String()).Context().Digest(subject.String()))
	if err != nil {
		t.Fatal(err)
	}
	if im, err := refs.IndexManifest(); err != nil || len(im.Manifests) != 2 {
		t.Errorf("remote.Referrers: %v, %v; want 2 referrers", im, err)
	}

	// A deleted referrer leaves the list; the last one takes the tag along.
	for i, gone := range []string{sbomType, sigType} {
		if err := remote.Delete(tr.ref(t, "lab/app@"+artifacts[gone].String()), remote.WithAuth(pusher)); err != nil {
			t.Fatal(err)
		}
		_, body := getBody(t, base+subject.String())
		var idx v1.IndexManifest
		if err := json.Unmarshal([]byte(body), &idx); err != nil {
			t.Fatal(err)
		}
		if len(idx.Manifests) != 1-i {
			t.Errorf("after deleting %s: referrers %s", gone, body)
		}
	}
	if _, err := remote.Index(tr.ref(t, "lab/app:sha256-"+subject.Hex)); err == nil {
		t.Errorf("the referrers tag outlived its last referrer")
	}
	if _, err := tr.GC(context.Background(), false); err != nil {
		t.Errorf("GC after the referrers went: %v", err)
	}
	if _, err := remote.Image(tr.ref(t, "lab/app:v1")); err != nil {
		t.Errorf("the subject after GC: %v", err)
	}
}

func mustImage(t *testing.T, tr *testRegistry, ref string) v1.Image {
	t.Helper()
	img, err := remote.Image(tr.ref(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestImportListsReferrers: an imported referrer is listed under its
// subject, and an import run again after the listing was lost (a kill
// between storing the manifest and listing it) lists it again.
func TestImportListsReferrers(t *testing.T) {
	img, _, _ := images(t)
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	subject := digestOf(t, img)
	art, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	art = mutate.MediaType(art, types.OCIManifestSchema1)
	art = mutate.ConfigMediaType(art, "application/spdx+json")
	art = mutate.Subject(art, v1.Descriptor{MediaType: mt, Digest: subject, Size: int64(len(raw))}).(v1.Image)

	dir := t.TempDir()
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{annotationContainerdName: "registry.k8s.io/lab/app:v1"})); err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(art, layout.WithAnnotations(map[string]string{annotationContainerdName: "registry.k8s.io/lab/app@" + digestOf(t, art).String()})); err != nil {
		t.Fatal(err)
	}
	ociTar := filepath.Join(dir, "oci.tar")
	tarDir(t, filepath.Join(dir, "layout"), ociTar)

	tr := newTestRegistry(t, testConfig("127.0.0.0/8"))
	ctx := context.Background()
	listed := func() int {
		t.Helper()
		code, body := getBody(t, tr.srv.URL+"/v2/registry.k8s.io/lab/app/referrers/"+subject.String())
		var idx v1.IndexManifest
		if err := json.Unmarshal([]byte(body), &idx); code != http.StatusOK || err != nil {
			t.Fatalf("referrers: %d %v\n%s", code, err, body)
		}
		return len(idx.Manifests)
	}
	if _, err := tr.Import(ctx, ociTar, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := listed(); n != 1 {
		t.Fatalf("after import: %d referrers, want 1", n)
	}
	if err := tr.removeReferrer(ctx, "registry.k8s.io/lab/app", digest.Digest(subject.String()), digest.Digest(digestOf(t, art).String())); err != nil {
		t.Fatal(err)
	}
	if n := listed(); n != 0 {
		t.Fatalf("after unlisting: %d referrers", n)
	}
	if _, err := tr.Import(ctx, ociTar, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := listed(); n != 1 {
		t.Errorf("after importing again: %d referrers, want 1", n)
	}
}
