package pypi

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadRequirements(t *testing.T) {
	rs, err := ReadRequirements("testdata/requirements/freeze.txt")
	if err != nil {
		t.Fatal(err)
	}
	type got struct{ name, spec, source string }
	var have []got
	for _, r := range rs {
		have = append(have, got{r.Name, r.Spec, r.Source})
	}
	want := []got{
		{"alpha", "==1.0", "testdata/requirements/freeze.txt:1"},
		{"beta-lib", "==2.0.post1", "testdata/requirements/freeze.txt:2"},
		{"zope-interface", "==6.1", "testdata/requirements/freeze.txt:3"},
		{"certifi", "==2024.2.2", "testdata/requirements/hashes.txt:9"},
		{"charset-normalizer", "==3.3.2", "testdata/requirements/hashes.txt:13"},
		{"requests", "==2.31.0", "testdata/requirements/hashes.txt:15"},
	}
	if !reflect.DeepEqual(have, want) {
		t.Fatalf("got %v\nwant %v", have, want)
	}
	if len(rs[3].Hashes) != 2 || rs[3].Hashes[1] != "dc383c07b76109f368f6106eee2b593b04a011ea4d55f652c6ca24a754d1cdd1" || len(rs[4].Hashes) != 1 || len(rs[5].Hashes) != 0 {
		t.Fatalf("hashes: %v %v %v", rs[3].Hashes, rs[4].Hashes, rs[5].Hashes)
	}
}

func TestParseRequirementsErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"foo @ https://x.internal/foo.tgz", "URL requirement"},
		{"-e ./src", "editable"},
		{"foo==1.0 --hash=md5", "--hash=md5"},
		{"foo==1.0 --hash=sha256:abcd", "not a sha256 digest"},
		{"-r other.txt", "includes are not read"},
		{"foo===", "version specifiers"},
		{"!!", "not a requirement"},
	} {
		_, err := ParseRequirements("r.txt", []byte(tc.in), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "r.txt:1") {
			t.Errorf("%q: got %v, want an error at r.txt:1 saying %q", tc.in, err, tc.want)
		}
	}
}

func TestSpecMatches(t *testing.T) {
	for _, tc := range []struct {
		spec, version string
		want          bool
	}{
		{"alpha", "0.1", true},
		{"alpha==1.0", "1.0", true},
		{"alpha==1.0", "1.0.0", true},
		{"alpha==1.0", "1.1", false},
		{"alpha>=1,<2", "1.5", true},
		{"alpha>=1,<2", "2.0", false},
		{"alpha~=1.4", "1.9", true},
		{"alpha~=1.4", "2.0", false},
		{"Alpha_Beta (>=1.0)", "1.2", true},
	} {
		r, err := ParseSpec(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if got := r.Matches(tc.version); got != tc.want {
			t.Errorf("%s matches %s: got %v, want %v", tc.spec, tc.version, got, tc.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{"Foo.Bar": "foo-bar", "foo__bar": "foo-bar", "FOO-._bar": "foo-bar", "a": "a"} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseRequirements: any input ends in requirements or an error,
// never a panic, and every requirement has a valid normalised name. The
// seed corpus (testdata/requirements) runs as an ordinary test.
func FuzzParseRequirements(f *testing.F) {
	files, _ := filepath.Glob("testdata/requirements/*.txt")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("a==1 \\\n --hash=sha256:" + strings.Repeat("ab", 32) + " \\\n"))
	f.Add([]byte("x[y,z]>=1;python_version<'3'\n--requirement\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseRequirements("fuzz.txt", data, func(string) ([]Requirement, error) { return nil, nil })
		if err != nil {
			return
		}
		for _, r := range rs {
			if !ValidProjectName(r.Name) || Normalize(r.Name) != r.Name {
				t.Fatalf("requirement name %q from %q", r.Name, data)
			}
			for _, h := range r.Hashes {
				if len(h) != 64 {
					t.Fatalf("hash %q", h)
				}
			}
		}
	})
}
