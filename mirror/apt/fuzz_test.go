package apt

import (
	"strings"
	"testing"
)

// The parsers of what an upstream sends: a Release's fields and SHA256
// list, and a Packages index. The seeds run as an ordinary test.

func FuzzParseRelease(f *testing.F) {
	f.Add([]byte("Suite: jammy\nAcquire-By-Hash: yes\nSHA256:\n " + strings.Repeat("a", 64) + " 12 main/binary-amd64/Packages\n"))
	f.Add([]byte("SHA256:\n " + strings.Repeat("b", 64) + " 1 ../../etc/passwd\n"))
	f.Add([]byte("MD5Sum:\n 00 1 x\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		rel, err := parseRelease(b)
		if err != nil {
			return
		}
		for p, ix := range rel.files {
			if !safePath(p) || ix.Size < 0 || len(ix.SHA256) != 64 {
				t.Fatalf("accepted %q %+v", p, ix)
			}
		}
	})
}

func FuzzParsePackages(f *testing.F) {
	f.Add("Package: hello\nVersion: 1.0\nArchitecture: amd64\nFilename: pool/main/h.deb\nSize: 10\nSHA256: " + strings.Repeat("c", 64) + "\n\n")
	f.Add("Package: x\nFilename: /etc/shadow\nSize: 1\nSHA256: " + strings.Repeat("c", 64) + "\n")
	f.Add("Package: x\nSize: -1\n")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, s string) {
		debs, err := parsePackages(strings.NewReader(s), "Packages")
		if err != nil {
			return
		}
		for _, d := range debs {
			if !safePath(d.Filename) || d.Size < 0 || len(d.SHA256) != 64 {
				t.Fatalf("accepted %+v", d)
			}
		}
		newest(debs, 1)
	})
}
