// Command regbench uploads one blob to each registry under test, then
// times pulling it back (GET /v2/NAME/blobs/DIGEST) from each, rotating the
// order, against reading the same file, in two states of the page cache:
// warm (every copy of the blob cached, as on a host that served it a moment
// ago) and cold (each copy's pages evicted with posix_fadvise(DONTNEED)
// just before it is read, so the bytes come off the disk). It prints the
// median rate of each and the ratios. Every reader does the same work with
// the bytes: 1 MiB reads into a buffer that is then dropped. Bounded: -runs
// rounds per state, each reading the blob once per target. Used by run.sh;
// not part of `make test`.
package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

type target struct {
	name, base, user, pass string
	// storage is the registry's filesystem rootdirectory; cold reads
	// evict the blob's data file under it.
	storage string
	// file, for a plain file server (regbench -serve): the file it serves,
	// so there is nothing to upload.
	file string
}

func main() {
	var (
		file    = flag.String("file", "", "the blob")
		runs    = flag.Int("runs", 5, "rounds per cache state (each reads the blob once from every target)")
		caFile  = flag.String("cacert", "", "CA for https targets")
		states  = flag.String("cache", "warm,cold", "page-cache states to measure, in order: warm, cold")
		serve   = flag.String("serve", "", "instead: serve -file as every blob on this address with a bare net/http server")
		cert    = flag.String("tlscert", "", "with -serve: certificate for TLS")
		key     = flag.String("tlskey", "", "with -serve: its key")
		targets targetFlags
	)
	flag.Var(&targets, "target", "NAME=URL[,USER:PASS][,storage=DIR|file=PATH]; repeat (DIR: the registry's filesystem rootdirectory, PATH: the file a -serve target serves; one is needed for cold)")
	flag.Parse()
	if *serve != "" && *file != "" {
		check(serveFile(*serve, *file, *cert, *key))
		return
	}
	if *file == "" || len(targets) == 0 || *runs < 1 || *runs > 50 {
		fmt.Fprintln(os.Stderr, "usage: regbench -file F -target NAME=URL[,USER:PASS][,storage=DIR|file=PATH]… [-runs N (1..50)] [-cacert CA] [-cache warm,cold]\n       regbench -file F -serve ADDR [-tlscert C -tlskey K]")
		os.Exit(2)
	}
	client, err := newClient(*caFile)
	check(err)
	f, err := os.Open(*file)
	check(err)
	h := sha256.New()
	size, err := io.Copy(h, f)
	f.Close()
	check(err)
	dg := "sha256:" + hex.EncodeToString(h.Sum(nil))
	fmt.Printf("blob %s, %d MiB\n", dg, size>>20)

	// paths: the file each reader's bytes come from, for eviction and
	// the page-cache checks.
	paths := map[string]string{"disk": *file}
	for _, t := range targets {
		if t.file == "" {
			check(upload(client, t, *file, dg, size))
		}
		// One verified read before timing: the content is right.
		got, err := pull(client, t, dg, true)
		check(err)
		if got != size {
			check(fmt.Errorf("%s served %d bytes, want %d", t.name, got, size))
		}
		switch {
		case t.file != "":
			paths[t.name] = t.file
		case t.storage != "":
			hexd := strings.TrimPrefix(dg, "sha256:")
			paths[t.name] = filepath.Join(t.storage, "docker", "registry", "v2", "blobs", "sha256", hexd[:2], hexd, "data")
		}
	}
	order := append([]string{"disk"}, names(targets)...)
	b := &bench{client: client, targets: targets, file: *file, dg: dg, size: size, runs: *runs, paths: paths, order: order}
	for _, state := range strings.Split(*states, ",") {
		cold := state == "cold"
		if !cold && state != "warm" {
			check(fmt.Errorf("-cache: %q is neither warm nor cold", state))
		}
		for _, name := range order {
			if cold && paths[name] == "" {
				check(fmt.Errorf("cold reads need %s's storage=DIR to evict its copy of the blob", name))
			}
		}
		b.measure(state, cold)
		if l, err := os.ReadFile("/proc/loadavg"); err == nil {
			fmt.Printf("load average after the %s rounds: %s", state, l)
		}
	}
}

