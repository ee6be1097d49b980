package bundle

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzBundleManifest: a manifest read from a bundle either fails with an
// error or passes Validate, never a panic.
func FuzzBundleManifest(f *testing.F) {
	d := "sha256:" + strings.Repeat("ab", 32)
	good, err := json.Marshal(Manifest{Format: Format, Blobs: []Blob{{Digest: d, Size: 3}},
		Files: []File{{Path: "a/b.txt", Digest: d, Size: 3}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"format":"` + Format + `","files":[{"path":"../../etc/passwd","digest":"` + d + `","size":3}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		bm, err := parseManifest(b)
		if err != nil {
			return
		}
		for _, fl := range bm.Files {
			if strings.Contains("/"+fl.Path+"/", "/../") || strings.HasPrefix(fl.Path, "/") {
				t.Errorf("manifest accepted with a file path %q outside the files folder", fl.Path)
			}
		}
	})
}
