package pypi

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	pep440 "github.com/aquasecurity/go-pep440-version"
)

// Requirement is one project to mirror: its normalised name, the versions
// wanted and, from a requirements file with hashes, the sha256 digests a
// file must have (pip --require-hashes: any one of them).
type Requirement struct {
	Name      string // normalised (PEP 503)
	Spec      string // "==1.2", ">=1,<2", "" for every version
	Hashes    []string
	Source    string // file:line, or the packages: entry
	specifier pep440.Specifiers
}

// Matches reports whether version v is one the requirement wants. A
// version PEP 440 cannot read matches only an empty spec.
func (r Requirement) Matches(v string) bool {
	if r.Spec == "" {
		return true
	}
	pv, err := pep440.Parse(v)
	if err != nil {
		return false
	}
	return r.specifier.Check(pv)
}

// HashOK reports whether a file of sha256 sum may be taken for r.
func (r Requirement) HashOK(sum string) bool {
	if len(r.Hashes) == 0 {
		return true
	}
	for _, h := range r.Hashes {
		if h == sum {
			return true
		}
	}
	return false
}

var (
	nameRE   = regexp.MustCompile(`^(?i)([a-z0-9]|[a-z0-9][a-z0-9._-]*[a-z0-9])$`)
	normRE   = regexp.MustCompile(`[-_.]+`)
	reqRE    = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(\(?[^;]*?\)?)\s*$`)
	hashOpts = regexp.MustCompile(`(?:^|\s)--hash(?:=|\s+)(\S+)`)
)

// Normalize is a project name as PEP 503 writes it: lower case, runs of
// '-', '_' and '.' as one '-'.
func Normalize(name string) string { return strings.ToLower(normRE.ReplaceAllString(name, "-")) }

// ValidProjectName reports whether name is a project name (PEP 508).
func ValidProjectName(name string) bool { return nameRE.MatchString(name) }

// ParseSpec reads a packages: entry: a name and optional PEP 440 version
// specifiers, e.g. "requests>=2.31,<3".
func ParseSpec(s string) (Requirement, error) {
	r, err := parseLine(strings.TrimSpace(s))
	if err != nil {
		return r, err
	}
	r.Source = "packages: " + s
	return r, nil
}

// parseLine reads one requirement (no options but --hash).
func parseLine(line string) (Requirement, error) {
	var r Requirement
	for _, m := range hashOpts.FindAllStringSubmatch(line, -1) {
		algo, sum, ok := strings.Cut(m[1], ":")
		if !ok {
			return r, fmt.Errorf("--hash=%s: write --hash=sha256:HEX", m[1])
		}
		if algo != "sha256" {
			continue // pip's other algorithms; the index gives sha256
		}
		if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
			return r, fmt.Errorf("--hash=%s: not a sha256 digest", m[1])
		}
		r.Hashes = append(r.Hashes, strings.ToLower(sum))
	}
	line = hashOpts.ReplaceAllString(line, "")
	if strings.Contains(line, "--hash") {
		return r, fmt.Errorf("%q: write --hash=sha256:HEX", line)
	}
	line, _, _ = strings.Cut(line, ";") // environment markers: mirror for every environment
	line = strings.TrimSpace(line)
	if strings.Contains(line, "@") || strings.Contains(line, "://") {
		return r, fmt.Errorf("%q: a URL requirement cannot be mirrored from an index; pin name==version", line)
	}
	m := reqRE.FindStringSubmatch(line)
	if m == nil || !ValidProjectName(m[1]) {
		return r, fmt.Errorf("%q is not a requirement (name, then version specifiers)", line)
	}
	r.Name = Normalize(m[1])
	r.Spec = strings.ReplaceAll(strings.Trim(m[3], "() "), " ", "")
	if r.Spec != "" {
		s, err := pep440.NewSpecifiers(r.Spec)
		if err != nil {
			return r, fmt.Errorf("%q: version specifiers: %v", line, err)
		}
		r.specifier = s
	}
	return r, nil
}

// maxInclude bounds -r nesting (a file that includes itself).
const maxInclude = 8

// ReadRequirements reads a requirements file and those it includes with
// -r (relative to it).
func ReadRequirements(path string) ([]Requirement, error) {
	return readRequirements(path, 0)
}

func readRequirements(path string, depth int) ([]Requirement, error) {
	if depth > maxInclude {
		return nil, fmt.Errorf("%s: -r includes nest deeper than %d (a loop?)", path, maxInclude)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("requirements: %w", err)
	}
	return ParseRequirements(path, b, func(inc string) ([]Requirement, error) {
		if !filepath.IsAbs(inc) {
			inc = filepath.Join(filepath.Dir(path), inc)
		}
		return readRequirements(inc, depth+1)
	})
}

// ParseRequirements reads pip's requirements-file format (name is for
// messages): one requirement a line, '\' continues a line, '#' starts a
// comment, --hash options per requirement, -r/--requirement includes
// (through include; nil refuses them), other options (--index-url, -c,
// --find-links …) ignored. Editable and URL requirements are refused.
func ParseRequirements(name string, data []byte, include func(string) ([]Requirement, error)) ([]Requirement, error) {
	var out []Requirement
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := lines[i]
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + lines[i]
		}
		line = strings.TrimSuffix(line, `\`)
		if j := commentStart(line); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		where := fmt.Sprintf("%s:%d", name, start)
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "-r") || strings.HasPrefix(line, "--requirement"):
			f := strings.TrimSpace(strings.TrimLeft(strings.TrimPrefix(strings.TrimPrefix(line, "--requirement"), "-r"), "= "))
			if include == nil || f == "" {
				return nil, fmt.Errorf("%s: -r %q: includes are not read here", where, f)
			}
			rs, err := include(f)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			out = append(out, rs...)
			continue
		case strings.HasPrefix(line, "-e") || strings.HasPrefix(line, "--editable"):
			return nil, fmt.Errorf("%s: an editable requirement cannot be mirrored; pin name==version", where)
		case strings.HasPrefix(line, "-"):
			continue // --index-url, -c, --find-links, --trusted-host …
		}
		r, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		r.Source = where
		out = append(out, r)
	}
	return out, nil
}

// commentStart is where a '#' comment begins: at the line's start or
// after white space, as pip reads it.
func commentStart(line string) int {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return i
		}
	}
	return -1
}
