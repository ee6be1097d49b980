package charts

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/atomicfile"
	"github.com/airgapd/airgapd/mirror"
)

// An oci:// upstream is a registry holding charts as helm push stores
// them: chart NAME is the repository PATH/NAME, each version a tag. Its
// tag list gives the versions; the chosen ones' manifests, configs and
// chart layers are fetched and each checked against its digest before
// anything is pushed, and the manifest is pushed byte for byte, so the
// chart keeps its upstream digest here.

// maxOCIManifest bounds a chart manifest read from an upstream.
const maxOCIManifest = 4 << 20

// ociUpstream is how one sync reaches an oci:// repository.
type ociUpstream struct {
	base  string // HOST[:PORT]/PATH
	nopts []name.Option
	opts  []remote.Option
}

func newOCIUpstream(ctx context.Context, r Repo) (*ociUpstream, error) {
	u := &ociUpstream{base: strings.Trim(strings.TrimPrefix(r.URL, "oci://"), "/")}
	if r.PlainHTTP {
		u.nopts = append(u.nopts, name.Insecure)
	}
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	if r.SSLCACert != "" {
		pem, err := os.ReadFile(r.SSLCACert)
		if err != nil {
			return nil, fmt.Errorf("sslcacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("sslcacert %s holds no PEM certificate; give the registry's CA certificate", r.SSLCACert)
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	auth := authn.Anonymous
	if r.Username != "" {
		auth = &authn.Basic{Username: r.Username, Password: r.Password}
	}
	u.opts = []remote.Option{remote.WithContext(ctx), remote.WithTransport(tr), remote.WithAuth(auth)}
	return u, nil
}

func (u *ociUpstream) repo(chart string) (name.Repository, error) {
	return name.NewRepository(u.base+"/"+chart, u.nopts...)
}

// fetchOCI lists r's chart repositories' tags, picks the versions asked
// for, and fetches each one not in the registry yet, verified, into r's
// pool (the .tgz) and the plan (manifest and config).
func (s *Service) fetchOCI(ctx context.Context, r Repo, have *built, tr *mirror.Tracker[api.Progress, *api.Progress], res *Result) ([]*planned, error) {
	up, err := newOCIUpstream(ctx, r)
	if err != nil {
		return nil, err
	}
	var plan []*planned
	for _, spec := range r.Charts {
		w, err := ParseWanted(spec)
		if err != nil {
			return nil, err
		}
		repo, err := up.repo(w.Name)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", w.Name, err)
		}
		tags, err := remote.List(repo, up.opts...)
		if err != nil {
			return nil, fmt.Errorf("list the tags of %s: %w", repo, err)
		}
		versions := make([]string, len(tags))
		for i, t := range tags {
			versions[i] = VersionOfTag(t)
		}
		picked := PickVersions(versions, w)
		if len(picked) == 0 {
			return nil, fmt.Errorf("%s has no tag that %q asks for", repo, spec)
		}
		for _, i := range picked {
			plan = append(plan, &planned{repo: r.Name, chart: w.Name + "-" + versions[i], url: "oci://" + repo.Tag(tags[i]).String(),
				cv: &ChartVersion{Metadata: Metadata{Name: w.Name, Version: versions[i]}}, oci: &ociChart{ref: repo.Tag(tags[i])}})
		}
	}
	store := mirror.FormatStore(s.deps.DataDir, "charts", r.Name)
	unlock, err := store.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	store.Clean()
	res.Packages = len(plan)
	tr.Update(true, func(pr *api.Progress) { pr.Phase, pr.Packages, pr.ToFetch = "packages", len(plan), len(plan) })
	for _, p := range plan {
		n, err := s.fetchOCIChart(up, store, p, have)
		if err != nil {
			return nil, err
		}
		res.Downloaded += n
		tr.Update(false, func(pr *api.Progress) { pr.Fetched++; pr.BytesDone += n; pr.Bytes = max(pr.Bytes, pr.BytesDone) })
	}
	return plan, nil
}

// ociChart is what an oci:// chart version brings beside its .tgz.
type ociChart struct {
	ref       name.Tag
	manifest  []byte
	mediaType string
	config    []byte
}

// fetchOCIChart fetches p's manifest, config and chart layer, each
// checked against its digest (the manifest against the one the upstream
// names it by), and reports the bytes fetched.
func (s *Service) fetchOCIChart(up *ociUpstream, store mirror.Store, p *planned, have *built) (int64, error) {
	desc, err := remote.Get(p.oci.ref, up.opts...)
	if err != nil {
		return 0, fmt.Errorf("chart %s: fetch %s: %w", p.chart, p.url, err)
	}
	if len(desc.Manifest) > maxOCIManifest || desc.Digest != mustHash(desc.Manifest) {
		return 0, fmt.Errorf("chart %s: the manifest %s sent does not match its digest %s, so the sync is refused", p.chart, p.url, desc.Digest)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil || m.Config.MediaType != ConfigMediaType {
		return 0, fmt.Errorf("chart %s: %s is not a helm chart (config media type %q, want %s)", p.chart, p.url, m.Config.MediaType, ConfigMediaType)
	}
	var layer *ocispec.Descriptor
	for i, l := range m.Layers {
		if l.MediaType == ChartMediaType {
			layer = &m.Layers[i]
		}
	}
	if layer == nil {
		return 0, fmt.Errorf("chart %s: %s has no chart layer (%s)", p.chart, p.url, ChartMediaType)
	}
	p.oci.manifest, p.oci.mediaType = desc.Manifest, string(desc.MediaType)
	p.sum = mirror.Checksum{Type: "sha256", Value: layer.Digest.Encoded()}
	if err := p.sum.Valid(); err != nil {
		return 0, fmt.Errorf("chart %s: the chart layer's digest %q is no sha256, so it cannot be verified: refusing it", p.chart, layer.Digest)
	}
	if c, ok := have.files[p.chart+".tgz"]; ok && c.manifest == desc.Digest.String() {
		p.copied = true
		return 0, nil
	}
	repo := p.oci.ref.Context()
	if p.oci.config, err = fetchBlob(repo, m.Config, up.opts); err != nil {
		return 0, fmt.Errorf("chart %s: config of %s: %w", p.chart, p.url, err)
	}
	n := int64(len(desc.Manifest) + len(p.oci.config))
	p.pool = store.Pool(p.sum)
	if !store.Has(p.sum) {
		tgz, err := fetchBlob(repo, *layer, up.opts)
		if err != nil {
			return 0, fmt.Errorf("chart %s from %s: %w", p.chart, p.url, err)
		}
		if err := os.MkdirAll(filepath.Dir(p.pool), 0o750); err != nil {
			return 0, err
		}
		if err := atomicfile.WriteFile(p.pool, tgz, 0o644); err != nil {
			return 0, err
		}
		n += int64(len(tgz))
	}
	return n, p.check()
}

// fetchBlob reads the blob d of repo, refusing one that is not d's size
// and digest.
func fetchBlob(repo name.Repository, d ocispec.Descriptor, opts []remote.Option) ([]byte, error) {
	if d.Size < 0 || d.Size > maxChartTotal {
		return nil, fmt.Errorf("blob %s: size %d is out of bounds", d.Digest, d.Size)
	}
	l, err := remote.Layer(repo.Digest(d.Digest.String()), opts...)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if int64(len(b)) != d.Size || sha256Digest(b) != d.Digest {
		return nil, fmt.Errorf("blob %s does not match its digest or size (damaged or tampered with upstream): %w", d.Digest, mirror.ErrChecksum)
	}
	return b, nil
}

func mustHash(b []byte) v1.Hash {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h
}

// pushOCI pushes p's upstream manifest byte for byte, with its config and
// chart layer.
func (s *Service) pushOCI(ctx context.Context, p *planned, tgz []byte) error {
	_, err := s.deps.Store.PushManifest(ctx, Prefix+p.cv.Name, tagFor(p.cv.Version), p.oci.mediaType, p.oci.manifest, [][]byte{p.oci.config, tgz})
	return err
}
