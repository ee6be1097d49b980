package apt

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"pault.ag/go/debian/control"
)

// release is a suite's Release file, verified: the files it names with
// their size and SHA256, and whether the upstream serves them by hash.
type release struct {
	fields control.Paragraph
	files  map[string]indexFile // by path under dists/SUITE/
	byHash bool
}

// indexFile is one file a Release names.
type indexFile struct {
	Path   string
	Size   int64
	SHA256 string
}

// maxRelease bounds InRelease and Release; Ubuntu's are about 300 kB.
const maxRelease = 16 << 20

// loadKeyring reads an upstream's public keys: an armored file (.asc) or
// a binary one (.gpg, as /usr/share/keyrings has them).
func loadKeyring(file string) (openpgp.EntityList, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	var ring openpgp.EntityList
	if bytes.Contains(b, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		ring, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	} else {
		ring, err = openpgp.ReadKeyRing(bytes.NewReader(b))
	}
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w; give the upstream's public key (armored or binary)", file, err)
	}
	if len(ring) == 0 {
		return nil, fmt.Errorf("keyring %s holds no key", file)
	}
	return ring, nil
}

// verifyInRelease checks a clearsigned InRelease against ring and returns
// the signed text, the only part that is used: apt too refuses anything
// outside the signed block.
func verifyInRelease(b []byte, ring openpgp.EntityList) ([]byte, error) {
	block, rest := clearsign.Decode(b)
	if block == nil {
		return nil, errors.New("InRelease is not a clearsigned file")
	}
	if len(bytes.TrimSpace(rest)) > 0 || len(bytes.TrimSpace(b[:bytes.Index(b, []byte("-----BEGIN PGP SIGNED MESSAGE-----"))])) > 0 {
		return nil, errors.New("InRelease has text outside its signed block")
	}
	if _, err := block.VerifySignature(ring, nil); err != nil {
		return nil, fmt.Errorf("InRelease: signature does not verify against the keyring: %w", err)
	}
	return block.Plaintext, nil
}

// verifyDetached checks Release against Release.gpg.
func verifyDetached(rel, sig []byte, ring openpgp.EntityList) error {
	var err error
	if bytes.Contains(sig, []byte("-----BEGIN PGP SIGNATURE-----")) {
		_, err = openpgp.CheckArmoredDetachedSignature(ring, bytes.NewReader(rel), bytes.NewReader(sig), nil)
	} else {
		_, err = openpgp.CheckDetachedSignature(ring, bytes.NewReader(rel), bytes.NewReader(sig), nil)
	}
	if err != nil {
		return fmt.Errorf("Release.gpg: signature does not verify against the keyring: %w", err)
	}
	return nil
}

// parseRelease reads a verified Release's fields and its SHA256 list.
func parseRelease(signed []byte) (*release, error) {
	pr, err := control.NewParagraphReader(bytes.NewReader(signed), nil)
	if err != nil {
		return nil, err
	}
	p, err := pr.Next()
	if err != nil {
		return nil, fmt.Errorf("Release: %w", err)
	}
	rel := &release{fields: *p, files: map[string]indexFile{}, byHash: strings.EqualFold(p.Values["Acquire-By-Hash"], "yes")}
	sums, ok := p.Values["SHA256"]
	if !ok {
		return nil, errors.New("Release has no SHA256 list (MD5 and SHA1 alone are not trusted)")
	}
	sc := bufio.NewScanner(strings.NewReader(sums))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("Release: SHA256 line %q is not HASH SIZE PATH", sc.Text())
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if b, herr := hex.DecodeString(f[0]); herr != nil || len(b) != 32 || err != nil || size < 0 {
			return nil, fmt.Errorf("Release: SHA256 line %q is not HASH SIZE PATH", sc.Text())
		}
		if !safePath(f[2]) {
			return nil, fmt.Errorf("Release: path %q leaves the suite's folder", f[2])
		}
		rel.files[f[2]] = indexFile{Path: f[2], Size: size, SHA256: strings.ToLower(f[0])}
	}
	return rel, nil
}

// safePath reports whether p (slash-separated, from outside input) stays
// inside the folder it is relative to.
func safePath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	for _, s := range strings.Split(p, "/") {
		if s == "" || s == "." || s == ".." {
			return false
		}
	}
	return path.Clean(p) == p
}

// wanted reports whether index file p of a Release is one a mirror with
// these components and architectures fetches: Packages (and Sources when
// "source" is listed) of its architectures, Contents, i18n, and whatever
// else a component holds (cnf, dep11: apt on Ubuntu asks for them when
// the Release lists them) unless it names another architecture. Left
// out: pdiffs (apt falls back to the whole index) and the installer.
func wanted(p string, components, arches []string) bool {
	rest, ok := "", false
	for _, c := range components {
		if r, found := strings.CutPrefix(p, c+"/"); found {
			rest, ok = r, true
			break
		}
	}
	if !ok {
		// dists/SUITE/Contents-ARCH.gz (Debian keeps them at the top).
		return contentsFor(p, arches)
	}
	first, _, _ := strings.Cut(rest, "/")
	file := path.Base(rest)
	switch {
	case strings.Contains(rest, ".diff/"):
		return false
	case strings.HasPrefix(first, "binary-"):
		arch := strings.TrimPrefix(first, "binary-")
		return (inList(arch, arches) || arch == "all") && (isIndex(file, "Packages") || file == "Release")
	case first == "source":
		return inList("source", arches) && (isIndex(file, "Sources") || file == "Release")
	case first == "debian-installer" || strings.HasPrefix(first, "installer-"):
		return false
	case strings.HasPrefix(rest, "Contents-"):
		return contentsFor(rest, arches)
	}
	if m := otherArch.FindStringSubmatch(file); m != nil {
		return inList(m[1], arches)
	}
	return true
}

// otherArch finds an architecture in a file name (cnf/Commands-arm64.xz,
// dep11/Components-amd64.yml.gz).
var otherArch = regexp.MustCompile(`-(amd64|arm64|armhf|armel|i386|ppc64el|s390x|riscv64|mips64el|loong64)\b`)

func contentsFor(file string, arches []string) bool {
	for _, a := range append([]string{"all"}, arches...) {
		if isIndex(file, "Contents-"+a) {
			return true
		}
	}
	return false
}

// isIndex reports whether file is base, plain or compressed.
func isIndex(file, base string) bool {
	for _, ext := range []string{"", ".gz", ".xz", ".bz2", ".lzma", ".zst"} {
		if file == base+ext {
			return true
		}
	}
	return false
}

func inList(s string, list []string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