// bench is one run's fixed inputs: the blob, the targets and the order
// they are read in.
type bench struct {
	client  *http.Client
	targets targetFlags
	file    string
	dg      string
	size    int64
	runs    int
	paths   map[string]string // the file each reader's bytes come from
	order   []string
}

// measure times b.runs rounds of reads with the page cache in state, and
// prints the medians and ratios.
func (b *bench) measure(state string, cold bool) {
	rates := map[string][]float64{}
	// cachedBefore and cachedAfter: the fraction of each copy's pages in
	// the page cache right before and right after each timed read.
	cachedBefore := map[string][]float64{}
	cachedAfter := map[string][]float64{}
	for r := range b.runs {
		// Rotate the order every round so none always goes first.
		for i := range b.order {
			name := b.order[(i+r)%len(b.order)]
			if path := b.paths[name]; path != "" {
				if cold {
					check(evict(path))
				}
				frac, err := cachedFraction(path)
				check(err)
				cachedBefore[name] = append(cachedBefore[name], frac)
				if cold && frac > 0.01 {
					check(fmt.Errorf("%s: %.1f%% of %s still cached after posix_fadvise(DONTNEED); cold numbers would be wrong", name, 100*frac, path))
				}
			}
			start := time.Now()
			var n int64
			var err error
			if name == "disk" {
				n, err = readFile(b.file)
			} else {
				n, err = pull(b.client, b.targets.get(name), b.dg, false)
			}
			check(err)
			elapsed := time.Since(start)
			if n != b.size {
				check(fmt.Errorf("%s: %d bytes, want %d", name, n, b.size))
			}
			rates[name] = append(rates[name], float64(b.size)/elapsed.Seconds()/(1<<20))
			if path := b.paths[name]; path != "" {
				frac, err := cachedFraction(path)
				check(err)
				cachedAfter[name] = append(cachedAfter[name], frac)
			}
		}
	}
	fmt.Printf("-- %s page cache\n", state)
	med := map[string]float64{}
	for _, name := range b.order {
		med[name] = median(rates[name])
		fmt.Printf("%-10s median %7.0f MiB/s  (runs: %s)", name, med[name], list(rates[name]))
		if b := cachedBefore[name]; len(b) > 0 {
			fmt.Printf("  cached before %s%%, after %s%%", pctRange(b), pctRange(cachedAfter[name]))
		}
		fmt.Println()
	}
	// Two ratios: of the medians, and the median of each round's own
	// ratio — a round's reads follow each other within seconds, so
	// load from other processes that comes and goes hits both sides
	// of a round's ratio alike.
	for _, name := range append(names(b.targets), "disk") {
		if name == "airgapd" {
			continue
		}
		perRound := make([]float64, len(rates[name]))
		for i := range perRound {
			perRound[i] = rates["airgapd"][i] / rates[name][i]
		}
		fmt.Printf("ratio %s airgapd/%s: %.2f of medians, %.2f median per round (rounds: %s)\n",
			state, name, med["airgapd"]/med[name], median(perRound), list2(perRound))
	}
}

// serveFile is the floor under any Go registry: a bare net/http server
// answering every blob GET with http.ServeContent on the file (sendfile on
// plain HTTP, crypto/tls's copy on TLS), no routing, auth or storage
// driver. It runs until killed.
func serveFile(addr, file, cert, key string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("GET /v2/bench/blob/blobs/{digest}", func(w http.ResponseWriter, req *http.Request) {
		f, err := os.Open(file)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, req, "", time.Time{}, f)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if cert != "" {
		return srv.ListenAndServeTLS(cert, key)
	}
	return srv.ListenAndServe()
}

// evict drops the file's pages from the page cache: a per-file hint, not
// a system-wide drop_caches. DONTNEED leaves dirty pages alone, so write
// back whatever an upload left dirty first.
func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fd := int(f.Fd())
	if err := unix.Fdatasync(fd); err != nil {
		return fmt.Errorf("fdatasync %s: %w", path, err)
	}
	if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("posix_fadvise(DONTNEED) %s: %w", path, err)
	}
	return nil
}

