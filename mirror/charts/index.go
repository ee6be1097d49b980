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
// or the newest that is no pre-release.
func (idx *IndexFile) pick(w Wanted) []*ChartVersion {
	var out []*ChartVersion
	var newest *ChartVersion
	var newestV *semver.Version
	for _, cv := range idx.Entries[w.Name] {
		v, err := parseVersion(cv.Version)
		if err != nil || cv.Removed {
			continue
		}
		if w.Range != nil {
			if w.Range.Check(v) {
				out = append(out, cv)
			}
			continue
		}
		if v.Prerelease() == "" && (newestV == nil || newestV.LessThan(v)) {
			newest, newestV = cv, v
		}
	}
	if newest != nil {
		out = append(out, newest)
	}
	return out
}

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
