// Command mirrorbench is bench/mirror's helper (not part of make test):
//
//	mirrorbench gen DIR N SIZE [FIRST]  N noarch RPMs of SIZE bytes of random content in DIR/Packages,
//	                                    numbered from FIRST (default 0)
//	mirrorbench serve DIR PORTFILE      serve DIR on 127.0.0.1:0, write the port to PORTFILE, until killed
//	mirrorbench fetch URL DIR OUT P [sha256] [buf=BYTES]
//	                                    the plain parallel download: every file under DIR, from URL, into OUT,
//	                                    P at once, with io.Copy; with sha256, hashing each file as it arrives
//	                                    (no comparison); with buf=, through io.CopyBuffer and a buffer of BYTES
package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/rpmpack"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "gen":
		need(5)
		first := 0
		if len(os.Args) > 5 {
			first, _ = strconv.Atoi(os.Args[5])
		}
		err = gen(os.Args[2], atoi(os.Args[3]), atoi(os.Args[4]), first)
	case "serve":
		need(4)
		err = serve(os.Args[2], os.Args[3])
	case "fetch":
		need(6)
		hash, buf := false, 0
		for _, a := range os.Args[6:] {
			switch {
			case a == "sha256":
				hash = true
			case strings.HasPrefix(a, "buf="):
				buf = atoi(strings.TrimPrefix(a, "buf="))
			default:
				usage()
			}
		}
		err = fetch(os.Args[2], os.Args[3], os.Args[4], atoi(os.Args[5]), hash, buf)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mirrorbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mirrorbench gen DIR N SIZE [FIRST] | serve DIR PORTFILE | fetch URL DIR OUT PARALLEL [sha256] [buf=BYTES]")
	os.Exit(2)
}

func need(n int) {
	if len(os.Args) < n {
		usage()
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		usage()
	}
	return n
}

func gen(dir string, n, size, first int) error {
	if n > 10000 || size > 1<<30 {
		return fmt.Errorf("at most 10000 packages of 1 GiB")
	}
	if err := os.MkdirAll(filepath.Join(dir, "Packages"), 0o755); err != nil {
		return err
	}
	body := make([]byte, size)
	for i := first; i < first+n; i++ {
		name := fmt.Sprintf("bench%04d", i)
		rand.NewChaCha8([32]byte([]byte(fmt.Sprintf("%-32s", name)))).Read(body)
		r, err := rpmpack.NewRPM(rpmpack.RPMMetaData{Name: name, Version: "1.0", Release: "1", Arch: "noarch", Summary: "bench", Description: "bench", Licence: "MIT", BuildTime: time.Unix(1700000000, 0), Compressor: "gzip:1"})
		if err != nil {
			return err
		}
		r.AddFile(rpmpack.RPMFile{Name: "/opt/" + name, Body: body, Mode: 0o644, MTime: 1700000000})
		f, err := os.Create(filepath.Join(dir, "Packages", name+"-1.0-1.noarch.rpm"))
		if err != nil {
			return err
		}
		if err := r.Write(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

func serve(dir, portFile string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if err := os.WriteFile(portFile+".tmp", []byte(port), 0o644); err != nil {
		return err
	}
	if err := os.Rename(portFile+".tmp", portFile); err != nil {
		return err
	}
	return http.Serve(ln, http.FileServer(http.Dir(dir)))
}

// fetch downloads every regular file under dir from url into out, parallel
// at once, with no checks: the plain download airgapd is measured against.
// buf > 0 copies through a buffer of that size instead of io.Copy's 32 KiB.
func fetch(url, dir, out string, parallel int, hash bool, buf int) error {
	var rels []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			rels = append(rels, filepath.ToSlash(rel))
		}
		return nil
	})
	jobs := make(chan string)
	errs := make(chan error, len(rels))
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: parallel + 2, DisableCompression: true}}
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rel := range jobs {
				errs <- get(client, url+"/"+rel, filepath.Join(out, filepath.FromSlash(rel)), hash, buf)
			}
		}()
	}
	for _, r := range rels {
		jobs <- r
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func get(c *http.Client, url, dst string, hash bool, buf int) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	var w io.Writer = f
	if hash {
		w = io.MultiWriter(f, sha256.New())
	}
	if buf > 0 {
		// Hide *os.File's ReadFrom, which would copy through 32 KiB again.
		_, err = io.CopyBuffer(struct{ io.Writer }{w}, resp.Body, make([]byte, buf))
	} else {
		_, err = io.Copy(w, resp.Body)
	}
	if err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
