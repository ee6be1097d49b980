package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/airgapd/airgapd/api"
)

// A pair on loopback, without namespaces or keepalived (TestHAPair has
// those): two airgapd on 127.0.0.1 as primary and standby, an upstream
// registry and an RPM upstream on loopback. It shows what the standby
// copies beyond pushes: content pulled through the primary (tagged, an
// index with one platform cached, a manifest pulled by digest only),
// served by the standby with the upstream gone; deletions following; a
// zone file edited and reloaded on the primary; and, after promote, repos
// that sync from their own upstream again.

type haLoop struct {
	t          *testing.T
	ports      []int // web, dns, mirror, registry of the primary, then the standby's
	p, s       *instance
	zoneFile   string
	tokenFile  string
	upRegistry *standIn
	upRPM      *rpmUpstream
	tr         *http.Transport // trusts the pair's CA
}

func (h *haLoop) config(i int, role, pin string, primary bool) string {
	p := h.ports[4*i : 4*i+4]
	peer := h.ports[4*(1-i)]
	zones, repos, mirrors := "", "  repos: []", ""
	if primary {
		zones = fmt.Sprintf("  zones:\n    - { name: file.test, file: %s }\n", h.zoneFile)
		repos = fmt.Sprintf("  repos:\n    - { name: up, baseurl: %q }", h.upRPM.url())
		mirrors = fmt.Sprintf("  mirrors:\n    - { name: upstream.test, url: %q }\n", h.upRegistry.srv.URL)
	}
	return fmt.Sprintf(`
advertise: { name: admin.loop.test, addresses: [127.0.0.1] }
web: { listen: "127.0.0.1:%d", tls: auto }
dns:
  listen: ["127.0.0.1:%d"]
%s
mirror:
  listen: "127.0.0.1:%d"
%s
registry:
  listen: "127.0.0.1:%d"
  tls: auto
  users: [{name: admin, password_hash: "%s"}]
  pull_from: [127.0.0.0/8]
%s
ha:
  role: %s
  peer: "https://127.0.0.1:%d"
  peer_token_file: %s
  vip: 127.0.0.10/8
  interface: lo
  virtual_router_id: 7
  follow_every: 1s
  %s
`, p[0], p[1], zones, p[2], repos, p[3], registryTestHash, mirrors, role, peer, h.tokenFile, pin)
}

func TestHALoopback(t *testing.T) {
	need(t, "dig", "createrepo_c")
	h := &haLoop{t: t, ports: freePorts(t, 8), upRegistry: newStandIn(t), upRPM: newRPMUpstream(t)}
	h.upRPM.add("alpha", 20000)
	h.upRPM.index()
	h.zoneFile = filepath.Join(t.TempDir(), "file.test.zone")
	writeFile(t, h.zoneFile, "www 300 IN A 10.9.0.1\n")
	h.tokenFile = filepath.Join(t.TempDir(), "ha-peer.token")
	h.p = start(t, t.TempDir(), h.config(0, "primary", "", true))
	pin := h.token()
	h.s = start(t, t.TempDir(), h.config(1, "standby", "peer_ca_sha256: "+pin, false))
	if out, err := run(t, 90*time.Second, airgapdBin, "mirror", "sync", "--config", h.p.config, "up"); err != nil {
		t.Fatalf("mirror sync on the primary: %v\n%s", err, out)
	}

	// Content that exists on the primary only because it was pulled
	// through: a tag, one platform of an index, a manifest by digest.
	img := ociImage(t, nil, 32<<10)
	h.upRegistry.push(t, "lib/busybox:1", img)
	amd, arm := ociImage(t, nil, 16<<10), ociImage(t, nil, 16<<10)
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: amd}, mutate.IndexAddendum{Add: arm})
	h.pushIndex("lib/multi:1", idx)
	bare := ociImage(t, nil, 8<<10)
	h.upRegistry.push(t, "lib/bare:x", bare)
	imgD, amdD, armD, bareD := imageDigest(t, img), imageDigest(t, amd), imageDigest(t, arm), imageDigest(t, bare)
	idxD, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"upstream.test/lib/busybox:1", "upstream.test/lib/multi@" + amdD, "upstream.test/lib/bare@" + bareD} {
		if err := h.pull(0, ref); err != nil {
			t.Fatalf("pull %s through the primary: %v", ref, err)
		}
	}
	if d, err := h.head(0, "upstream.test/lib/multi:1"); err != nil || d != idxD.String() {
		t.Fatalf("the index through the primary: %s %v, want %s", d, err, idxD)
	}
	h.upRegistry.srv.Close() // the upstream is gone from here on

	start := time.Now()
	for _, ref := range []string{"upstream.test/lib/busybox@" + imgD, "upstream.test/lib/busybox:1", "upstream.test/lib/multi@" + amdD, "upstream.test/lib/bare@" + bareD} {
		eventually(t, 10*time.Second, ref+" served by the standby", func() (bool, string) {
			err := h.pull(1, ref)
			return err == nil, fmt.Sprint(err)
		})
	}
	t.Logf("pulled-through content on the standby %s after it was cached on the primary", time.Since(start).Round(time.Millisecond))
	eventually(t, 10*time.Second, "the index's tag on the standby", func() (bool, string) {
		d, err := h.head(1, "upstream.test/lib/multi:1")
		return err == nil && d == idxD.String(), fmt.Sprint(d, err)
	})
	for i := range 2 {
		if err := h.pull(i, "upstream.test/lib/multi@"+armD); err == nil || !strings.Contains(err.Error(), "MANIFEST_UNKNOWN") {
			t.Errorf("the platform never pulled, on host %d: %v, want MANIFEST_UNKNOWN on both", i, err)
		}
	}

	// Deletions follow: a tag, and a manifest by digest.
	(&haLab{t: t}).control(h.p, "DELETE", "/api/v1/registry/tags?repo=upstream.test/lib/busybox&tag=1", "", 200)
	h.deleteManifest(0, "upstream.test/lib/bare", bareD)
	for _, ref := range []string{"upstream.test/lib/busybox:1", "upstream.test/lib/bare@" + bareD} {
		eventually(t, 10*time.Second, ref+" gone from the standby", func() (bool, string) {
			err := h.pull(1, ref)
			return err != nil && strings.Contains(err.Error(), "MANIFEST_UNKNOWN"), fmt.Sprint(err)
		})
	}

	// A record added to the primary's zone file, then SIGHUP.
	if got := h.dig(1, "www.file.test"); got != "10.9.0.1" {
		t.Errorf("www.file.test on the standby: %q, want 10.9.0.1", got)
	}
	writeFile(t, h.zoneFile, "www 300 IN A 10.9.0.1\nnew 300 IN A 10.9.0.2\n")
	h.p.signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "new.file.test on the primary after SIGHUP", func() (bool, string) {
		got := h.dig(0, "new.file.test")
		return got == "10.9.0.2", got
	})
	added := time.Now()
	eventually(t, 10*time.Second, "new.file.test on the standby", func() (bool, string) {
		got := h.dig(1, "new.file.test")
		return got == "10.9.0.2", got
	})
	t.Logf("zone file record on the standby %s after the primary served it", time.Since(added).Round(time.Millisecond))
	eventually(t, 10*time.Second, "every kind in sync on the standby", func() (bool, string) {
		var st haStatus
		h.s.status().detail(t, "ha", &st)
		ok := true
		for _, k := range []string{"config", "zones", "ca", "tokens", "repos", "images"} {
			ok = ok && st.inSync(k)
		}
		return ok, fmt.Sprintf("%+v", st)
	})

	// Promote: the repo's upstream is the RPM upstream again, not the
	// old primary's /repos/up/, and a sync here reaches it.
	h.upRPM.add("bravo", 20000)
	h.upRPM.index()
	h.p.cmd.Process.Kill()
	h.p.waitExit(10 * time.Second)
	out, err := run(t, 60*time.Second, airgapdBin, "ha", "promote", "--socket", filepath.Join(h.s.dir, "run", "api.sock"))
	if err != nil || !strings.Contains(out, "repos up sync from their own upstreams again") {
		t.Fatalf("ha promote: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(h.s.config); !strings.Contains(string(b), h.upRPM.url()) || strings.Contains(string(b), "/repos/up/") {
		t.Errorf("after promote the repo does not name its own upstream %s:\n%s", h.upRPM.url(), b)
	}
	if out, err := run(t, 90*time.Second, airgapdBin, "mirror", "sync", "--config", h.s.config, "up"); err != nil {
		t.Fatalf("mirror sync on the promoted host: %v\n%s", err, out)
	}
	var m api.MirrorStatus
	h.s.status().detail(t, "mirror", &m)
	if len(m.Repos) != 1 || m.Repos[0].Packages != 2 {
		t.Errorf("repo up on the promoted host after a sync: %+v, want alpha and bravo", m.Repos)
	}
}

