package mirror

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLayers keeps the arrows of the mirror packages straight: the store
// imports no format and no bundle, a format (rpm) only the store, bundles
// only the store and the formats; none of them imports another service
// package (registry, dnsd, ntpd, gateway, web, server). The contract
// package api, which imports nothing of ours, is open to all of them.
func TestLayers(t *testing.T) {
	const mod = "github.com/airgapd/airgapd/"
	tests := []struct {
		dir     string
		allowed []string // project packages it may import, besides internal/ and api
	}{
		{dir: ".", allowed: nil},
		{dir: "rpm", allowed: []string{"mirror"}},
		{dir: "bundle", allowed: []string{"mirror", "mirror/rpm", "mirror/charts"}},
	}
	for _, tc := range tests {
		files, err := filepath.Glob(filepath.Join(tc.dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				rel, ok := strings.CutPrefix(p, mod)
				if !ok || strings.HasPrefix(rel, "internal/") || rel == "api" {
					continue
				}
				found := false
				for _, a := range tc.allowed {
					found = found || rel == a
				}
				if !found {
					t.Errorf("%s imports %s", f, p)
				}
			}
		}
	}
}
