package pypi

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePage(t *testing.T) {
	base, _ := url.Parse("http://127.0.0.1:1/simple/alpha/")
	b, _ := os.ReadFile("testdata/pages/alpha.html")
	fs, err := parsePage(base, "text/html; charset=utf-8", b)
	if err != nil || len(fs) != 2 {
		t.Fatalf("alpha: %v %+v", err, fs)
	}
	if f := fs[0]; f.URL != "http://127.0.0.1:1/f/alpha-1.0-py3-none-any.whl" || f.RequiresPython != ">=3.8" || !f.Metadata || !strings.HasPrefix(f.MetadataSHA256, "7d3a") || f.Yanked {
		t.Errorf("alpha wheel: %+v", f)
	}
	if f := fs[1]; !f.Yanked || f.YankedReason != "broken" || f.URL != "https://files.example.internal/alpha-1.0.tar.gz" {
		t.Errorf("alpha sdist: %+v", f)
	}
	b, _ = os.ReadFile("testdata/pages/beta.json")
	fs, err = parsePage(base, typeJSON, b)
	if err != nil || len(fs) != 2 {
		t.Fatalf("beta: %v %+v", err, fs)
	}
	if f := fs[0]; f.SHA256 != "ab" || f.Size != 10 || f.MetadataSHA256 != "cd" || f.URL != "http://127.0.0.1:1/f/beta-2.0-py3-none-any.whl" {
		t.Errorf("beta wheel: %+v", f)
	}
	if f := fs[1]; !f.Yanked || f.YankedReason != "bad" || !f.Metadata || f.MetadataSHA256 != "" || f.SHA256 != "" {
		t.Errorf("beta sdist: %+v", f)
	}
}

// FuzzParsePage: an upstream's page, HTML or JSON, never panics the
// parser; the seed corpus (testdata/pages) runs as an ordinary test.
func FuzzParsePage(f *testing.F) {
	files, _ := filepath.Glob("testdata/pages/*")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b, strings.HasSuffix(p, ".json"))
	}
	base, _ := url.Parse("http://127.0.0.1:1/simple/x/")
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		ct := "text/html"
		if asJSON {
			ct = typeJSON
		}
		fs, err := parsePage(base, ct, data)
		if err != nil {
			return
		}
		for _, fl := range fs {
			parseFilename("x", fl.Filename)
		}
	})
}
