package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airgapd/airgapd/api"
)

// bigFileSize is the size of the file that holds an import long enough to
// watch (and kill) it: a few seconds of reading, hashing and writing here.
const bigFileSize = 256 << 20

// bundleImportStatus is the mirror's bundle_import in /api/v1/status.
type bundleImportStatus = api.ImportProgress

// bundleImport reads the mirror's bundle_import from /api/v1/status on
// the control socket, straight from the test (no process started per
// look, so a short import is still seen part-way).
func (in *instance) bundleImport() *bundleImportStatus {
	in.t.Helper()
	sock := filepath.Join(in.dir, "run", "api.sock")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://airgapd/api/v1/status")
	if err != nil {
		in.t.Fatalf("GET /api/v1/status on %s: %v", sock, err)
	}
	defer resp.Body.Close()
	var r statusReport
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		in.t.Fatalf("decode status: %v", err)
	}
	var m api.MirrorStatus
	r.detail(in.t, "mirror", &m)
	return m.BundleImport
}

// backgroundImport is `airgapd bundle import` running while the test
// watches the server.
type backgroundImport struct {
	cmd    *exec.Cmd
	out    bytes.Buffer
	exited chan error
}

func (tg *target) startImport(path string, args ...string) *backgroundImport {
	tg.t.Helper()
	bi := &backgroundImport{exited: make(chan error, 1)}
	bi.cmd = exec.Command(airgapdBin, append([]string{"bundle", "import", path, "--config", tg.config}, args...)...)
	bi.cmd.Stdout, bi.cmd.Stderr = &bi.out, &bi.out
	if err := bi.cmd.Start(); err != nil {
		tg.t.Fatal(err)
	}
	go func() { bi.exited <- bi.cmd.Wait() }()
	tg.t.Cleanup(func() {
		select {
		case <-bi.exited:
		default:
			bi.cmd.Process.Kill()
			<-bi.exited
		}
	})
	return bi
}

// wait returns the command's error once it has exited.
func (bi *backgroundImport) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case err := <-bi.exited:
		bi.exited <- err // so Cleanup sees it exited
		return err
	case <-time.After(limit):
		t.Fatalf("bundle import still running after %s:\n%s", limit, bi.out.String())
		return nil
	}
}

func (bi *backgroundImport) done() bool {
	select {
	case err := <-bi.exited:
		bi.exited <- err
		return true
	default:
		return false
	}
}

// watchImport polls the server's status while the import runs, until seen
// says stop or the import ends; it returns every bundle_import it saw.
func watchImport(t *testing.T, in *instance, bi *backgroundImport, seen func(bundleImportStatus) bool) []bundleImportStatus {
	t.Helper()
	var got []bundleImportStatus
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && !bi.done() {
		if p := in.bundleImport(); p != nil {
			got = append(got, *p)
			if seen(*p) {
				return got
			}
		}
	}
	return got
}

// midVerify: the import is reading the bundle, some blobs are verified
// and staged, some bytes are still to come.
func midVerify(p bundleImportStatus) bool {
	return p.Phase == "verify" && p.BytesDone > 0 && p.BytesDone < p.Bytes && p.BlobsDone > 0
}

// inBigFile: the import is verifying with at least half the big file still
// to read, so what the test does next (a kill) lands well before the
// import could start publishing, however fast this machine reads.
func inBigFile(p bundleImportStatus) bool {
	return midVerify(p) && p.Bytes-p.BytesDone > bigFileSize/2
}

