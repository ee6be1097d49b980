package apt

import (
	"bufio"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"pault.ag/go/debian/control"
	"pault.ag/go/debian/version"
)

// debEntry is one package a Packages index names.
type debEntry struct {
	Package, Version, Arch string
	Filename               string
	Size                   int64
	SHA256                 string
}

// openIndex opens a fetched index file, decompressing it by its name's
// extension.
func openIndex(file, name string) (io.ReadCloser, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	var r io.Reader
	switch path.Ext(name) {
	case ".gz":
		r, err = gzip.NewReader(f)
	case ".xz":
		r, err = xz.NewReader(bufio.NewReader(f))
	case ".bz2":
		r = bzip2.NewReader(f)
	case ".zst":
		var d *zstd.Decoder
		if d, err = zstd.NewReader(f); err == nil {
			r = d.IOReadCloser()
		}
	case "":
		r = f
	default:
		err = fmt.Errorf("cannot read %s: unknown compression", name)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return readCloser{r, f}, nil
}

type readCloser struct {
	io.Reader
	f *os.File
}

func (r readCloser) Close() error { return r.f.Close() }

// parsePackages reads a Packages index: every entry's name, version,
// architecture, Filename, Size and SHA256 (an entry without SHA256 is
// refused: MD5 alone is not trusted).
func parsePackages(r io.Reader, name string) ([]debEntry, error) {
	pr, err := control.NewParagraphReader(r, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var out []debEntry
	for {
		p, err := pr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		v := p.Values
		e := debEntry{Package: v["Package"], Version: v["Version"], Arch: v["Architecture"], Filename: v["Filename"], SHA256: strings.ToLower(v["SHA256"])}
		e.Size, err = strconv.ParseInt(v["Size"], 10, 64)
		switch {
		case e.Package == "" || e.Filename == "":
			return nil, fmt.Errorf("%s: an entry has no Package or Filename", name)
		case err != nil || e.Size < 0:
			return nil, fmt.Errorf("%s: package %s has no usable Size", name, e.Package)
		case len(e.SHA256) != 64:
			return nil, fmt.Errorf("%s: package %s has no SHA256", name, e.Package)
		case !safePath(e.Filename):
			return nil, fmt.Errorf("%s: package %s: Filename %q leaves the repo", name, e.Package, e.Filename)
		}
		out = append(out, e)
	}
}

// newest keeps the keep newest versions of each package and architecture
// (Debian version order); keep 0 keeps all.
func newest(debs []debEntry, keep int) []debEntry {
	if keep <= 0 {
		return debs
	}
	type key struct{ name, arch string }
	groups := map[key][]debEntry{}
	var order []key
	for _, d := range debs {
		k := key{d.Package, d.Arch}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], d)
	}
	var out []debEntry
	for _, k := range order {
		g := groups[k]
		slices.SortStableFunc(g, func(a, b debEntry) int { return -compareVersions(a.Version, b.Version) })
		// Each version once (the same .deb may be listed by two suites).
		var versions []string
		for _, d := range g {
			if !slices.Contains(versions, d.Version) {
				if len(versions) == keep {
					break
				}
				versions = append(versions, d.Version)
			}
			out = append(out, d)
		}
	}
	return out
}

// compareVersions is dpkg's order; unparsable versions sort as strings.
func compareVersions(a, b string) int {
	va, ea := version.Parse(a)
	vb, eb := version.Parse(b)
	if ea != nil || eb != nil {
		return strings.Compare(a, b)
	}
	return version.Compare(va, vb)
}
