package bundle

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airgapd/airgapd/mirror/charts"
)

// Helm charts live in this instance's registry as OCI artifacts under
// charts/NAME, each version a tag (mirror/charts). A bundle carries each
// as it carries an image, byte for byte (helm's config and chart layer
// media types, every digest unchanged), named charts/NAME:TAG with no
// registry host, so import stores it under the same charts/NAME and the
// importing instance's /charts/index.yaml lists it.

// addCharts adds --chart and --charts: the chart versions asked for, read
// from this instance's registry.
func (p *plan) addCharts(ic *imageCollector, opts CreateOptions) error {
	if len(opts.Charts) == 0 && !opts.AllCharts {
		return nil
	}
	refs, err := ic.chartRefs(opts.ChartsFrom, opts.Charts, opts.AllCharts)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		tag, err := name.NewTag(ref)
		if err != nil {
			return fmt.Errorf("chart %s: %w", ref, err)
		}
		n := tag.RepositoryStr() + ":" + tag.TagStr()
		_, src, err := ic.fromLocal(opts.ChartsFrom, n, source{opts: []remote.Option{remote.WithContext(ic.ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}})
		if err != nil {
			return err
		}
		items, err := ic.collectFrom(n, src, tag, "")
		if err != nil {
			return fmt.Errorf("chart %s: %w", n, err)
		}
		p.addItems(items)
	}
	return nil
}

// chartRefs lists the charts/NAME:TAG references the specs (NAME or
// NAME@RANGE) pick among the tags of the registry lr; all: every tag of
// every charts/ repository.
func (c *imageCollector) chartRefs(lr *LocalRegistry, specs []string, all bool) ([]string, error) {
	u, err := url.Parse(lr.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("this registry's address %q is not a URL", lr.URL)
	}
	var nopts []name.Option
	if u.Scheme == "http" {
		nopts = append(nopts, name.Insecure)
	}
	tr, err := localTransport(lr)
	if err != nil {
		return nil, err
	}
	ropts := []remote.Option{remote.WithContext(c.ctx), remote.WithTransport(tr), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	reg, err := name.NewRegistry(u.Host, nopts...)
	if err != nil {
		return nil, err
	}
	tagsOf := func(chart string) ([]string, error) {
		tags, err := remote.List(reg.Repo(charts.Prefix+chart), ropts...)
		if err != nil {
			return nil, fmt.Errorf("chart %s: list its versions in this registry: %w", chart, err)
		}
		return tags, nil
	}
	var refs []string
	add := func(chart, tag string) {
		ref := u.Host + "/" + charts.Prefix + chart + ":" + tag
		if !slices.Contains(refs, ref) {
			refs = append(refs, ref)
		}
	}
	if all {
		repos, err := remote.Catalog(c.ctx, reg, ropts...)
		if err != nil {
			return nil, fmt.Errorf("--charts: list this registry's repositories: %w", err)
		}
		for _, r := range repos {
			chart, ok := strings.CutPrefix(r, charts.Prefix)
			if !ok || strings.Contains(chart, "/") {
				continue
			}
			tags, err := tagsOf(chart)
			if err != nil {
				return nil, err
			}
			for _, t := range tags {
				add(chart, t)
			}
		}
		if len(refs) == 0 {
			return nil, fmt.Errorf("--charts: this registry holds no chart under %s (sync or push some first)", charts.Prefix)
		}
	}
	for _, spec := range specs {
		w, err := charts.ParseWanted(spec)
		if err != nil {
			return nil, fmt.Errorf("--chart %s: %w", spec, err)
		}
		tags, err := tagsOf(w.Name)
		if err != nil {
			return nil, err
		}
		versions := make([]string, len(tags))
		for i, t := range tags {
			versions[i] = charts.VersionOfTag(t)
		}
		picked := charts.PickVersions(versions, w)
		if len(picked) == 0 {
			return nil, fmt.Errorf("--chart %s: this registry holds no version of %s it asks for (it has %v)", spec, w.Name, versions)
		}
		for _, i := range picked {
			add(w.Name, tags[i])
		}
	}
	return refs, nil
}
