package charts

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
)

// ImageCopier copies an image into the registry from where registry.mirrors
// says its upstream is, keeping its upstream-qualified name (as a pull
// through the registry would store it); server hands it the registry.
type ImageCopier interface {
	CopyImage(ctx context.Context, ref string) (stored, digest string, err error)
}

// copyImages copies the images the charts of plan reference (what Images
// lists of each .tgz, subcharts included) into the registry, each once.
// It is the images: true of a repo, run once its charts are pushed.
func (s *Service) copyImages(ctx context.Context, plan []*planned) (int, error) {
	if s.deps.Images == nil {
		return 0, fmt.Errorf("images: true, but this instance has no registry to copy images into (a bug)")
	}
	var refs []string
	from := map[string]string{}
	for _, p := range plan {
		tgz, err := s.chartArchive(ctx, p)
		if err != nil {
			return 0, fmt.Errorf("chart %s: %w", p.chart, err)
		}
		imgs, err := Images(tgz)
		if err != nil {
			return 0, fmt.Errorf("images of chart %s: %w", p.chart, err)
		}
		for _, im := range imgs {
			if _, ok := from[im]; !ok {
				from[im] = p.chart
				refs = append(refs, im)
			}
		}
	}
	slices.Sort(refs)
	for _, ref := range refs {
		stored, d, err := s.deps.Images.CopyImage(ctx, ref)
		if err != nil {
			return 0, fmt.Errorf("image %s of chart %s: %w", ref, from[ref], err)
		}
		s.log.Info("chart image copied into the registry", "image", ref, "chart", from[ref], "stored", stored, "digest", d)
		s.metrics.images.Inc()
	}
	return len(refs), nil
}

// chartArchive is p's .tgz: the one fetched into the pool, or the
// registry's when the chart was there already.
func (s *Service) chartArchive(ctx context.Context, p *planned) ([]byte, error) {
	if p.pool != "" {
		return os.ReadFile(p.pool)
	}
	b, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	c, ok := b.files[p.chart+".tgz"]
	if !ok {
		return nil, fmt.Errorf("not in the registry")
	}
	rc, err := s.deps.Store.OpenBlob(ctx, c.repo, c.layer)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxChartTotal))
}
