package pypi

import (
	"regexp"
	"strconv"
	"strings"
)

// dist is what a file name says: a wheel's tags, or an sdist.
type dist struct {
	version  string
	wheel    bool
	python   []string // py3, cp311 …
	abi      []string // none, abi3, cp311 …
	platform []string // any, manylinux_2_17_x86_64 …
}

// parseFilename reads a wheel (PEP 427) or sdist file name of project
// (normalised); ok is false for other kinds (eggs, installers) and for
// files of another project.
func parseFilename(project, name string) (dist, bool) {
	if base, ok := strings.CutSuffix(name, ".whl"); ok {
		parts := strings.Split(base, "-")
		if len(parts) != 5 && len(parts) != 6 {
			return dist{}, false
		}
		if Normalize(parts[0]) != project {
			return dist{}, false
		}
		n := len(parts)
		return dist{version: parts[1], wheel: true,
			python: strings.Split(parts[n-3], "."), abi: strings.Split(parts[n-2], "."), platform: strings.Split(parts[n-1], ".")}, true
	}
	var base string
	for _, ext := range []string{".tar.gz", ".zip", ".tar.bz2", ".tgz"} {
		if b, ok := strings.CutSuffix(name, ext); ok {
			base = b
			break
		}
	}
	if base == "" {
		return dist{}, false
	}
	for i := len(base) - 1; i > 0; i-- {
		if base[i] == '-' && Normalize(base[:i]) == project && i+1 < len(base) {
			return dist{version: base[i+1:]}, true
		}
	}
	return dist{}, false
}

// selector is what platforms:, python_versions: and sdists: let through.
type selector struct {
	platforms []string
	pythons   [][2]int
	sdists    bool
}

func newSelector(c Config) selector {
	s := selector{platforms: c.Platforms, sdists: c.SDists}
	for _, v := range c.PythonVersions {
		maj, min, _ := strings.Cut(v, ".")
		a, _ := strconv.Atoi(maj)
		b, _ := strconv.Atoi(min)
		s.pythons = append(s.pythons, [2]int{a, b})
	}
	return s
}

func (s selector) wants(d dist) bool {
	if !d.wheel {
		return s.sdists
	}
	return s.pythonOK(d) && s.platformOK(d)
}

var cpTag = regexp.MustCompile(`^(cp|py)(\d)(\d*)$`)

// pythonOK: one of the wheel's python tags runs on a wanted interpreter
// (py3 and py311 on 3.11; cp311; cp38 with abi3 on 3.8 and later).
func (s selector) pythonOK(d dist) bool {
	if len(s.pythons) == 0 {
		return true
	}
	abi3 := false
	for _, a := range d.abi {
		abi3 = abi3 || a == "abi3"
	}
	for _, t := range d.python {
		m := cpTag.FindStringSubmatch(t)
		if m == nil {
			continue
		}
		maj, _ := strconv.Atoi(m[2])
		for _, want := range s.pythons {
			if maj != want[0] {
				continue
			}
			if m[3] == "" {
				if m[1] == "py" {
					return true
				}
				continue
			}
			min, _ := strconv.Atoi(m[3])
			if min == want[1] || (m[1] == "cp" && abi3 && min <= want[1]) {
				return true
			}
		}
	}
	return false
}

var manylinuxRE = regexp.MustCompile(`^manylinux_(\d+)_(\d+)_(.+)$`)

// legacyManylinux are the PEP 600 names of the older manylinux tags.
var legacyManylinux = map[string]string{"manylinux1": "manylinux_2_5", "manylinux2010": "manylinux_2_12", "manylinux2014": "manylinux_2_17"}

// platformOK: "any", a wanted tag, or a manylinux wheel for an older glibc
// than a wanted manylinux tag of the same architecture.
func (s selector) platformOK(d dist) bool {
	if len(s.platforms) == 0 {
		return true
	}
	for _, p := range d.platform {
		if p == "any" {
			return true
		}
		gp := pep600(p)
		for _, want := range s.platforms {
			if want == p {
				return true
			}
			if m, w := manylinuxRE.FindStringSubmatch(gp), manylinuxRE.FindStringSubmatch(pep600(want)); m != nil && w != nil && m[3] == w[3] {
				if atoiPair(m[1], m[2]) <= atoiPair(w[1], w[2]) {
					return true
				}
			}
		}
	}
	return false
}

func pep600(tag string) string {
	for old, neu := range legacyManylinux {
		if rest, ok := strings.CutPrefix(tag, old+"_"); ok {
			return neu + "_" + rest
		}
	}
	return tag
}

func atoiPair(a, b string) int {
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	return x*1000 + y
}