// TestBundleImportThroughSocket: with a server running on an empty
// data_dir, `airgapd bundle import` hands the bundle to the server through
// the control socket: the status shows the import's progress while it
// runs, and without a restart the server serves the repo to dnf, the files
// byte for byte and the images under the same digests. The server killed
// with -9 mid-import, restarted, imports the bundle on a second run:
// what was verified is reused, the repo is published once, each image is
// stored once, staging is empty. A bundle with one flipped byte is refused
// through the socket, naming the item; nothing is published.
func TestBundleImportThroughSocket(t *testing.T) {
	need(t, "createrepo_c", "dnf", "skopeo")
	u := newRPMUpstream(t)
	for _, n := range []string{"alpha", "bravo"} {
		u.add(n, 24<<10)
	}
	u.index()
	k8s := newStandIn(t)
	app := ociImage(t, nil, 96<<10)
	k8s.push(t, "lab/app:v1", app)
	multi := pushIndex(t, k8s, "lab/multi:v1", ociImage(t, nil, 32<<10), ociImage(t, nil, 32<<10))
	want := map[string]string{"registry.k8s.io/lab/app:v1": imageDigest(t, app), "registry.k8s.io/lab/multi:v1": indexDigest(t, multi)}
	images := []string{"registry.k8s.io/lab/app:v1", "registry.k8s.io/lab/multi:v1"}

	b := newBastion(t, u, k8s)
	b.sync()
	small := b.create("small.tar", images)
	// The big file is sparse here; in the bundle (and on the target) it is
	// written out whole.
	f, err := os.Create(filepath.Join(b.files, "big.iso"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Truncate(filepath.Join(b.files, "big.iso"), bigFileSize); err != nil {
		t.Fatal(err)
	}
	big := b.create("big.tar", images)

	// served checks what nodes get from the running instance: dnf, the
	// files, the images' digests.
	served := func(t *testing.T, tg *target, in *instance) {
		t.Helper()
		mirrorURL := in.status().listener("mirror")
		d := newDNFRoot(t)
		d.useRepo(mirrorURL, "up")
		if got := d.packages("up"); !slices.Equal(got, []string{"alpha", "bravo"}) {
			t.Errorf("dnf repoquery on the imported repo: %v", got)
		}
		for _, rel := range []string{"README.txt", "k8s/v1.30/kubeadm", "big.iso"} {
			code, body, _ := mirrorGet(t, mirrorURL+"/files/"+rel, nil)
			if code != http.StatusOK || !bytes.Equal(body, mustRead(t, filepath.Join(b.files, filepath.FromSlash(rel)))) {
				t.Errorf("GET /files/%s: %d, %d bytes; want the bastion's file byte for byte", rel, code, len(body))
			}
		}
		checkImageDigests(t, in, tg.dir, want)
	}

	t.Run("progress and served at once", func(t *testing.T) {
		tg := newTarget(t)
		in := start(t, tg.dir, tg.body)
		bi := tg.startImport(big) // not quiet: its output is checked too
		seen := watchImport(t, in, bi, midVerify)
		if err := bi.wait(t, 3*time.Minute); err != nil {
			t.Fatalf("bundle import through the socket: %v\n%s", err, bi.out.String())
		}
		if !slices.ContainsFunc(seen, midVerify) {
			t.Errorf("the status never showed the import part-way (verify, 0 < bytes_done < bytes); saw %+v", seen)
		}
		t.Logf("status polled %d times during the import; first %+v", len(seen), seen[0])
		last := in.bundleImport()
		if last == nil || last.Phase != "done" || last.BytesDone != last.Bytes || last.BlobsDone != last.Blobs || last.Bytes < bigFileSize {
			t.Errorf("status after the import: %+v; want phase done, every byte and blob", last)
		}
		out := bi.out.String()
		if !strings.Contains(out, "imported: ") || !strings.Contains(out, "repo   up published") || !regexp.MustCompile(`verified [0-9.]+ MiB, [0-9]+ blobs in `).MatchString(out) {
			t.Errorf("bundle import output:\n%s", out)
		}
		if strings.Contains(out, "server") && strings.Contains(out, "stop it") {
			t.Errorf("the import asked for the server to be stopped:\n%s", out)
		}
		served(t, tg, in)
		select {
		case <-in.exited:
			t.Fatalf("the server exited during the import: %v", in.err)
		default:
		}
	})

	t.Run("kill -9 of the server mid-import", func(t *testing.T) {
		tg := newTarget(t)
		in := start(t, tg.dir, tg.body)
		bi := tg.startImport(big, "-q")
		seen := watchImport(t, in, bi, inBigFile)
		if !slices.ContainsFunc(seen, inBigFile) {
			t.Fatalf("the import ended before it was seen part-way (%+v); make bigFileSize larger for this machine:\n%s", seen, bi.out.String())
		}
		in.cmd.Process.Kill()
		in.waitExit(30 * time.Second)
		if err := bi.wait(t, 30*time.Second); err == nil || !strings.Contains(bi.out.String(), "run the import again") {
			t.Errorf("bundle import whose server was killed: %v\n%s; want a failure that says to run it again", err, bi.out.String())
		}
		if p := tg.published(); len(p) > 0 {
			t.Errorf("an import killed while verifying published: %v", p)
		}

		in = start(t, tg.dir, tg.body)
		out, err := tg.importBundle(big)
		if err != nil {
			t.Fatalf("import again after kill -9 and restart: %v\n%s", err, out)
		}
		if strings.Contains(out, " 0 reused") {
			t.Errorf("the second import reused nothing the first had verified:\n%s", out)
		}
		t.Logf("second run: %s", out)
		served(t, tg, in)

		data := filepath.Join(tg.dir, "data")
		if es, err := os.ReadDir(filepath.Join(data, "bundle", "staging")); err != nil || len(es) != 0 {
			t.Errorf("staging after the import: %v, %d entries; want empty", err, len(es))
		}
		snaps, _ := os.ReadDir(filepath.Join(data, "mirror", "repos", "up", "snap"))
		if len(snaps) != 1 || strings.HasPrefix(snaps[0].Name(), ".tmp-") {
			t.Errorf("repo up snapshots: %v; want one published", entryNames(snaps))
		}
		if got := registryRepos(t, filepath.Join(data, "registry", "docker", "registry", "v2", "repositories")); !slices.Equal(got, []string{"registry.k8s.io/lab/app:v1", "registry.k8s.io/lab/multi:v1"}) {
			t.Errorf("registry holds %v; want each image once", got)
		}
		if leftovers, _ := filepath.Glob(filepath.Join(tg.files, ".airgapd-*")); len(leftovers) > 0 {
			t.Errorf("files folder holds leftovers: %v", leftovers)
		}
	})

	t.Run("the command stopped mid-import", func(t *testing.T) {
		tg := newTarget(t)
		in := start(t, tg.dir, tg.body)
		bi := tg.startImport(big, "-q")
		if seen := watchImport(t, in, bi, inBigFile); !slices.ContainsFunc(seen, inBigFile) {
			t.Fatalf("the import ended before it was seen part-way (%+v); make bigFileSize larger for this machine:\n%s", seen, bi.out.String())
		}
		bi.cmd.Process.Kill()
		bi.wait(t, 30*time.Second)
		// The server notices the caller is gone and stops, inside the big
		// file, publishing nothing.
		var last *bundleImportStatus
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			if last = in.bundleImport(); last != nil && last.Phase != "verify" {
				break
			}
			select {
			case <-in.exited:
				t.Fatalf("the server exited: %v", in.err)
			case <-time.After(20 * time.Millisecond):
			}
		}
		if last == nil || last.Phase != "failed" || !strings.Contains(last.Error, "import stopped") || last.BytesDone >= last.Bytes {
			t.Errorf("status after the command was killed: %+v; want failed, stopped part-way", last)
		}
		if p := tg.published(); len(p) > 0 {
			t.Errorf("an import stopped while verifying published: %v", p)
		}
		if out, err := tg.importBundle(big); err != nil || strings.Contains(out, " 0 reused") {
			t.Errorf("import again after the command was killed: %v\n%s", err, out)
		}
	})

	t.Run("flipped byte through the socket", func(t *testing.T) {
		layer := firstLayer(t, app)
		bad := filepath.Join(t.TempDir(), "bad.tar")
		flipByteOf(t, small, bad, layer[len(layer)/2:len(layer)/2+64])
		tg := newTarget(t)
		in := start(t, tg.dir, tg.body)
		out, err := tg.importBundle(bad)
		if err == nil || !strings.Contains(out, "image registry.k8s.io/lab/app:v1") || !strings.Contains(out, "nothing was published") {
			t.Errorf("import with a flipped byte in a layer through the socket: %v\n%s\nwant a refusal naming the image", err, out)
		}
		if p := tg.published(); len(p) > 0 {
			t.Errorf("import with a flipped byte published: %v", p)
		}
		if p := in.bundleImport(); p == nil || p.Phase != "failed" || !strings.Contains(p.Error, "registry.k8s.io/lab/app:v1") {
			t.Errorf("status after the refused import: %+v; want phase failed naming the image", p)
		}
	})
}

// registryRepos lists name:tag for every tag in the registry's storage.
func registryRepos(t *testing.T, root string) []string {
	t.Helper()
	var got []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() || d.Name() != "_manifests" {
			return nil
		}
		repo, _ := filepath.Rel(root, filepath.Dir(p))
		tags, _ := os.ReadDir(filepath.Join(p, "tags"))
		for _, tag := range tags {
			got = append(got, filepath.ToSlash(repo)+":"+tag.Name())
		}
		return filepath.SkipDir
	})
	slices.Sort(got)
	return got
}

