package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/airgapd/airgapd/internal/atomicfile"
	"github.com/airgapd/airgapd/registry"
)

// haListLimit bounds listing a registry's storage for one round.
const haListLimit = 30 * time.Second

// haManifestAccept is every manifest type the copy asks for.
var haManifestAccept = strings.Join([]string{
	string(types.OCIImageIndex), string(types.OCIManifestSchema1),
	string(types.DockerManifestList), string(types.DockerManifestSchema2),
}, ", ")

// imageCopy fetches manifests and blobs from the primary's /v2/ into an
// OCI layout, which the registry's import stores.
type imageCopy struct {
	reg     *registry.Registry
	hc      *http.Client
	base    string // scheme://host:port of the primary's registry
	dataDir string
}

// copyManifest stores repo@d as the primary has it: an index with the
// children the primary holds (the others answer 404 here as there), an
// image only when the primary holds every blob of it. It reports whether
// it stored anything.
func (c imageCopy) copyManifest(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	dir, err := os.MkdirTemp(c.dataDir, "ha-image-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	desc, complete, err := c.fetchTree(ctx, dir, repo, d, 0)
	if err != nil || desc == nil || (!complete && desc.MediaType.IsImage()) {
		return false, err
	}
	desc.Annotations = map[string]string{"org.opencontainers.image.ref.name": repo + "@" + d.String()}
	index, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{*desc}})
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return false, err
	}
	if _, err := c.reg.Import(ctx, dir, registry.ImportOptions{}); err != nil {
		return false, err
	}
	return true, nil
}

// fetchTree writes manifest d and what it references into the layout at
// dir. It returns nil when the primary does not hold d, and whether it
// holds everything below d. Blobs this host stores already are left to
// the import, which takes them from storage.
func (c imageCopy) fetchTree(ctx context.Context, dir, repo string, d digest.Digest, depth int) (*v1.Descriptor, bool, error) {
	if depth > 4 {
		return nil, false, fmt.Errorf("manifest %s: indexes nested too deep", d)
	}
	raw, mt, err := c.get(ctx, dir, repo, "manifests", d, haManifestAccept)
	if err != nil || raw == nil {
		return nil, false, err
	}
	h, err := v1.NewHash(d.String())
	if err != nil {
		return nil, false, err
	}
	desc := &v1.Descriptor{MediaType: types.MediaType(mt), Digest: h, Size: int64(len(raw))}
	complete := true
	switch {
	case desc.MediaType.IsIndex():
		im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, false, fmt.Errorf("index %s: %w", d, err)
		}
		for _, m := range im.Manifests {
			child, whole, err := c.fetchTree(ctx, dir, repo, digest.Digest(m.Digest.String()), depth+1)
			if err != nil {
				return nil, false, err
			}
			complete = complete && child != nil && whole
		}
	case desc.MediaType.IsImage():
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, false, fmt.Errorf("manifest %s: %w", d, err)
		}
		for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			bd := digest.Digest(b.Digest.String())
			if missing, err := c.reg.MissingBlobs(ctx, []string{bd.String()}); err == nil && len(missing) == 0 {
				continue
			}
			got, _, err := c.get(ctx, dir, repo, "blobs", bd, "*/*")
			if err != nil {
				return nil, false, err
			}
			complete = complete && got != nil
		}
	default:
		return nil, false, fmt.Errorf("manifest %s: media type %q is neither an image nor an index", d, mt)
	}
	return desc, complete, nil
}

// get fetches /v2/REPO/KIND/D from the primary's store only, checks its
// digest and writes it into the layout. A manifest's bytes and type are
// returned; a blob's bytes are not read back (a non-nil empty slice says
// it was written). nil: the primary does not hold it.
func (c imageCopy) get(ctx context.Context, dir, repo, kind string, d digest.Digest, accept string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v2/"+repo+"/"+kind+"/"+d.String(), nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("Cache-Control", "only-if-cached")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, "", nil
	case resp.StatusCode != http.StatusOK:
		return nil, "", fmt.Errorf("the primary answered %s for %s %s", resp.Status, kind, d)
	}
	path := filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, "", err
	}
	var body bytes.Buffer
	err = atomicfile.WriteWith(path, 0o644, func(w io.Writer) error {
		v := d.Verifier()
		out := io.MultiWriter(w, v)
		if kind == "manifests" {
			out = io.MultiWriter(out, &body)
		}
		if _, err := io.Copy(out, resp.Body); err != nil {
			return err
		}
		if !v.Verified() {
			return errors.New("the bytes do not match the digest")
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("%s %s from the primary: %w", kind, d, err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return append([]byte{}, body.Bytes()...), mt, nil
}
