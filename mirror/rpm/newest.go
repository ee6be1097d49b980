package rpm

import (
	"cmp"
	"slices"
	"strings"
)

// evr is an RPM's epoch:version-release as primary.xml writes it.
type evr struct {
	Epoch, Ver, Rel string
}

func (e evr) String() string {
	s := e.Ver + "-" + e.Rel
	if e.Epoch != "" && e.Epoch != "0" {
		s = e.Epoch + ":" + s
	}
	return s
}

// compareEVR orders two packages' versions as rpm and dnf do: the epoch
// (missing = 0) as a number, then version, then release by rpmvercmp.
func compareEVR(a, b evr) int {
	if c := rpmvercmp(cmp.Or(a.Epoch, "0"), cmp.Or(b.Epoch, "0")); c != 0 {
		return c
	}
	if c := rpmvercmp(a.Ver, b.Ver); c != 0 {
		return c
	}
	return rpmvercmp(a.Rel, b.Rel)
}

// rpmvercmp compares two version (or release) strings by rpm's rules
// (rpm ≥ 4.15): both are split into runs of digits and runs of letters,
// anything else separating them; digit runs compare as numbers (leading
// zeros ignored) and beat letter runs; letter runs compare as bytes; '~'
// sorts before everything, even the end of the string (1.0~rc1 < 1.0);
// '^' sorts after the end but before anything else (1.0 < 1.0^git1 <
// 1.0.1). It returns -1, 0 or 1.
func rpmvercmp(a, b string) int {
	if a == b {
		return 0
	}
	for len(a) > 0 || len(b) > 0 {
		a = strings.TrimLeftFunc(a, isVerSeparator)
		b = strings.TrimLeftFunc(b, isVerSeparator)

		// '~': the one that has it is older, whatever the other holds.
		if strings.HasPrefix(a, "~") || strings.HasPrefix(b, "~") {
			if !strings.HasPrefix(a, "~") {
				return 1
			}
			if !strings.HasPrefix(b, "~") {
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		// '^': newer than the end of the other string, older than
		// anything else there.
		if strings.HasPrefix(a, "^") || strings.HasPrefix(b, "^") {
			switch {
			case a == "":
				return -1
			case b == "":
				return 1
			case !strings.HasPrefix(a, "^"):
				return 1
			case !strings.HasPrefix(b, "^"):
				return -1
			}
			a, b = a[1:], b[1:]
			continue
		}
		if a == "" || b == "" {
			break
		}

		numeric := isDigit(a[0])
		class := isAlpha
		if numeric {
			class = isDigit
		}
		segA, restA := splitRun(a, class)
		segB, restB := splitRun(b, class)
		if segB == "" {
			// Different kinds of run: digits are newer than letters.
			if numeric {
				return 1
			}
			return -1
		}
		if numeric {
			segA = strings.TrimLeft(segA, "0")
			segB = strings.TrimLeft(segB, "0")
			if c := cmp.Compare(len(segA), len(segB)); c != 0 {
				return c
			}
		}
		if c := strings.Compare(segA, segB); c != 0 {
			return c
		}
		a, b = restA, restB
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	}
	return 1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// isVerSeparator is everything rpmvercmp skips between runs: neither a
// letter, a digit, '~' nor '^'.
func isVerSeparator(r rune) bool {
	if r > 0x7f {
		return true
	}
	c := byte(r)
	return !isDigit(c) && !isAlpha(c) && c != '~' && c != '^'
}

// splitRun splits s after its leading run of bytes in class.
func splitRun(s string, class func(byte) bool) (run, rest string) {
	i := 0
	for i < len(s) && class(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// newest keeps, of each (name, arch), the packages with the keep highest
// versions (reposync --newest-only is keep 1); keep ≤ 0 keeps everything.
// Order is preserved, so the rest of the sync sees the upstream's order.
func newest(pkgs []pkg, keep int) []pkg {
	if keep <= 0 {
		return pkgs
	}
	type nameArch struct{ name, arch string }
	versions := map[nameArch][]evr{}
	for _, p := range pkgs {
		k := nameArch{p.Name, p.Arch}
		if !slices.ContainsFunc(versions[k], func(v evr) bool { return compareEVR(v, p.EVR) == 0 }) {
			versions[k] = append(versions[k], p.EVR)
		}
	}
	oldestKept := map[nameArch]evr{}
	for k, vs := range versions {
		slices.SortFunc(vs, func(a, b evr) int { return compareEVR(b, a) })
		oldestKept[k] = vs[min(keep, len(vs))-1]
	}
	return slices.DeleteFunc(slices.Clone(pkgs), func(p pkg) bool {
		return compareEVR(p.EVR, oldestKept[nameArch{p.Name, p.Arch}]) < 0
	})
}
