package registry

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestBlobFilesOverTLS: over TLS blobFiles copies the file tlsCopySize at a
// time instead of sendfile; whole blobs, ranges across a copy boundary and
// HEADs must come out as on plain HTTP.
func TestBlobFilesOverTLS(t *testing.T) {
	tr := newTestRegistry(t, testConfig("127.0.0.0/8"))
	tlsSrv := httptest.NewTLSServer(tr.Handler())
	t.Cleanup(tlsSrv.Close)

	// Two and a half copy buffers and a bit: full copies, a partial one,
	// and ranges that straddle a boundary.
	blob := make([]byte, 5*tlsCopySize/2+7)
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(blob)
	dg := "sha256:" + hex.EncodeToString(sum[:])
	pushBlob(t, tr.srv.URL, "lab/big", dg, blob)

	servers := []struct {
		name   string
		url    string
		client *http.Client
	}{
		{"plain", tr.srv.URL, http.DefaultClient},
		{"tls", tlsSrv.URL, tlsSrv.Client()},
	}
	cases := []struct {
		name, method, rng string
		status            int
		body              []byte
	}{
		{"whole", http.MethodGet, "", http.StatusOK, blob},
		{"range across a copy boundary", http.MethodGet, fmt.Sprintf("bytes=%d-%d", tlsCopySize-5, tlsCopySize+4), http.StatusPartialContent, blob[tlsCopySize-5 : tlsCopySize+5]},
		{"tail", http.MethodGet, "bytes=-9", http.StatusPartialContent, blob[len(blob)-9:]},
		{"head", http.MethodHead, "", http.StatusOK, nil},
	}
	for _, srv := range servers {
		for _, c := range cases {
			t.Run(srv.name+"/"+c.name, func(t *testing.T) {
				req, _ := http.NewRequest(c.method, srv.url+"/v2/lab/big/blobs/"+dg, nil)
				if c.rng != "" {
					req.Header.Set("Range", c.rng)
				}
				resp, err := srv.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				got, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != c.status || !bytes.Equal(got, c.body) {
					t.Errorf("%d with %d bytes, want %d with %d", resp.StatusCode, len(got), c.status, len(c.body))
				}
				if c.method == http.MethodHead && resp.ContentLength != int64(len(blob)) {
					t.Errorf("HEAD Content-Length %d, want %d", resp.ContentLength, len(blob))
				}
				if resp.Header.Get("Docker-Content-Digest") != dg {
					t.Errorf("Docker-Content-Digest %q, want %q", resp.Header.Get("Docker-Content-Digest"), dg)
				}
			})
		}
	}
}

// pushBlob uploads blob to repo in one PUT, as the pusher user.
func pushBlob(t *testing.T, base, repo, dg string, blob []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil)
	req.SetBasicAuth("admin", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %s", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := url.Parse(base)
	u := b.ResolveReference(loc)
	q := u.Query()
	q.Set("digest", dg)
	u.RawQuery = q.Encode()
	req, _ = http.NewRequest(http.MethodPut, u.String(), bytes.NewReader(blob))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.SetBasicAuth("admin", "s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %s", resp.Status)
	}
}
