package charts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of a chart stored as an OCI artifact, as helm push writes it.
const (
	ConfigMediaType = "application/vnd.cncf.helm.config.v1+json"
	ChartMediaType  = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	// Prefix is the registry namespace charts live in: chart NAME is the
	// repository charts/NAME, each version a tag.
	Prefix = "charts/"
)

// ChartStore is what this package needs of the registry the charts live
// in; server hands it the registry's methods (registry/charts.go).
type ChartStore interface {
	// Changes moves whenever the store's content may have changed (a
	// push, a delete, a collection).
	Changes() uint64
	// TagDigests lists the repositories whose name starts with prefix,
	// each with its tags and the manifest digest each tag points at.
	TagDigests(ctx context.Context, prefix string) (map[string]map[string]string, error)
	// ReadManifest returns the manifest repo@digest as stored.
	ReadManifest(ctx context.Context, repo, digest string) ([]byte, error)
	// OpenBlob opens a blob repo links.
	OpenBlob(ctx context.Context, repo, digest string) (io.ReadSeekCloser, error)
	// PushManifest stores blobs, then manifest (of mediaType) under tag,
	// and returns the manifest's digest.
	PushManifest(ctx context.Context, repo, tag, mediaType string, manifest []byte, blobs [][]byte) (string, error)
}

// chartManifest builds what helm push stores for the chart tgz with
// metadata md: a config blob (Chart.yaml as JSON), the chart layer and an
// OCI image manifest naming both. created goes into the manifest's
// annotations.
func chartManifest(md Metadata, tgz []byte, created time.Time) (manifest, config []byte, err error) {
	config, err = json.Marshal(md)
	if err != nil {
		return nil, nil, err
	}
	ann := map[string]string{
		ocispec.AnnotationTitle:   md.Name,
		ocispec.AnnotationVersion: md.Version,
		ocispec.AnnotationCreated: created.UTC().Format(time.RFC3339),
	}
	if md.Description != "" {
		ann[ocispec.AnnotationDescription] = md.Description
	}
	m := ocispec.Manifest{
		MediaType:   ocispec.MediaTypeImageManifest,
		Config:      ocispec.Descriptor{MediaType: ConfigMediaType, Digest: sha256Digest(config), Size: int64(len(config))},
		Layers:      []ocispec.Descriptor{{MediaType: ChartMediaType, Digest: sha256Digest(tgz), Size: int64(len(tgz))}},
		Annotations: ann,
	}
	m.SchemaVersion = 2
	manifest, err = json.Marshal(m)
	return manifest, config, err
}

func sha256Digest(b []byte) digest.Digest { return digest.FromBytes(b) }

// tagFor is the tag a chart version is stored under: OCI tags cannot hold
// '+', so helm writes '_' for it.
func tagFor(version string) string { return strings.ReplaceAll(version, "+", "_") }

// stored is one chart version read from the store.
type stored struct {
	repo     string
	manifest string // digest
	layer    string // the chart .tgz's digest, sha256:…
	size     int64
	created  time.Time
	md       Metadata
}

// readStored reads repo@manifest: a chart only when its config is helm's.
func readStored(ctx context.Context, st ChartStore, repo, manifest string) (*stored, error) {
	b, err := st.ReadManifest(ctx, repo, manifest)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s@%s: %w", repo, manifest, err)
	}
	if m.Config.MediaType != ConfigMediaType {
		return nil, nil // not a chart (an image pushed under charts/)
	}
	var layer *ocispec.Descriptor
	for i, l := range m.Layers {
		if l.MediaType == ChartMediaType {
			layer = &m.Layers[i]
		}
	}
	if layer == nil {
		return nil, fmt.Errorf("%s@%s has a helm config but no chart layer", repo, manifest)
	}
	rc, err := st.OpenBlob(ctx, repo, m.Config.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("config of %s@%s: %w", repo, manifest, err)
	}
	defer rc.Close()
	cb, err := io.ReadAll(io.LimitReader(rc, maxChartFile))
	if err != nil {
		return nil, err
	}
	s := &stored{repo: repo, manifest: manifest, layer: layer.Digest.String(), size: layer.Size}
	if err := json.Unmarshal(cb, &s.md); err != nil {
		return nil, fmt.Errorf("config of %s@%s: %w", repo, manifest, err)
	}
	if s.md.Name == "" || s.md.Version == "" {
		return nil, fmt.Errorf("config of %s@%s names no chart or version", repo, manifest)
	}
	if t, err := time.Parse(time.RFC3339, m.Annotations[ocispec.AnnotationCreated]); err == nil {
		s.created = t
	}
	return s, nil
}
