package rpm

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/airgapd/airgapd/mirror"
)

// repomd is what a sync needs from repodata/repomd.xml.
type repomd struct {
	Revision string       `xml:"revision"`
	Data     []repomdData `xml:"data"`
}

type repomdData struct {
	Type     string   `xml:"type,attr"`
	Checksum checksum `xml:"checksum"`
	Location location `xml:"location"`
	Size     int64    `xml:"size"`
}

type checksum struct {
	Type  string `xml:"type,attr"`
	Value string `xml:",chardata"`
}

// sum is the checksum as the store names files.
func (c checksum) sum() mirror.Checksum { return mirror.Checksum(c) }

type location struct {
	Href string `xml:"href,attr"`
	Base string `xml:"http://www.w3.org/XML/1998/namespace base,attr"`
}

// maxRepomd bounds repomd.xml; real ones are a few kB.
const maxRepomd = 8 << 20

func parseRepomd(b []byte) (*repomd, error) {
	var md repomd
	if err := xml.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("repomd.xml: %w", err)
	}
	if len(md.Data) == 0 {
		return nil, errors.New("repomd.xml lists no metadata")
	}
	for _, d := range md.Data {
		if err := checkHref(d.Location.Href); err != nil {
			return nil, fmt.Errorf("repomd.xml %s: %w", d.Type, err)
		}
		if _, err := mirror.NewHash(d.Checksum.Type); err != nil {
			return nil, fmt.Errorf("repomd.xml %s: %w", d.Type, err)
		}
	}
	return &md, nil
}

// primary returns the entry for primary.xml.
func (md *repomd) primary() (repomdData, bool) {
	for _, d := range md.Data {
		if d.Type == "primary" {
			return d, true
		}
	}
	return repomdData{}, false
}

// pkg is one package as primary.xml lists it.
type pkg struct {
	Name     string
	Arch     string
	Href     string
	Base     string // xml:base, when the package lives elsewhere
	Checksum checksum
	Size     int64
	EVR      evr // for keep: (newest versions only)
}

// primaryPackage is the part of a <package> element the sync reads.
type primaryPackage struct {
	Name    string `xml:"name"`
	Arch    string `xml:"arch"`
	Version struct {
		Epoch string `xml:"epoch,attr"`
		Ver   string `xml:"ver,attr"`
		Rel   string `xml:"rel,attr"`
	} `xml:"version"`
	Checksum checksum `xml:"checksum"`
	Size     struct {
		Package int64 `xml:"package,attr"`
	} `xml:"size"`
	Location location `xml:"location"`
}

// parsePrimary streams primary.xml (compressed as its name says) and returns
// its packages.
func parsePrimary(r io.Reader, name string) ([]pkg, error) {
	dr, err := decompress(r, name)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	dec := xml.NewDecoder(dr)
	var out []pkg
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path.Base(name), err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "package" {
			continue
		}
		var p primaryPackage
		if err := dec.DecodeElement(&p, &se); err != nil {
			return nil, fmt.Errorf("%s: %w", path.Base(name), err)
		}
		if err := checkHref(p.Location.Href); err != nil {
			return nil, fmt.Errorf("%s: package %s: %w", path.Base(name), p.Name, err)
		}
		if _, err := mirror.NewHash(p.Checksum.Type); err != nil {
			return nil, fmt.Errorf("%s: package %s: %w", path.Base(name), p.Name, err)
		}
		out = append(out, pkg{
			Name: p.Name, Arch: p.Arch, Href: p.Location.Href, Base: p.Location.Base,
			Checksum: checksum{Type: p.Checksum.Type, Value: strings.TrimSpace(p.Checksum.Value)}, Size: p.Size.Package,
			EVR: evr{Epoch: p.Version.Epoch, Ver: p.Version.Ver, Rel: p.Version.Rel},
		})
	}
}

// decompress opens r as the compression its file name says.
func decompress(r io.Reader, name string) (io.ReadCloser, error) {
	switch path.Ext(name) {
	case ".gz":
		return gzip.NewReader(r)
	case ".bz2":
		return io.NopCloser(bzip2.NewReader(r)), nil
	case ".xz":
		x, err := xz.NewReader(r)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(x), nil
	case ".zst", ".zck":
		if path.Ext(name) == ".zck" {
			return nil, errors.New("zchunk metadata is not supported; the repo also needs plain compressed metadata")
		}
		z, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return z.IOReadCloser(), nil
	case ".xml", "":
		return io.NopCloser(r), nil
	}
	return nil, fmt.Errorf("%s: unknown compression", path.Base(name))
}

// checkHref refuses locations that would leave the repo's folder.
func checkHref(href string) error {
	if href == "" {
		return errors.New("empty location")
	}
	if strings.HasPrefix(href, "/") || strings.Contains(href, "\\") || path.Clean(href) != href || href == "." || strings.HasPrefix(href, "../") || href == ".." {
		return fmt.Errorf("location %q leaves the repo folder or is not clean", href)
	}
	return nil
}

// isRepomd reports whether b parses as repomd.xml; used to tell a repo from
// an error page.
func isRepomd(b []byte) bool {
	return bytes.Contains(b, []byte("<repomd"))
}