// cachedFraction asks mincore how much of the file is in the page cache;
// mapping the file does not read it.
func cachedFraction(path string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return 0, err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, fmt.Errorf("mmap %s: %w", path, err)
	}
	defer unix.Munmap(m)
	page := int64(os.Getpagesize())
	vec := make([]byte, (st.Size()+page-1)/page)
	// x/sys has no mincore wrapper for Linux.
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 0, fmt.Errorf("mincore %s: %w", path, errno)
	}
	resident := 0
	for _, v := range vec {
		resident += int(v & 1)
	}
	return float64(resident) / float64(len(vec)), nil
}

func pctRange(xs []float64) string {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	lo, hi := fmt.Sprintf("%.1f", 100*s[0]), fmt.Sprintf("%.1f", 100*s[len(s)-1])
	if lo == hi {
		return lo
	}
	return lo + "–" + hi
}

func newClient(caFile string) (*http.Client, error) {
	tr := &http.Transport{DisableCompression: true, WriteBufferSize: 1 << 20, ReadBufferSize: 1 << 20}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("no certificate in " + caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute}, nil
}

// upload stores the file as a blob: POST an upload, PUT the whole body.
func upload(c *http.Client, t target, file, dg string, size int64) error {
	req, _ := http.NewRequest(http.MethodPost, t.base+"/v2/bench/blob/blobs/uploads/", nil)
	t.auth(req)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("%s: start upload: %s", t.name, resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	base, _ := url.Parse(t.base)
	u := base.ResolveReference(loc)
	q := u.Query()
	q.Set("digest", dg)
	u.RawQuery = q.Encode()
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	req, _ = http.NewRequest(http.MethodPut, u.String(), f)
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	t.auth(req)
	resp, err = c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("%s: upload: %s", t.name, resp.Status)
	}
	return nil
}

func pull(c *http.Client, t target, dg string, verify bool) (int64, error) {
	req, _ := http.NewRequest(http.MethodGet, t.base+"/v2/bench/blob/blobs/"+dg, nil)
	t.auth(req)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: GET blob: %s", t.name, resp.Status)
	}
	var w io.Writer = io.Discard
	h := sha256.New()
	if verify {
		w = h
	}
	buf := make([]byte, 1<<20)
	n, err := io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{resp.Body}, buf)
	if err == nil && verify && "sha256:"+hex.EncodeToString(h.Sum(nil)) != dg {
		err = fmt.Errorf("%s served other content", t.name)
	}
	return n, err
}

// readFile reads the file as cat would, 1 MiB at a time.
func readFile(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		m, err := f.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (t target) auth(req *http.Request) {
	if t.user != "" {
		req.SetBasicAuth(t.user, t.pass)
	}
}

type targetFlags []target

func (ts *targetFlags) String() string { return fmt.Sprint(*ts) }

func (ts *targetFlags) Set(s string) error {
	name, rest, ok := strings.Cut(s, "=")
	if !ok {
		return errors.New("want NAME=URL[,USER:PASS][,storage=DIR|file=PATH]")
	}
	parts := strings.Split(rest, ",")
	t := target{name: name, base: strings.TrimRight(parts[0], "/")}
	for _, p := range parts[1:] {
		if dir, ok := strings.CutPrefix(p, "storage="); ok {
			t.storage = dir
		} else if path, ok := strings.CutPrefix(p, "file="); ok {
			t.file = path
		} else {
			t.user, t.pass, _ = strings.Cut(p, ":")
		}
	}
	*ts = append(*ts, t)
	return nil
}

func (ts targetFlags) get(name string) target {
	for _, t := range ts {
		if t.name == name {
			return t
		}
	}
	panic(name)
}

func names(ts targetFlags) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.name)
	}
	return out
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func list(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(parts, " ")
}

func list2(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(parts, " ")
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "regbench:", err)
		os.Exit(1)
	}
}
