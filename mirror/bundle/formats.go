package bundle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/airgapd/airgapd/mirror"
)

// addFormats adds the trees of the formats beside RPM, each read under
// its lock like a repo.
func (c *Carrier) addFormats(ctx context.Context, p *plan, trees map[string][]string) error {
	formats := make([]string, 0, len(trees))
	for f := range trees {
		formats = append(formats, f)
	}
	sort.Strings(formats)
	for _, format := range formats {
		f, ok := c.formats[format]
		if !ok {
			return fmt.Errorf("--%s: the %s section is absent or disabled in this config: turn it on and sync it first", format, format)
		}
		names := trees[format]
		if len(names) == 0 {
			names = f.Names()
		}
		for _, n := range names {
			if !slices.Contains(f.Names(), n) {
				return fmt.Errorf("--%s %s: no such tree here (there are: %v)", format, n, f.Names())
			}
			tree, err := f.Published(ctx, n)
			switch {
			case errors.Is(err, mirror.ErrNotPublished) && len(trees[format]) == 0:
				continue // every tree asked for: one never filled (no uploads yet) is left out
			case errors.Is(err, mirror.ErrNotPublished):
				return fmt.Errorf("%s %s has nothing published: run `airgapd %s sync` first", format, n, format)
			case err != nil:
				return fmt.Errorf("%s %s: %w", format, n, err)
			}
			if err := p.addTree(format, n, tree); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkFormats refuses a bundle whose trees of another format this
// instance cannot publish.
func (c *Carrier) checkFormats(bm *Manifest) error {
	for _, r := range bm.Repos {
		if r.Format == "" {
			continue
		}
		if _, ok := c.formats[r.Format]; !ok {
			return fmt.Errorf("the bundle holds %s, but the %s section is absent or disabled in this config: turn it on (and mirror: with it); nothing was published", itemName(r), r.Format)
		}
	}
	return nil
}

// publishTree publishes a tree of the bundle through its format.
func (c *Carrier) publishTree(ctx context.Context, r Repo, origin mirror.Origin, files []mirror.TreeFile, place mirror.PlaceFunc) error {
	if r.Format == "" {
		return c.repos.PublishImported(ctx, r.Name, origin, files, place)
	}
	return c.formats[r.Format].PublishImported(ctx, r.Name, origin, files, place)
}
