package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/registry"
)

// followImages makes this registry's store the primary's: every manifest
// (tagged or not, pushed, imported or pulled through alike), every tag at
// the primary's digest with its pin, and nothing more. The primary lists
// its storage in the snapshot (registry.Stored), so neither side asks an
// upstream or walks /v2/ tag lists, which for a mirrored repository hold
// the upstream's tags too. Bytes come over the primary's /v2/ by digest
// with Cache-Control: only-if-cached (ha_imagecopy.go) and are stored with
// the registry's own import, in process: past the standby's write guard
// and the registry's push users, whose passwords this host never has.
func (n *haNode) followImages(ctx context.Context, snap api.HASnapshot) error {
	if snap.RegistryPort == "" {
		return nil
	}
	if snap.Registry == nil {
		return errors.New("the primary did not list its registry's storage (see its log)")
	}
	n.s.mu.Lock()
	c, bound := n.s.cfg, n.s.bound["registry.listen"]
	n.s.mu.Unlock()
	if !c.Enabled("registry") || bound == "" {
		return errors.New("the registry section is off here, so the primary's images have nowhere to go")
	}
	reg, err := capability[*registry.Registry](n.s, "registry")
	if err != nil {
		return err
	}
	have, err := reg.Stored(ctx)
	if err != nil {
		return fmt.Errorf("list this host's images: %w", err)
	}
	want := *snap.Registry
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(n.s.CACertPEM())
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}}
	defer tr.CloseIdleConnections()
	scheme := "http"
	if snap.RegistryTLS {
		scheme = "https"
	}
	cp := imageCopy{
		reg: reg, hc: &http.Client{Transport: tr}, dataDir: c.DataDir,
		base: scheme + "://" + net.JoinHostPort(n.peerHost(), snap.RegistryPort),
	}
	var errs []error
	for _, repo := range sortedKeys(want.Manifests) {
		for _, d := range want.Manifests[repo] {
			dg := digest.Digest(d)
			if slices.Contains(have.Manifests[repo], d) || dg.Validate() != nil || reg.HasManifest(ctx, repo, dg) {
				continue
			}
			copied, err := cp.copyManifest(ctx, repo, dg)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("%s@%s: %w", repo, d, err))
			case copied:
				n.log.Info("copied an image from the primary", "repo", repo, "digest", d)
			default:
				// A manifest whose blobs the primary has not all fetched
				// yet (pulled through, layers never asked for): copied
				// once they are there.
				n.log.Debug("the primary's image is incomplete there; copied when it is whole", "repo", repo, "digest", d)
			}
		}
	}
	for _, ref := range sortedKeys(want.Tags) {
		t := want.Tags[ref]
		if have.Tags[ref] == t {
			continue
		}
		repo, tag := splitRef(ref)
		if !reg.HasManifest(ctx, repo, digest.Digest(t.Digest)) {
			continue // incomplete on the primary (above)
		}
		if err := reg.SetTag(ctx, repo, tag, digest.Digest(t.Digest), t.Pinned); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ref := range sortedKeys(have.Tags) {
		if _, ok := want.Tags[ref]; ok {
			continue
		}
		repo, tag := splitRef(ref)
		if err := reg.DeleteTag(ctx, repo, tag); err != nil && !errors.Is(err, registry.ErrTagNotFound) {
			errs = append(errs, fmt.Errorf("delete %s: %w", ref, err))
		}
	}
	for _, repo := range sortedKeys(have.Manifests) {
		for _, d := range have.Manifests[repo] {
			if slices.Contains(want.Manifests[repo], d) {
				continue
			}
			if err := reg.DeleteManifest(ctx, repo, digest.Digest(d)); err != nil {
				errs = append(errs, err)
			} else {
				n.log.Info("deleted an image the primary no longer has", "repo", repo, "digest", d)
			}
		}
	}
	return errors.Join(errs...)
}

// registryStored is what HASnapshot lists of the local registry, nil
// (so the standby changes nothing) when it cannot be listed whole.
func (s *Server) registryStored(c *Config) *api.HARegistry {
	if !c.Enabled("registry") {
		return nil
	}
	reg, err := capability[*registry.Registry](s, "registry")
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), haListLimit)
	defer cancel()
	st, err := reg.Stored(ctx)
	if err != nil {
		s.log.Warn("ha: cannot list the registry's storage for the standby", "err", err)
		return nil
	}
	return &st
}

// splitRef splits REPO:TAG (a stored repository name has no port, so the
// last colon is the tag's).
func splitRef(ref string) (string, string) {
	i := strings.LastIndex(ref, ":")
	return ref[:i], ref[i+1:]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
