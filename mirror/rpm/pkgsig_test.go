package rpm

import (
	"bytes"
	"context"
	"crypto"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/google/rpmpack"
)

// testKey makes an OpenPGP key: RSA, or EdDSA (ed25519) as rpm ≥ 4.16
// signs with when asked.
func testKey(t testing.TB, algo packet.PublicKeyAlgorithm) *openpgp.Entity {
	t.Helper()
	cfg := &packet.Config{Algorithm: algo, RSABits: 2048, DefaultHash: crypto.SHA256}
	e, err := openpgp.NewEntity("airgapd test", "", "test@example.invalid", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func armoredPublic(t *testing.T, e *openpgp.Entity) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

// signedRPM builds name-1.0-1.noarch.rpm, signed by signer when not nil.
func signedRPM(t testing.TB, name string, signer *openpgp.Entity) []byte {
	t.Helper()
	r, err := rpmpack.NewRPM(rpmpack.RPMMetaData{Name: name, Version: "1.0", Release: "1", Arch: "noarch", Summary: name, Licence: "MIT", BuildTime: time.Unix(1700000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	r.AddFile(rpmpack.RPMFile{Name: "/opt/" + name, Body: []byte(strings.Repeat(name, 1000)), Mode: 0o644})
	if signer != nil {
		r.SetPGPSigner(func(b []byte) ([]byte, error) {
			var sig bytes.Buffer
			err := openpgp.DetachSign(&sig, signer, bytes.NewReader(b), &packet.Config{DefaultHash: crypto.SHA256})
			return sig.Bytes(), err
		})
	}
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSigVerifyPackage(t *testing.T) {
	rsaKey := testKey(t, packet.PubKeyAlgoRSA)
	edKey := testKey(t, packet.PubKeyAlgoEdDSA)
	other := testKey(t, packet.PubKeyAlgoEdDSA)
	tampered := signedRPM(t, "tampered", rsaKey)
	tampered[len(tampered)-20] ^= 0xff // in the payload
	dir := t.TempDir()
	tests := []struct {
		name    string
		rpm     []byte
		keys    openpgp.EntityList
		wantErr string // "" = verified
	}{
		{"RSA", signedRPM(t, "rsa", rsaKey), openpgp.EntityList{rsaKey}, ""},
		{"EdDSA", signedRPM(t, "ed", edKey), openpgp.EntityList{edKey}, ""},
		{"one of two keys", signedRPM(t, "ed2", edKey), openpgp.EntityList{rsaKey, edKey}, ""},
		{"unsigned", signedRPM(t, "plain", nil), openpgp.EntityList{rsaKey}, "not signed"},
		{"another key", signedRPM(t, "stranger", other), openpgp.EntityList{rsaKey, edKey}, "not one of gpgkey's"},
		{"payload changed after signing", tampered, openpgp.EntityList{rsaKey}, "bad signature"},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, tt.name+".rpm")
		if err := os.WriteFile(p, tt.rpm, 0o644); err != nil {
			t.Fatal(err)
		}
		err := verifyPackage(p, tt.keys)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v, want verified", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestSigLoadKeys(t *testing.T) {
	k := testKey(t, packet.PubKeyAlgoEdDSA)
	pub := armoredPublic(t, k)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "RPM-GPG-KEY-test")
	os.WriteFile(keyFile, pub, 0o644)
	os.WriteFile(filepath.Join(dir, "binary.gpg"), []byte("not a key"), 0o644)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/el9/os/RPM-GPG-KEY-test" || r.URL.Path == "/keys/KEY" {
			w.Write(pub)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	base := srv.URL + "/el9/os/"
	get := func(ctx context.Context, u string) ([]byte, error) {
		resp, err := http.Get(u)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, os.ErrNotExist
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return b.Bytes(), nil
	}
	tests := []struct {
		name    string
		specs   []string
		keys    int
		wantErr string
	}{
		{"file", []string{keyFile}, 1, ""},
		{"file URL", []string{"file://" + keyFile}, 1, ""},
		{"relative to baseurl", []string{"RPM-GPG-KEY-test"}, 1, ""},
		{"absolute path on the upstream", []string{"/keys/KEY"}, 0, "no such file"}, // a leading / is a local file
		{"absolute URL", []string{srv.URL + "/keys/KEY"}, 1, ""},
		{"two", []string{keyFile, "RPM-GPG-KEY-test"}, 2, ""},
		{"not armored", []string{filepath.Join(dir, "binary.gpg")}, 0, "not an armored OpenPGP public key"},
		{"missing upstream", []string{"nope"}, 0, "gpgkey nope"},
		{"none", nil, 0, "needs gpgkey"},
	}
	for _, tt := range tests {
		got, err := loadKeys(context.Background(), tt.specs, base, get)
		switch {
		case tt.wantErr == "" && (err != nil || len(got.keys) != tt.keys):
			t.Errorf("%s: %d keys, %v; want %d", tt.name, len(got.keys), err, tt.keys)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.wantErr)
		}
	}
}

// TestSigSync syncs an upstream of signed packages with gpgcheck: a good
// set publishes with the key beside it and gpgcheck=1 in the .repo file;
// one unsigned package fails the sync, named, and the last published tree
// stays as it was.
func TestSigSync(t *testing.T) {
	k := testKey(t, packet.PubKeyAlgoRSA)
	pkgs := map[string][]byte{"alpha": signedRPM(t, "alpha", k), "bravo": signedRPM(t, "bravo", k)}
	// The upstream signs its repomd.xml too: passed on, with repo_gpgcheck.
	withRepoSig := func(r *fakeRepo) *fakeRepo {
		r.files["repodata/repomd.xml.asc"] = []byte("-----BEGIN PGP SIGNATURE-----\n")
		r.files["repodata/repomd.xml.key"] = armoredPublic(t, k)
		return r
	}
	up := httptest.NewServer(withRepoSig(newFakeRepo(pkgs, "")))
	defer up.Close()
	keyFile := filepath.Join(t.TempDir(), "KEY")
	os.WriteFile(keyFile, armoredPublic(t, k), 0o644)
	m := newTestMirror(t, up.URL+"/")
	cfg := m.Config()
	cfg.Repos[0].GPGCheck, cfg.Repos[0].GPGKey = true, keyFile
	if err := m.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sync(context.Background(), nil, nil); err != nil {
		t.Fatalf("sync of signed packages: %v", err)
	}
	if rec := get(t, m.Handler(), "/repos/up.repo"); !strings.Contains(rec.Body.String(), "gpgcheck=1\nrepo_gpgcheck=1\ngpgkey=http://192.0.2.1:8081/repos/up/RPM-GPG-KEY-up http://192.0.2.1:8081/repos/up/repodata/repomd.xml.key\n") {
		t.Errorf(".repo file:\n%s", rec.Body.String())
	}
	if rec := get(t, m.Handler(), "/repos/up/RPM-GPG-KEY-up"); rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), armoredPublic(t, k)) {
		t.Errorf("key: %d %q", rec.Code, rec.Body.String())
	}
	first := m.book.State("up").Revision

	pkgs["charlie"] = signedRPM(t, "charlie", nil)
	up.Config.Handler = withRepoSig(newFakeRepo(pkgs, ""))
	_, err := m.Sync(context.Background(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "charlie-1-1.noarch.rpm: not signed") || !strings.Contains(err.Error(), "nothing published") {
		t.Fatalf("sync with an unsigned package: %v", err)
	}
	if rec := get(t, m.Handler(), "/repos/up/Packages/charlie-1-1.noarch.rpm"); rec.Code != http.StatusNotFound {
		t.Errorf("the unsigned package is served: %d", rec.Code)
	}
	if st := m.book.State("up"); st.Revision != first || st.LastResult != "failed" {
		t.Errorf("state after the refused sync: %+v", st)
	}
}
