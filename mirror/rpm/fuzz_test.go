package rpm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// The parsers below read what an upstream or a mirrorlist service sends:
// whatever the bytes, they return an error or a result, never panic, and
// what they return keeps their promises.

func FuzzParseMetalink(f *testing.F) {
	if b, err := os.ReadFile("testdata/metalink.xml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`<metalink><files><file name="repomd.xml"><size>1</size><verification><hash type="sha256">ab</hash></verification><resources><url preference="9">http://a/repodata/repomd.xml</url></resources></file></files></metalink>`))
	f.Add([]byte(`<metalink><files><file name="repomd.xml"></file></files>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ml, err := parseMetalink(b)
		if err != nil {
			return
		}
		for _, base := range ml.bases {
			if !httpURL(base + "repodata/repomd.xml") {
				t.Errorf("base %q does not make an http(s) URL of repomd.xml", base)
			}
		}
		if len(ml.versions) == 0 {
			t.Errorf("a metalink with no version of repomd.xml was accepted")
		}
	})
}

func FuzzParseMirrorlist(f *testing.F) {
	f.Add([]byte("# a comment\nhttp://a/$releasever/\n\nftp://b/\nhttps://c/${basearch}\n"), "9")
	f.Add([]byte("http://a/$unknown/\n"), "")
	f.Fuzz(func(t *testing.T, b []byte, releasever string) {
		for _, base := range parseMirrorlist(b, map[string]string{"releasever": releasever, "basearch": "x86_64"}) {
			if !httpURL(base) || !strings.HasSuffix(base, "/") {
				t.Errorf("base %q is not an http(s) URL ending in /", base)
			}
		}
	})
}

// FuzzRpmvercmp: the order is total — antisymmetric and reflexive.
func FuzzRpmvercmp(f *testing.F) {
	for _, s := range [][2]string{{"1.0", "1.0.1"}, {"1.0~rc1", "1.0"}, {"1.0^git1", "1.0.1"}, {"2a", "2.a"}, {"010", "10"}, {"", "~"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := rpmvercmp(a, b), rpmvercmp(b, a)
		if ab != -ba {
			t.Errorf("rpmvercmp(%q, %q) = %d but rpmvercmp(%q, %q) = %d", a, b, ab, b, a, ba)
		}
		if ab < -1 || ab > 1 {
			t.Errorf("rpmvercmp(%q, %q) = %d", a, b, ab)
		}
		if rpmvercmp(a, a) != 0 {
			t.Errorf("rpmvercmp(%q, %q) != 0", a, a)
		}
	})
}

// FuzzVerifyPackage: any bytes where a package should be are refused or
// accepted, never a panic; only a package signed by the key passes.
func FuzzVerifyPackage(f *testing.F) {
	key := testKey(f, packet.PubKeyAlgoEdDSA)
	f.Add(signedRPM(f, "signed", key))
	f.Add(signedRPM(f, "unsigned", nil))
	f.Add([]byte("\xed\xab\xee\xdb not an rpm"))
	keys := openpgp.EntityList{key}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "p.rpm")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_ = verifyPackage(p, keys)
	})
}
