package e2e

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// regctl runs the regclient CLI with a private HOME, which holds its
// registry settings (the appliance CA, the login).
func (e *regEnv) regctl(t *testing.T, bin, home string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("regctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestRegistrySHA512Regctl: a real client pushes an image whose manifest,
// config and layers are all sha512 digests (regctl image mod --digest-algo
// sha512, over TLS trusting only the appliance CA), and pulls it back by
// that digest; the registry answers each with the sha512 digest header and
// bytes that hash to it.
func TestRegistrySHA512Regctl(t *testing.T) {
	e := startRegistry(t)
	bin := peer(t, "regctl")
	dir, home := t.TempDir(), t.TempDir()
	img := ociImage(t, nil, 32<<10)
	if out, err := e.crane(t, true, "push", writeLayout(t, filepath.Join(dir, "base"), img, "v1"), e.host+"/lab/base:v1"); err != nil {
		t.Fatalf("crane push: %v\n%s", err, out)
	}
	ca, err := os.ReadFile(e.caFile)
	if err != nil {
		t.Fatal(err)
	}
	e.regctl(t, bin, home, "registry", "set", e.host, "--cacert", string(ca))
	e.regctl(t, bin, home, "registry", "login", e.host, "-u", "admin", "-p", "s3cret")

	out := e.regctl(t, bin, home, "image", "mod", e.host+"/lab/base:v1", "--digest-algo", "sha512", "--create", e.host+"/lab/wide:v1")
	// The tag resolves to the manifest's sha256 (distribution keeps tags on
	// its canonical digest); the digest regctl pushed it by is the sha512
	// of the same bytes.
	req, _ := http.NewRequest("GET", "https://"+e.host+"/v2/lab/wide/manifests/v1", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := caClient(t, e.caFile, "").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	tagged, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET lab/wide:v1 after regctl image mod (%s): %s %v\n%s", out, resp.Status, err, tagged)
	}
	sum := sha512.Sum512(tagged)
	digest := "sha512:" + hex.EncodeToString(sum[:])
	t.Logf("regctl pushed lab/wide:v1 by %s", digest)

	body := e.fetchSHA512(t, "/v2/lab/wide/manifests/"+digest, digest)
	var m struct {
		Config struct{ Digest string }   `json:"config"`
		Layers []struct{ Digest string } `json:"layers"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("manifest %s: %v\n%s", digest, err, body)
	}
	blobs := []string{m.Config.Digest}
	for _, l := range m.Layers {
		blobs = append(blobs, l.Digest)
	}
	for _, b := range blobs {
		if !strings.HasPrefix(b, "sha512:") {
			t.Errorf("regctl --digest-algo sha512 left %s in the manifest", b)
			continue
		}
		e.fetchSHA512(t, "/v2/lab/wide/blobs/"+b, b)
	}

	// Pulled back by the sha512 digest into an OCI layout, which regctl
	// verifies blob by blob.
	e.regctl(t, bin, home, "image", "copy", e.host+"/lab/wide@"+digest, "ocidir://"+filepath.Join(dir, "pulled")+":v1")
	for _, d := range append(blobs, digest) {
		p := filepath.Join(dir, "pulled", "blobs", "sha512", strings.TrimPrefix(d, "sha512:"))
		if _, err := os.Stat(p); err != nil {
			t.Errorf("the pulled layout lacks %s: %v", d, err)
		}
	}
}

// fetchSHA512 GETs path from the registry and checks the status, the
// Docker-Content-Digest header and the bytes against the sha512 digest.
func (e *regEnv) fetchSHA512(t *testing.T, path, digest string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://"+e.host+path, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := caClient(t, e.caFile, "").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(body)
	if got := "sha512:" + hex.EncodeToString(sum[:]); resp.StatusCode != http.StatusOK || got != digest {
		t.Fatalf("GET %s: %s, %d bytes hashing to %s", path, resp.Status, len(body), got)
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != digest {
		t.Errorf("GET %s: Docker-Content-Digest %q, want %s", path, h, digest)
	}
	return body
}
