package charts

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Images lists the container images a chart's default values and
// templates name, and its packaged subcharts' too. It is a heuristic, not
// a render: in values, an `image:` string, or a map with `repository:`
// (and `registry:`, `tag:`, `digest:` beside it; the tag defaults to the
// chart's appVersion, as most charts' templates do); in templates, an
// `image:` line whose value is literal (no {{ }}). An image a template
// builds some other way is missed; render with `helm template` to be sure.
func Images(tgz []byte) ([]string, error) {
	seen := map[string]bool{}
	if err := collectImages(tgz, seen, 0); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for i := range seen {
		out = append(out, i)
	}
	sort.Strings(out)
	return out, nil
}

func collectImages(tgz []byte, seen map[string]bool, depth int) error {
	if depth > 5 {
		return nil
	}
	a, err := ReadArchive(tgz)
	if err != nil {
		return err
	}
	if len(a.Values) > 0 {
		var doc yaml.Node
		if err := yaml.Unmarshal(a.Values, &doc); err != nil {
			return fmt.Errorf("values.yaml of %s: %w", a.Metadata.Name, err)
		}
		walkValues(&doc, a.Metadata.AppVersion, seen)
	}
	for name, t := range a.Templates {
		if strings.HasSuffix(name, "/Chart.yaml") {
			continue
		}
		if strings.HasSuffix(name, "/values.yaml") { // an unpacked subchart's
			appVersion := ""
			if md, err := ParseChartYAML(a.Templates[strings.TrimSuffix(name, "values.yaml")+"Chart.yaml"]); err == nil {
				appVersion = md.AppVersion
			}
			var doc yaml.Node
			if yaml.Unmarshal(t, &doc) == nil {
				walkValues(&doc, appVersion, seen)
			}
			continue
		}
		for _, m := range templateImage.FindAllSubmatch(t, -1) {
			if ref := string(m[1]); looksLikeImage(ref) {
				seen[ref] = true
			}
		}
	}
	for _, sub := range a.Subcharts {
		if err := collectImages(sub, seen, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// templateImage is a template's `image: VALUE` line with a literal value.
var templateImage = regexp.MustCompile(`(?m)^\s*-?\s*image:\s*["']?([^\s"'{}#]+)["']?\s*(?:#.*)?$`)

// walkValues finds image references in a values document.
func walkValues(n *yaml.Node, appVersion string, seen map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			walkValues(c, appVersion, seen)
		}
	case yaml.MappingNode:
		if ref := imageOfMap(n, appVersion); ref != "" {
			seen[ref] = true
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "image" && v.Kind == yaml.ScalarNode && looksLikeImage(v.Value) {
				seen[v.Value] = true
				continue
			}
			walkValues(v, appVersion, seen)
		}
	}
}

// imageOfMap is the image a {registry, repository, tag, digest} map names,
// or "".
func imageOfMap(n *yaml.Node, appVersion string) string {
	f := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if v := n.Content[i+1]; v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
			f[n.Content[i].Value] = v.Value
		}
	}
	repo := f["repository"]
	if repo == "" || strings.Contains(repo, "://") || !looksLikeImage(repo) {
		return ""
	}
	if r := f["registry"]; r != "" {
		repo = strings.TrimSuffix(r, "/") + "/" + repo
	}
	switch {
	case f["digest"] != "":
		return repo + "@" + f["digest"]
	case f["tag"] != "":
		return repo + ":" + f["tag"]
	case appVersion != "":
		return repo + ":" + appVersion
	}
	return repo
}

// imageRef is roughly distribution's reference grammar, enough to keep
// words and paths out.
var imageRef = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$`)

func looksLikeImage(s string) bool { return len(s) <= 512 && imageRef.MatchString(s) }

// ImagesOf reads chart NAME-VERSION from the registry and lists its
// images (see Images).
func (s *Service) ImagesOf(ctx context.Context, chart string) ([]string, error) {
	b, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	c, ok := b.files[strings.TrimSuffix(chart, ".tgz")+".tgz"]
	if !ok {
		return nil, fmt.Errorf("no chart %s in /charts/index.yaml: name it NAME-VERSION as the index lists it", chart)
	}
	rc, err := s.deps.Store.OpenBlob(ctx, c.repo, c.layer)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tgz, err := io.ReadAll(io.LimitReader(rc, maxChartTotal))
	if err != nil {
		return nil, err
	}
	return Images(tgz)
}
