package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// seaweedBin is SeaweedFS's weed, built by scripts/install-test-deps.sh
// (AIRGAPD_SEAWEEDFS, default /var/cache/airgapd-test/seaweedfs).
func seaweedBin(t *testing.T) string {
	t.Helper()
	root := os.Getenv("AIRGAPD_SEAWEEDFS")
	if root == "" {
		root = "/var/cache/airgapd-test/seaweedfs"
	}
	bin := filepath.Join(root, "weed")
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing; scripts/install-test-deps.sh builds it", bin)
		}
		t.Skipf("%s is missing; run scripts/install-test-deps.sh, which builds it", bin)
	}
	return bin
}

// freePorts returns n loopback TCP ports that were free a moment ago,
// for a peer that cannot bind port 0 itself (weed needs its ports up
// front, and tells its parts each other's).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// s3Store is a SeaweedFS server on loopback with one bucket.
type s3Store struct {
	endpoint string // http://127.0.0.1:PORT, the S3 API
	bucket   string
}

// startSeaweedFS runs `weed server` with master, volume, filer and S3 on
// free loopback ports, its data in a temp dir, one identity (AK/SK) and
// the bucket "registry"; it is killed when the test ends.
func startSeaweedFS(t *testing.T) s3Store {
	t.Helper()
	bin := seaweedBin(t)
	dir := t.TempDir()
	p := freePorts(t, 8)
	master := fmt.Sprintf("127.0.0.1:%d.%d", p[0], p[1]) // host:port.grpcPort
	s3cfg := filepath.Join(dir, "s3.json")
	writeFile(t, s3cfg, `{"identities":[{"name":"admin","credentials":[{"accessKey":"AK","secretKey":"SK"}],"actions":["Admin","Read","Write","List","Tagging"]}]}`)
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir="+data,
		"-master.port="+strconv.Itoa(p[0]), "-master.port.grpc="+strconv.Itoa(p[1]),
		"-volume.port="+strconv.Itoa(p[2]), "-volume.port.grpc="+strconv.Itoa(p[3]),
		"-filer", "-filer.port="+strconv.Itoa(p[4]), "-filer.port.grpc="+strconv.Itoa(p[5]),
		"-s3", "-s3.port="+strconv.Itoa(p[6]), "-s3.port.grpc="+strconv.Itoa(p[7]), "-s3.config="+s3cfg,
		"-s3.port.iceberg=0", "-s3.port.lance=0", // on by default, on fixed ports
		"-filer.localSocket="+filepath.Join(dir, "filer.sock"), "-s3.localSocket="+filepath.Join(dir, "s3.sock"),
		"-volume.max=5")
	log := newLogBuffer()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		// weed puts its gRPC sockets in /tmp whatever it is told.
		for i, svc := range []string{"master", "volume", "filer", "s3"} {
			os.Remove(fmt.Sprintf("/tmp/seaweedfs-%s-grpc-%d.sock", svc, p[2*i+1]))
		}
		if t.Failed() {
			t.Logf("weed output:\n%s", log.String())
		}
	})
	st := s3Store{endpoint: fmt.Sprintf("http://127.0.0.1:%d", p[6]), bucket: "registry"}

	// Ready when the S3 API answers and the bucket is made and listed.
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("weed server exited: %v\n%s", cmd.ProcessState, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("SeaweedFS not ready in 90 s:\n%s", log.String())
		}
		resp, err := http.Get(st.endpoint + "/")
		if err == nil {
			resp.Body.Close()
			sh := exec.Command(bin, "shell", "-master="+master)
			sh.Stdin = strings.NewReader("s3.bucket.create -name " + st.bucket + "\ns3.bucket.list\n")
			out, _ := sh.CombinedOutput()
			if strings.Contains(string(out), "  "+st.bucket) || strings.Contains(string(out), st.bucket+"\t") {
				return st
			}
		}
		select {
		case <-exited:
		case <-log.changed():
		case <-time.After(500 * time.Millisecond): // polling the API, not waiting for a fixed time
		}
	}
}

// s3RegistryConfig is the registry keys for storage in st, with gc on or
// off on this host.
func s3RegistryConfig(st s3Store, gc bool) string {
	return fmt.Sprintf(`  gc: {enabled: %v}
  storage:
    s3: {region: us-east-1, bucket: %s, regionendpoint: %q, accesskey: AK, secretkey: SK,
         secure: false, forcepathstyle: true}
`, gc, st.bucket, st.endpoint)
}