func entryNames(es []os.DirEntry) []string {
	var n []string
	for _, e := range es {
		n = append(n, e.Name())
	}
	return n
}

// TestBundleProgressViews: on a terminal (script(1) gives the command a
// pty) create and import draw a bar with the blobs done of all, the bytes
// and the rate, then a final line; not on a terminal they print no bar,
// only lines; with -q nothing but the result.
// progressRate is the rate a progress bar shows: "1.1 GB/s" on a fast disk,
// "850 MB/s" on a slower one.
var progressRate = regexp.MustCompile(`[0-9.]+ [kMGT]?B/s`)

func TestBundleProgressViews(t *testing.T) {
	need(t, "script")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	writeFile(t, filepath.Join(src, "a.txt"), "a\n")
	f, err := os.Create(filepath.Join(src, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Truncate(filepath.Join(src, "big.bin"), 64<<20); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf("mirror: { listen: 127.0.0.1:0, files: %s }\n", filepath.Join(dir, "files")))
	out := filepath.Join(dir, "b.tar")
	inTerminal := func(args ...string) string {
		t.Helper()
		line := airgapdBin
		for _, a := range args {
			line += " '" + a + "'"
		}
		o, err := run(t, 2*time.Minute, "script", "-qec", line, "/dev/null")
		if err != nil {
			t.Fatalf("%s in a terminal: %v\n%s", strings.Join(args, " "), err, o)
		}
		return o
	}
	cases := []struct {
		name     string
		args     []string
		tty      bool
		want     []string
		rate     bool // a transfer rate in the bar, in whatever unit this machine's speed gives
		dontWant []string
	}{
		{name: "create on a terminal", tty: true, rate: true, args: []string{"bundle", "create", "--files", src, "--out", out, "--config", cfg},
			want: []string{"writing 2/2 blobs", "100%", "/67 MB", "wrote 64.0 MiB, 2 blobs in "}},
		{name: "import on a terminal", tty: true, rate: true, args: []string{"bundle", "import", out, "--config", cfg},
			want: []string{"verifying ", "/2 blobs", "verified 64.0 MiB, 2 blobs in ", "imported: 2 blobs verified"}},
		{name: "import not on a terminal", args: []string{"bundle", "import", out, "--config", cfg},
			want: []string{"verified 64.0 MiB, 2 blobs in ", "imported: 2 blobs verified"}, dontWant: []string{"█", "%"}},
		{name: "import quiet", args: []string{"bundle", "import", "-q", out, "--config", cfg},
			want: []string{"imported: "}, dontWant: []string{"verified 64.0 MiB", "█"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var o string
			if c.tty {
				o = inTerminal(c.args...)
			} else {
				var err error
				if o, err = run(t, 2*time.Minute, airgapdBin, c.args...); err != nil {
					t.Fatalf("%v\n%s", err, o)
				}
			}
			for _, w := range c.want {
				if !strings.Contains(o, w) {
					t.Errorf("output lacks %q:\n%s", w, o)
				}
			}
			if c.rate && !progressRate.MatchString(o) {
				t.Errorf("output lacks a rate (%s):\n%s", progressRate, o)
			}
			for _, w := range c.dontWant {
				if strings.Contains(o, w) {
					t.Errorf("output has %q:\n%s", w, o)
				}
			}
		})
	}
}
