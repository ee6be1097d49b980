package bundle

import (
	"fmt"
	"math"
	"path"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/airgapd/airgapd/mirror"
)

// Validate checks everything import relies on before it publishes
// anything, so a bundle that could only fail part-way (an image name the
// registry refuses after the repos and files are out) is refused whole,
// naming the entry: known format, well-formed digests, repo names, file
// paths that stay in their folder and do not clash, image names and
// references as distribution parses them, sizes that add up.
func (bm *Manifest) Validate() error {
	if bm.Format != Format {
		return fmt.Errorf("format %q is not %q: this bundle needs a newer airgapd", bm.Format, Format)
	}
	if bm.Base != "" && !digestRE.MatchString(bm.Base) {
		return fmt.Errorf("base %q is not a sha256 digest", bm.Base)
	}
	var total int64
	for _, b := range bm.Blobs {
		if !digestRE.MatchString(b.Digest) {
			return fmt.Errorf("blob %q is not a sha256 digest", b.Digest)
		}
		if b.Size < 0 || b.Size > math.MaxInt64/2-total {
			return fmt.Errorf("blob %s: size %d is not a size a bundle can hold", b.Digest, b.Size)
		}
		total += b.Size
	}
	for _, r := range bm.Repos {
		if !mirror.ValidName(r.Name) || r.Format != "" && !mirror.ValidName(r.Format) {
			return fmt.Errorf("%q (format %q) is not a usable repo name", r.Name, r.Format)
		}
		if err := checkTree("repo "+r.Name, r.Files); err != nil {
			return err
		}
	}
	if err := checkTree("file", bm.Files); err != nil {
		return err
	}
	for _, im := range bm.Images {
		if err := checkImage(im); err != nil {
			return err
		}
	}
	if bm.Split != nil && (bm.Split.PartSize <= 0 || bm.Split.Parts < 1 || bm.Split.Size <= 0 ||
		int64(bm.Split.Parts) != (bm.Split.Size+bm.Split.PartSize-1)/bm.Split.PartSize) {
		return fmt.Errorf("split %+v does not add up", *bm.Split)
	}
	return nil
}

// checkTree checks the files of one folder (a repo's tree, or the files
// folder): digests, paths that stay inside and can be written, and no two
// entries that clash (one path with two contents, a file where another
// entry needs a folder).
func checkTree(what string, files []File) error {
	digestAt := map[string]string{}
	folders := map[string]string{} // folder → an entry under it
	for _, f := range files {
		if !digestRE.MatchString(f.Digest) {
			return fmt.Errorf("%s %s: %q is not a sha256 digest", what, f.Path, f.Digest)
		}
		if f.Size < 0 {
			return fmt.Errorf("%s %s: size %d", what, f.Path, f.Size)
		}
		if err := checkPath(f.Path); err != nil {
			return fmt.Errorf("%s: path %q %w", what, f.Path, err)
		}
		p := path.Clean(f.Path)
		if d, ok := digestAt[p]; ok && d != f.Digest {
			return fmt.Errorf("%s %s is listed twice with different contents (%s, %s)", what, f.Path, d, f.Digest)
		}
		digestAt[p] = f.Digest
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			folders[dir] = p
		}
	}
	for p := range digestAt {
		if under, ok := folders[p]; ok {
			return fmt.Errorf("%s %s is a file, but %s needs it to be a folder", what, p, under)
		}
	}
	return nil
}

// checkPath says why a file's path cannot be written where it belongs
// (the error completes "path P …"), or nil.
func checkPath(p string) error {
	if !filepath.IsLocal(filepath.FromSlash(p)) || strings.Contains(p, "\\") {
		return fmt.Errorf("leaves its folder")
	}
	if path.Clean(p) == "." {
		return fmt.Errorf("names the folder itself, not a file in it")
	}
	if strings.IndexFunc(p, func(r rune) bool { return r == unicode.ReplacementChar || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("holds a control character or is not UTF-8")
	}
	for _, c := range strings.Split(path.Clean(p), "/") {
		if len(c) > 255 {
			return fmt.Errorf("has a name longer than 255 bytes")
		}
	}
	return nil
}

// checkImage checks an image item as the registry will need it: its name
// and reference (distribution's grammar: lowercase repository path, a
// tag or a digest; and go-containerregistry's, which the registry's import
// parses it with), the digests it names.
func checkImage(im Image) error {
	ref, err := reference.ParseNormalizedNamed(im.Name)
	if err == nil {
		// The registry's import reads the name with go-containerregistry,
		// which refuses a few names distribution takes ([::1]:5000/a:1).
		_, err = name.ParseReference(im.Name)
	}
	if err != nil {
		return fmt.Errorf("image %q: not an image name the registry can store (%v)", im.Name, err)
	}
	if reference.IsNameOnly(ref) {
		return fmt.Errorf("image %q: the name has no tag or digest (write it as it was pulled, e.g. %s:latest)", im.Name, im.Name)
	}
	if !digestRE.MatchString(im.Digest) {
		return fmt.Errorf("image %s: %q is not a sha256 digest", im.Name, im.Digest)
	}
	if im.Size < 0 {
		return fmt.Errorf("image %s: size %d", im.Name, im.Size)
	}
	for _, b := range im.Blobs {
		if !digestRE.MatchString(b) {
			return fmt.Errorf("image %s: blob %q is not a sha256 digest", im.Name, b)
		}
	}
	if im.Subject != "" && !digestRE.MatchString(im.Subject) {
		return fmt.Errorf("image %s: subject %q is not a sha256 digest", im.Name, im.Subject)
	}
	if d, ok := ref.(reference.Digested); ok && d.Digest().String() != im.Digest {
		return fmt.Errorf("image %s: its name pins %s but its digest is %s", im.Name, d.Digest(), im.Digest)
	}
	return nil
}
