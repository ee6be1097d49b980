package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/registry"
)

// followImages copies every repository and tag of the primary's registry
// that this one lacks or holds at another digest (go-containerregistry's
// remote: Catalog, List, Get, then Write or WriteIndex, blobs only when
// missing), and deletes the tags the primary no longer has. Each copy is
// written as an OCI layout and stored with the registry's own import, in
// process: past the standby's write guard and the registry's push users,
// whose passwords this host never has.
func (n *haNode) followImages(ctx context.Context, snap api.HASnapshot) error {
	if snap.RegistryPort == "" {
		return nil
	}
	n.s.mu.Lock()
	c, bound := n.s.cfg, n.s.bound["registry.listen"]
	n.s.mu.Unlock()
	if !c.Enabled("registry") || bound == "" {
		return errors.New("the registry section is off here, so the primary's images have nowhere to go")
	}
	_, port, err := net.SplitHostPort(bound)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(n.s.CACertPEM())
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}}
	defer tr.CloseIdleConnections()
	srcOpts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(tr)}
	dstOpts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(tr)}
	var srcNO, dstNO []name.Option
	if !snap.RegistryTLS {
		srcNO = append(srcNO, name.Insecure)
	}
	if c.Registry.TLS.Mode == conf.TLSOff {
		dstNO = append(dstNO, name.Insecure)
	}
	src, err := name.NewRegistry(net.JoinHostPort(n.peerHost(), snap.RegistryPort), srcNO...)
	if err != nil {
		return err
	}
	dst, err := name.NewRegistry(net.JoinHostPort("127.0.0.1", port), dstNO...)
	if err != nil {
		return err
	}
	want, err := registryTags(ctx, src, srcOpts)
	if err != nil {
		return fmt.Errorf("list the primary's images: %w", err)
	}
	have, err := registryTags(ctx, dst, dstOpts)
	if err != nil {
		return fmt.Errorf("list this host's images: %w", err)
	}
	reg, err := capability[*registry.Registry](n.s, "registry")
	if err != nil {
		return err
	}
	var errs []error
	for ref, digest := range want {
		if have[ref] == digest {
			continue
		}
		if err := n.copyImage(ctx, reg, ref, src, srcOpts, srcNO); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ref, err))
		} else {
			n.log.Info("copied an image from the primary", "image", ref, "digest", digest)
		}
	}
	del := reg
	for ref := range have {
		if _, ok := want[ref]; ok {
			continue
		}
		t, err := name.NewTag(dst.Name()+"/"+ref, dstNO...)
		if err == nil {
			err = del.DeleteTag(ctx, t.RepositoryStr(), t.TagStr())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", ref, err))
		}
	}
	return errors.Join(errs...)
}

// registryTags is REPO:TAG → digest for every tag of reg.
func registryTags(ctx context.Context, reg name.Registry, opts []remote.Option) (map[string]string, error) {
	repos, err := remote.Catalog(ctx, reg, opts...)
	if err != nil {
		return nil, err
	}
	slices.Sort(repos)
	out := map[string]string{}
	for _, r := range repos {
		repo := reg.Repo(r)
		tags, err := remote.List(repo, opts...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r, err)
		}
		for _, t := range tags {
			d, err := remote.Head(repo.Tag(t), opts...)
			if err != nil {
				return nil, fmt.Errorf("%s:%s: %w", r, t, err)
			}
			out[r+":"+t] = d.Digest.String()
		}
	}
	return out, nil
}

// copyImage fetches ref from the primary into an OCI layout and imports
// it under the same name.
func (n *haNode) copyImage(ctx context.Context, reg *registry.Registry, ref string, src name.Registry, srcOpts []remote.Option, srcNO []name.Option) error {
	from, err := name.NewTag(src.Name()+"/"+ref, srcNO...)
	if err != nil {
		return err
	}
	d, err := remote.Get(from, srcOpts...)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(n.s.cfg.DataDir, "ha-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	opt := layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})
	if d.MediaType.IsIndex() {
		idx, err := d.ImageIndex()
		if err != nil {
			return err
		}
		err = p.AppendIndex(idx, opt)
	} else {
		img, err := d.Image()
		if err != nil {
			return err
		}
		err = p.AppendImage(img, opt)
	}
	if err != nil {
		return err
	}
	_, err = reg.Import(ctx, dir, registry.ImportOptions{Repo: ref})
	return err
}
