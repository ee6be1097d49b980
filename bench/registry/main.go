// Command regbench uploads one blob to each registry under test, then
// times pulling it back (GET /v2/NAME/blobs/DIGEST) from each, alternating,
// against reading the same file from disk. It prints the median rate of
// each and the ratios. Bounded: -runs rounds, each read once per target.
// Used by run.sh; not part of `make test`.
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
	"sort"
	"strings"
	"time"
)

type target struct {
	name, base, user, pass string
}

func main() {
	var (
		file    = flag.String("file", "", "the blob")
		runs    = flag.Int("runs", 5, "rounds (each reads the blob once from every target)")
		caFile  = flag.String("cacert", "", "CA for https targets")
		targets targetFlags
	)
	flag.Var(&targets, "target", "NAME=URL[,USER:PASS]; repeat")
	flag.Parse()
	if *file == "" || len(targets) == 0 || *runs < 1 || *runs > 50 {
		fmt.Fprintln(os.Stderr, "usage: regbench -file F -target NAME=URL[,USER:PASS]… [-runs N] [-cacert CA]")
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

	for _, t := range targets {
		check(upload(client, t, *file, dg, size))
		// One verified read before timing: the content is right.
		got, err := pull(client, t, dg, true)
		check(err)
		if got != size {
			check(fmt.Errorf("%s served %d bytes, want %d", t.name, got, size))
		}
	}
	rates := map[string][]float64{}
	order := append([]string{"disk"}, names(targets)...)
	for r := range *runs {
		// Rotate the order every round so none always goes first.
		for i := range order {
			name := order[(i+r)%len(order)]
			start := time.Now()
			var n int64
			if name == "disk" {
				n, err = readFile(*file)
			} else {
				n, err = pull(client, targets.get(name), dg, false)
			}
			check(err)
			if n != size {
				check(fmt.Errorf("%s: %d bytes, want %d", name, n, size))
			}
			rates[name] = append(rates[name], float64(size)/time.Since(start).Seconds()/(1<<20))
		}
	}
	med := map[string]float64{}
	for _, name := range order {
		med[name] = median(rates[name])
		fmt.Printf("%-10s median %7.0f MiB/s  (runs: %s)\n", name, med[name], list(rates[name]))
	}
	for _, name := range names(targets) {
		if name == "airgapd" {
			continue
		}
		fmt.Printf("ratio airgapd/%s: %.2f\n", name, med["airgapd"]/med[name])
	}
	fmt.Printf("ratio airgapd/disk: %.2f\n", med["airgapd"]/med["disk"])
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
		return errors.New("want NAME=URL[,USER:PASS]")
	}
	u, cred, _ := strings.Cut(rest, ",")
	user, pass, _ := strings.Cut(cred, ":")
	*ts = append(*ts, target{name: name, base: strings.TrimRight(u, "/"), user: user, pass: pass})
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

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "regbench:", err)
		os.Exit(1)
	}
}