// token makes the primary's ha-peer token and returns its CA fingerprint.
func (h *haLoop) token() string {
	body := (&haLab{t: h.t}).control(h.p, "POST", "/api/v1/tokens", `{"name":"ha-peer"}`, 201)
	var r struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Token == "" {
		h.t.Fatalf("token: %s", body)
	}
	writeFile(h.t, h.tokenFile, r.Token+"\n")
	data, err := os.ReadFile(filepath.Join(h.p.dir, "data", "pki", "ca.crt"))
	if err != nil {
		h.t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(data)
	h.tr = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	h.t.Cleanup(h.tr.CloseIdleConnections)
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:])
}

func (h *haLoop) ref(i int, ref string) name.Reference {
	r, err := name.ParseReference(fmt.Sprintf("127.0.0.1:%d/%s", h.ports[4*i+3], ref))
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *haLoop) pull(i int, ref string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	img, err := remote.Image(h.ref(i, ref), remote.WithTransport(h.tr), remote.WithContext(ctx))
	if err != nil {
		return err
	}
	return readBlobs(img)
}

func (h *haLoop) head(i int, ref string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := remote.Head(h.ref(i, ref), remote.WithTransport(h.tr), remote.WithContext(ctx))
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}

func (h *haLoop) deleteManifest(i int, repo, digest string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := remote.Delete(h.ref(i, repo+"@"+digest), remote.WithTransport(h.tr), remote.WithContext(ctx),
		remote.WithAuth(&authn.Basic{Username: "admin", Password: "s3cret"})); err != nil {
		h.t.Fatalf("delete %s@%s: %v", repo, digest, err)
	}
}

// pushIndex pushes idx to the upstream stand-in.
func (h *haLoop) pushIndex(ref string, idx v1.ImageIndex) {
	r, err := name.ParseReference(h.upRegistry.host+"/"+ref, name.Insecure)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx, remote.WithAuth(&authn.Basic{Username: "admin", Password: "s3cret"})); err != nil {
		h.t.Fatalf("push %s to the stand-in: %v", ref, err)
	}
}

func (h *haLoop) dig(i int, qname string) string {
	out, _ := run(h.t, 10*time.Second, "dig", "+short", "+time=1", "+tries=1", "-p", fmt.Sprint(h.ports[4*i+1]), "@127.0.0.1", qname)
	return strings.TrimSpace(out)
}
