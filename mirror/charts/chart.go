package charts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// Metadata is a chart's Chart.yaml, with the keys helm's chart.Metadata
// has (yaml and JSON alike: the same names go into index.yaml and into
// the OCI config blob helm writes on push).
type Metadata struct {
	Name         string            `yaml:"name" json:"name"`
	Home         string            `yaml:"home,omitempty" json:"home,omitempty"`
	Sources      []string          `yaml:"sources,omitempty" json:"sources,omitempty"`
	Version      string            `yaml:"version" json:"version"`
	Description  string            `yaml:"description,omitempty" json:"description,omitempty"`
	Keywords     []string          `yaml:"keywords,omitempty" json:"keywords,omitempty"`
	Maintainers  []Maintainer      `yaml:"maintainers,omitempty" json:"maintainers,omitempty"`
	Icon         string            `yaml:"icon,omitempty" json:"icon,omitempty"`
	APIVersion   string            `yaml:"apiVersion" json:"apiVersion"`
	Condition    string            `yaml:"condition,omitempty" json:"condition,omitempty"`
	Tags         string            `yaml:"tags,omitempty" json:"tags,omitempty"`
	AppVersion   string            `yaml:"appVersion,omitempty" json:"appVersion,omitempty"`
	Deprecated   bool              `yaml:"deprecated,omitempty" json:"deprecated,omitempty"`
	Annotations  map[string]string `yaml:"annotations,omitempty" json:"annotations,omitempty"`
	KubeVersion  string            `yaml:"kubeVersion,omitempty" json:"kubeVersion,omitempty"`
	Dependencies []Dependency      `yaml:"dependencies,omitempty" json:"dependencies,omitempty"`
	Type         string            `yaml:"type,omitempty" json:"type,omitempty"`
}

// Maintainer is one entry of Chart.yaml's maintainers.
type Maintainer struct {
	Name  string `yaml:"name,omitempty" json:"name,omitempty"`
	Email string `yaml:"email,omitempty" json:"email,omitempty"`
	URL   string `yaml:"url,omitempty" json:"url,omitempty"`
}

// Dependency is one entry of Chart.yaml's dependencies.
type Dependency struct {
	Name         string   `yaml:"name" json:"name"`
	Version      string   `yaml:"version,omitempty" json:"version,omitempty"`
	Repository   string   `yaml:"repository,omitempty" json:"repository,omitempty"`
	Condition    string   `yaml:"condition,omitempty" json:"condition,omitempty"`
	Tags         []string `yaml:"tags,omitempty" json:"tags,omitempty"`
	Enabled      bool     `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	ImportValues []any    `yaml:"import-values,omitempty" json:"import-values,omitempty"`
	Alias        string   `yaml:"alias,omitempty" json:"alias,omitempty"`
}

// Limits on what a chart archive may make this package read.
const (
	maxChartFile  = 16 << 20  // one file inside the archive
	maxChartTotal = 256 << 20 // everything read from one archive
)

// Archive is what this package reads from a chart's .tgz: Chart.yaml, and
// the default values and templates (for Images).
type Archive struct {
	Metadata Metadata
	Values   []byte // NAME/values.yaml
	// Templates are the templates by path inside the archive, with the
	// Chart.yaml, values.yaml and templates of unpacked subcharts.
	Templates map[string][]byte
	Subcharts map[string][]byte // NAME/charts/SUB.tgz, packaged dependencies
}

// ReadArchive reads a chart's .tgz: its one top folder must hold
// Chart.yaml naming a chart and a version.
func ReadArchive(tgz []byte) (*Archive, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		return nil, fmt.Errorf("not a gzip file: %w", err)
	}
	tr := tar.NewReader(zr)
	a := &Archive{Templates: map[string][]byte{}, Subcharts: map[string][]byte{}}
	var chartYAML []byte
	top := ""
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the chart archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		first, rest, ok := strings.Cut(name, "/")
		if !ok || strings.HasPrefix(name, "../") {
			continue
		}
		if top == "" {
			top = first
		} else if first != top {
			return nil, fmt.Errorf("the chart archive has two top folders, %s and %s", top, first)
		}
		want := rest == "Chart.yaml" || rest == "values.yaml" || strings.HasPrefix(rest, "templates/") ||
			(strings.HasPrefix(rest, "charts/") && (strings.HasSuffix(rest, ".tgz") || strings.Contains(rest, "/templates/") || strings.HasSuffix(rest, "/values.yaml") || strings.HasSuffix(rest, "/Chart.yaml")))
		if !want {
			continue
		}
		if h.Size > maxChartFile {
			return nil, fmt.Errorf("%s in the chart archive is over %d bytes", name, maxChartFile)
		}
		if total += h.Size; total > maxChartTotal {
			return nil, fmt.Errorf("the chart archive unpacks to over %d bytes", maxChartTotal)
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxChartFile))
		if err != nil {
			return nil, fmt.Errorf("read %s in the chart archive: %w", name, err)
		}
		switch {
		case rest == "Chart.yaml":
			chartYAML = b
		case rest == "values.yaml":
			a.Values = b
		case strings.HasPrefix(rest, "charts/") && strings.HasSuffix(rest, ".tgz") && strings.Count(rest, "/") == 1:
			a.Subcharts[name] = b
		default:
			a.Templates[name] = b
		}
	}
	if chartYAML == nil {
		return nil, errors.New("the chart archive has no Chart.yaml in its top folder")
	}
	md, err := ParseChartYAML(chartYAML)
	if err != nil {
		return nil, err
	}
	a.Metadata = md
	return a, nil
}

// ParseChartYAML reads Chart.yaml; it must name the chart and a version.
func ParseChartYAML(b []byte) (Metadata, error) {
	var md Metadata
	if err := yaml.Unmarshal(b, &md); err != nil {
		return md, fmt.Errorf("Chart.yaml: %w", err)
	}
	if !validChartName(md.Name) {
		return md, fmt.Errorf("Chart.yaml: %q is not a chart name", md.Name)
	}
	if _, err := parseVersion(md.Version); err != nil {
		return md, fmt.Errorf("Chart.yaml of %s: %w", md.Name, err)
	}
	return md, nil
}
