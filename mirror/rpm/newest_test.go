package rpm

import (
	"slices"
	"testing"
)

func TestVercmp(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "2.0", -1},
		{"2.0.1", "2.0", 1},
		{"2.0.1a", "2.0.1", 1},
		{"5.5p1", "5.5p2", -1},
		{"5.5p10", "5.5p1", 1},
		{"10xyz", "10.1xyz", -1},
		{"xyz10", "xyz10.1", -1},
		{"xyz.4", "8", -1},  // a digit run beats a letter run
		{"2a", "2.0", -1},   // the same, after an equal first run
		{"1.0a", "1.0", 1},  // more runs are newer
		{"001", "1", 0},     // leading zeros do not count
		{"1.002", "1.1", 1}, // 2 > 1, not "002" < "1"
		{"10", "9", 1},      // numbers, not strings
		{"1.0010", "1.9", 1},
		{"1_0", "1.0", 0}, // separators are all alike
		{"1..0", "1.0", 0},
		{"1.0", "1.0.", 0},
		{"b", "a", 1},
		{"a", "B", 1}, // letters compare as bytes: 'B' < 'a'
		{"1b.fc17", "1.fc17", -1},
		{"1g.fc17", "1.fc17", 1},
		{"6.0.rc1", "6.0", 1},
		// '~' sorts before everything, the end of the string included.
		{"1.0~rc1", "1.0", -1},
		{"1.0~rc1", "1.0~rc2", -1},
		{"1.0~rc1~git123", "1.0~rc1", -1},
		{"1.0~rc1", "1.0~rc1", 0},
		{"1.0~rc1", "1.0arc1", -1},
		{"~", "", -1},
		// '^' sorts after the end of the string, before anything else.
		{"1.0^", "1.0", 1},
		{"1.0^git1", "1.0", 1},
		{"1.0^git1", "1.0^git2", -1},
		{"1.0^git1", "1.01", -1},
		{"1.0^20160101", "1.0.1", -1},
		{"1.0^20160101^git1", "1.0^20160101", 1},
		{"1.0^20160102", "1.0^20160101^git1", 1},
		{"1.0~rc1^git1", "1.0~rc1", 1},
		{"1.0^git1~pre", "1.0^git1", -1},
		{"1.0~rc1^git1", "1.0", -1},
		{"1.0^git1", "1.0~rc1", 1},
		{"", "1", -1},
		{"", "", 0},
	}
	for _, tt := range tests {
		if got := rpmvercmp(tt.a, tt.b); got != tt.want {
			t.Errorf("rpmvercmp(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := rpmvercmp(tt.b, tt.a); got != -tt.want {
			t.Errorf("rpmvercmp(%q, %q) = %d, want %d (reversed)", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestVercmpEVR(t *testing.T) {
	tests := []struct {
		name string
		a, b evr
		want int
	}{
		{"epoch beats version", evr{"1", "1.0", "1"}, evr{"0", "9.9", "1"}, 1},
		{"empty epoch is 0", evr{"", "1.0", "1"}, evr{"0", "1.0", "1"}, 0},
		{"epoch as a number", evr{"10", "1.0", "1"}, evr{"9", "1.0", "1"}, 1},
		{"release decides", evr{"0", "1.0", "2.el9"}, evr{"0", "1.0", "10.el9"}, -1},
		{"version before release", evr{"0", "1.1", "1"}, evr{"0", "1.0", "9"}, 1},
	}
	for _, tt := range tests {
		if got := compareEVR(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: compareEVR(%v, %v) = %d, want %d", tt.name, tt.a, tt.b, got, tt.want)
		}
	}
}

func TestNewest(t *testing.T) {
	p := func(name, arch, epoch, ver, rel string) pkg {
		return pkg{Name: name, Arch: arch, EVR: evr{epoch, ver, rel}, Href: name + "-" + ver + "-" + rel + "." + arch + ".rpm"}
	}
	upstream := []pkg{
		p("foo", "x86_64", "0", "1.0", "1"),
		p("foo", "x86_64", "0", "2.0", "1"),
		p("foo", "x86_64", "0", "1.1", "1"),
		p("foo", "aarch64", "0", "1.0", "1"), // its own (name, arch)
		p("bar", "noarch", "0", "1.0", "1"),
		p("baz", "noarch", "1", "0.5", "1"), // epoch 1 beats 2.0
		p("baz", "noarch", "0", "2.0", "1"),
		p("qux", "noarch", "0", "1.0", "1"),
		p("qux", "noarch", "0", "1.0~rc1", "1"),
	}
	hrefs := func(ps []pkg) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Href)
		}
		return out
	}
	tests := []struct {
		name string
		keep int
		want []string
	}{
		{"keep 0 keeps all", 0, hrefs(upstream)},
		{"keep 1 is newest-only", 1, []string{"foo-2.0-1.x86_64.rpm", "foo-1.0-1.aarch64.rpm", "bar-1.0-1.noarch.rpm", "baz-0.5-1.noarch.rpm", "qux-1.0-1.noarch.rpm"}},
		{"keep 2", 2, []string{"foo-2.0-1.x86_64.rpm", "foo-1.1-1.x86_64.rpm", "foo-1.0-1.aarch64.rpm", "bar-1.0-1.noarch.rpm", "baz-0.5-1.noarch.rpm", "baz-2.0-1.noarch.rpm", "qux-1.0-1.noarch.rpm", "qux-1.0~rc1-1.noarch.rpm"}},
		{"keep more than there are", 5, hrefs(upstream)},
	}
	for _, tt := range tests {
		if got := hrefs(newest(upstream, tt.keep)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	// The same version listed twice (two locations) is one version.
	dup := []pkg{p("foo", "noarch", "0", "2.0", "1"), p("foo", "noarch", "0", "2.0", "1"), p("foo", "noarch", "0", "1.0", "1")}
	if got := newest(dup, 1); len(got) != 2 {
		t.Errorf("keep 1 of a version listed twice: %v", hrefs(got))
	}
}
