package charts

import (
	"bytes"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"
)

// IndexFile is a classic chart repository's index.yaml (helm's
// repo.IndexFile: apiVersion v1, the versions of each chart newest first).
type IndexFile struct {
	APIVersion string                     `yaml:"apiVersion"`
	Entries    map[string][]*ChartVersion `yaml:"entries"`
	Generated  time.Time                  `yaml:"generated"`
}

// ChartVersion is one chart version in an index: its Chart.yaml, where to
// get it and its sha256 digest.
type ChartVersion struct {
	Metadata `yaml:",inline"`
	URLs     []string  `yaml:"urls"`
	Created  time.Time `yaml:"created,omitempty"`
	Removed  bool      `yaml:"removed,omitempty"`
	Digest   string    `yaml:"digest,omitempty"`
}

// maxIndex bounds an upstream index.yaml (large public repos' are tens of
// MiB).
const maxIndex = 128 << 20

// ParseIndex reads an index.yaml; entries that are not a chart version
// (no name or no semver version) are dropped, as helm drops them.
func ParseIndex(b []byte) (*IndexFile, error) {
	var idx IndexFile
	if err := yaml.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("index.yaml: %w", err)
	}
	if idx.APIVersion == "" {
		return nil, fmt.Errorf("index.yaml has no apiVersion: it is not a chart repository index")
	}
	for name, vs := range idx.Entries {
		kept := vs[:0]
		for _, v := range vs {
			if v == nil || v.Name == "" {
				continue
			}
			if _, err := parseVersion(v.Version); err != nil {
				continue
			}
			kept = append(kept, v)
		}
		idx.Entries[name] = kept
	}
	return &idx, nil
}

// sortEntries puts each chart's versions newest first.
func (idx *IndexFile) sortEntries() {
	for _, vs := range idx.Entries {
		sort.SliceStable(vs, func(i, j int) bool {
			a, _ := parseVersion(vs[i].Version)
			b, _ := parseVersion(vs[j].Version)
			return b.LessThan(a)
		})
	}
}

// Marshal writes the index as helm reads it.
func (idx *IndexFile) Marshal() ([]byte, error) {
	if idx.Entries == nil {
		idx.Entries = map[string][]*ChartVersion{}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(idx); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}

// pick is the versions of w's chart that a sync copies: those in w's range,
// or with no range the newest that is no pre-release.
func (idx *IndexFile) pick(w Wanted) []*ChartVersion {
	var versions []string
	var cvs []*ChartVersion
	for _, cv := range idx.Entries[w.Name] {
		if !cv.Removed {
			versions, cvs = append(versions, cv.Version), append(cvs, cv)
		}
	}
	var out []*ChartVersion
	for _, i := range PickVersions(versions, w) {
		out = append(out, cvs[i])
	}
	return out
}

// PickVersions is which of versions w asks for, as indexes into versions:
// every one in w's range, or with no range the newest that is no
// pre-release. Versions that are not semver are passed over. Bundles and
// OCI upstreams (whose tags are the versions) pick with it too.
func PickVersions(versions []string, w Wanted) []int {
	var out []int
	newest := -1
	var newestV *semver.Version
	for i, s := range versions {
		v, err := parseVersion(s)
		if err != nil {
			continue
		}
		if w.Range != nil {
			if w.Range.Check(v) {
				out = append(out, i)
			}
			continue
		}
		if v.Prerelease() == "" && (newestV == nil || newestV.LessThan(v)) {
			newest, newestV = i, v
		}
	}
	if newest >= 0 {
		out = append(out, newest)
	}
	return out
}

// VersionOfTag is the chart version an OCI tag stands for: helm writes '_'
// for the '+' tags cannot hold.
func VersionOfTag(tag string) string { return strings.ReplaceAll(tag, "_", "+") }

// TagFor is the tag chart version v is stored under.
func TagFor(v string) string { return tagFor(v) }

// parseVersion reads a chart version as helm does (semver, leniently:
// "v1.2" is 1.2.0).
func parseVersion(s string) (*semver.Version, error) {
	v, err := semver.NewVersion(s)
	if err != nil {
		return nil, fmt.Errorf("version %q is not semver: %w", s, err)
	}
	return v, nil
}

// resolveURL is a chart's download URL: absolute as the index wrote it,
// or relative to the repository's URL.
func resolveURL(repoURL, u string) (string, error) {
	base, err := url.Parse(strings.TrimSuffix(repoURL, "/") + "/")
	if err != nil {
		return "", err
	}
	ref, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("chart url %q: %w", u, err)
	}
	out := base.ResolveReference(ref)
	if out.Scheme != "http" && out.Scheme != "https" {
		return "", fmt.Errorf("chart url %q is not http(s)", u)
	}
	return out.String(), nil
}