// TestRegistrySharedS3: two airgapd hosts on one SeaweedFS bucket. What
// one stores the other serves by digest (pushed, imported, both ways);
// gc runs on the host with gc.enabled: true and is refused, saying where
// to run it, on the other; a config on s3 that does not say is refused by
// `airgapd check` at its line.
func TestRegistrySharedS3(t *testing.T) {
	need(t, "crane")
	st := startSeaweedFS(t)
	a := startRegistryWith(t, s3RegistryConfig(st, true))
	b := startRegistryWith(t, s3RegistryConfig(st, false))
	dir := t.TempDir()

	base, err := random.Layer(64<<10, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	gone := ociImage(t, base, 256<<10) // pushed to a, deleted, collected
	kept := ociImage(t, base, 256<<10) // pushed to b, kept
	push := func(e *regEnv, img, ref string) {
		t.Helper()
		if out, err := e.crane(t, true, "push", img, e.host+"/"+ref); err != nil {
			t.Fatalf("push %s: %v\n%s", ref, err, out)
		}
	}
	pullByDigest := func(e *regEnv, repo, dg string) {
		t.Helper()
		ref := e.host + "/" + repo + "@" + dg
		if got, err := e.crane(t, false, "digest", ref); err != nil || got != dg {
			t.Fatalf("digest of %s: %q (%v)", ref, got, err)
		}
		// crane pull fetches every blob and checks it against its digest.
		out := filepath.Join(dir, strings.ReplaceAll(repo, "/", "_")+"-"+dg[7:19]+".tar")
		if msg, err := e.crane(t, false, "pull", ref, out); err != nil {
			t.Fatalf("pull %s: %v\n%s", ref, err, msg)
		}
	}
	push(a, writeLayout(t, filepath.Join(dir, "gone"), gone, "v1"), "lab/app:gone")
	push(b, writeLayout(t, filepath.Join(dir, "kept"), kept, "v1"), "lab/app:kept")
	pullByDigest(b, "lab/app", imageDigest(t, gone))
	pullByDigest(a, "lab/app", imageDigest(t, kept))

	// An import on b (through its server) is served by a.
	imported := ociImage(t, base, 64<<10)
	tb := writeTarball(t, filepath.Join(dir, "imp.tar"), "lab/imported:v1", imported)
	out, err := run(t, 60*time.Second, airgapdBin, "registry", "import", "--quiet", "--config", b.in.config, tb)
	_, impDigest, found := strings.Cut(strings.TrimSpace(out), "lab/imported:v1@")
	if err != nil || !found {
		t.Fatalf("import on b: %v\n%s", err, out)
	}
	pullByDigest(a, "lab/imported", impDigest)

	if out, err := a.crane(t, true, "delete", a.host+"/lab/app@"+imageDigest(t, gone)); err != nil {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	// gone's own blobs and manifest; base is kept's too.
	var own []string
	for _, d := range blobDigests(t, gone) {
		if !slices.Contains(blobDigests(t, kept), d) {
			own = append(own, d)
		}
	}
	want := append(slices.Clone(own), imageDigest(t, gone))
	slices.Sort(want)

	gc := func(e *regEnv, args ...string) (string, error) {
		return run(t, 120*time.Second, airgapdBin, append([]string{"registry", "gc", "--config", e.in.config}, args...)...)
	}
	for _, args := range [][]string{{"--dry-run"}, {}} {
		out, err := gc(b, args...)
		if err == nil || !strings.Contains(out, "garbage collection is off on this host") || !strings.Contains(out, "registry.gc.enabled: true") {
			t.Fatalf("gc %v on b: %v, want a refusal naming registry.gc.enabled:\n%s", args, err, out)
		}
		t.Logf("gc %v on b refused: %s", args, strings.TrimSpace(out))
	}
	for _, args := range [][]string{{"--dry-run"}, {}} {
		out, err := gc(a, args...)
		if err != nil {
			t.Fatalf("gc %v on a: %v\n%s", args, err, out)
		}
		var got []string
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 2 && strings.HasPrefix(f[0], "sha256:") {
				got = append(got, f[0])
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("gc %v on a lists %v, want %v\n%s", args, got, want, out)
		}
	}
	// The collected blobs are gone from the bucket for b too; the rest
	// is whole on both.
	for _, d := range own {
		if out, err := b.crane(t, false, "blob", b.host+"/lab/app@"+d); err == nil {
			t.Errorf("b still serves collected blob %s (%d bytes)", d, len(out))
		}
	}
	pullByDigest(b, "lab/app", imageDigest(t, kept))
	pullByDigest(a, "lab/imported", impDigest)

	// On s3, a config must say whether this host collects; check says
	// so at the s3 line.
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, fmt.Sprintf("data_dir: %s\nregistry:\n  storage:\n    s3: {region: us-east-1, bucket: registry}\n", filepath.Join(dir, "bad-data")))
	out, err = run(t, 30*time.Second, airgapdBin, "check", "--config", bad)
	if err == nil || !strings.Contains(out, "bad.yaml:4") || !strings.Contains(out, "registry.gc.enabled is not set") {
		t.Fatalf("check of an s3 config without gc: %v, want a problem at bad.yaml:4\n%s", err, out)
	}
}
