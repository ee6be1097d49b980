package goproxy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/module"
)

// FuzzParseGoSum feeds the go.sum parser outside input: it never panics,
// and what it accepts is a valid module version with an h1 hash.
// testdata/gosum/ holds the seed corpus, run as an ordinary test.
func FuzzParseGoSum(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/gosum/*")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := parseGoSum("go.sum", data)
		if err != nil {
			return
		}
		for _, l := range lines {
			if err := module.Check(l.Mod.Path, l.Mod.Version); err != nil {
				t.Fatalf("accepted %v: %v", l.Mod, err)
			}
			if !strings.HasPrefix(l.Hash, "h1:") {
				t.Fatalf("accepted hash %q", l.Hash)
			}
		}
	})
}

func TestParseGoSum(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		lines    int
		err      string
	}{
		{"empty", "", 0, ""},
		{"both lines", "lab.test/a v1.0.0 h1:x=\nlab.test/a v1.0.0/go.mod h1:y=\n", 2, ""},
		{"other algorithm skipped", "lab.test/a v1.0.0 h2:x=\n", 0, ""},
		{"blank lines", "\n\n  \nlab.test/a v1.0.0 h1:x=\n", 1, ""},
		{"two fields", "lab.test/a v1.0.0\n", 0, "go.sum:1: want PATH VERSION HASH"},
		{"bad version", "lab.test/a 1.0 h1:x=\n", 0, "go.sum:1:"},
		{"bad path", "lab.test/a/../b v1.0.0 h1:x=\n", 0, "go.sum:1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseGoSum("go.sum", []byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(got) != tc.lines {
				t.Fatalf("got %d lines, %v; want %d", len(got), err, tc.lines)
			}
		})
	}
}
