package goproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/airgapd/airgapd/mirror"
)

// Size limits of what an upstream sends, as the go command has them.
const (
	maxInfo  = 1 << 20
	maxGoMod = 16 << 20
)

// authTransport adds the upstream's basic-auth credentials to requests
// for the upstream's host only (never to the checksum database).
type authTransport struct {
	base       http.RoundTripper
	host       string
	user, pass string
}

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == a.host {
		r = r.Clone(r.Context())
		r.SetBasicAuth(a.user, a.pass)
	}
	return a.base.RoundTrip(r)
}

// newFetcher is one sync's fetcher: the config's proxy, CA and
// credentials.
func (p *Proxy) newFetcher(cfg Config) (*mirror.Fetcher, error) {
	f, err := mirror.NewFetcher(p.log, cfg.Parallel, cfg.configure)
	if err != nil {
		return nil, err
	}
	if cfg.Username != "" || cfg.Password != "" {
		u, _ := url.Parse(cfg.Upstream) // Validate checked it
		f.Client.Transport = authTransport{base: f.Client.Transport, host: u.Host, user: cfg.Username, pass: cfg.Password}
	}
	return f, nil
}

// versionFiles is what one module version brings to the tree: its files
// (the zip already in the pool, .info and .mod in mem until published).
type versionFiles struct {
	files      []mirror.TreeFile
	mem        map[string][]byte
	zipSize    int64
	downloaded int64
	fetched    int
	err        error
}

// vpath is the tree path of a module version's file with suffix ext
// (".info", ".mod", ".zip").
func vpath(m module.Version, ext string) string {
	p, _ := module.EscapePath(m.Path) // checked when read
	v, _ := module.EscapeVersion(m.Version)
	return p + "/@v/" + v + ext
}

// fetchVersion fetches (or takes from the published tree cur) one module
// version's .info, .mod and, when wanted, .zip, and verifies the go.mod
// and the zip against their h1 hashes. The zip lands in the pool.
func (p *Proxy) fetchVersion(ctx context.Context, f *mirror.Fetcher, st mirror.Store, cur, upstream string, w *want) versionFiles {
	out := versionFiles{mem: map[string][]byte{}}
	base := upstream + "/"
	name := w.Mod.Path + "@" + w.Mod.Version
	small := func(ext string, limit int64, optional bool) ([]byte, error) {
		rel := vpath(w.Mod, ext)
		if cur != "" {
			if b, err := os.ReadFile(filepath.Join(cur, filepath.FromSlash(rel))); err == nil {
				return b, nil
			}
		}
		b, err := f.Get(ctx, base+rel, limit)
		if optional && errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		out.downloaded += int64(len(b))
		out.fetched++
		return b, nil
	}
	keep := func(ext string, b []byte) {
		sum := sha256.Sum256(b)
		rel := vpath(w.Mod, ext)
		out.mem[rel] = b
		out.files = append(out.files, mirror.TreeFile{Path: rel, Sum: mirror.Checksum{Type: "sha256", Value: hex.EncodeToString(sum[:])}, Size: int64(len(b))})
	}
	info, err := small(".info", maxInfo, !w.Zip)
	if err != nil {
		out.err = fmt.Errorf("%s: .info: %w", name, err)
		return out
	}
	if info != nil {
		var i struct{ Version string }
		if err := json.Unmarshal(info, &i); err != nil || i.Version != w.Mod.Version {
			out.err = fmt.Errorf("%s: the upstream's .info names version %q, not %s; refusing it", name, i.Version, w.Mod.Version)
			return out
		}
		keep(".info", info)
	}
	mod, err := small(".mod", maxGoMod, false)
	if err != nil {
		out.err = fmt.Errorf("%s: .mod: %w", name, err)
		return out
	}
	if got := hashGoMod(mod); got != w.ModHash {
		out.err = fmt.Errorf("%s: go.mod hash %s does not match %s (%s): the upstream's go.mod is not the one recorded; refusing it", name, got, w.ModHash, w.ModFrom)
		return out
	}
	keep(".mod", mod)
	if w.Zip {
		tf, n, err := p.fetchZip(ctx, f, st, cur, base, w)
		if err != nil {
			out.err = fmt.Errorf("%s: zip: %w", name, err)
			return out
		}
		out.files = append(out.files, tf)
		out.zipSize = tf.Size
		if n > 0 {
			out.downloaded += n
			out.fetched++
		}
	}
	return out
}

// hashGoMod is the go.mod's h1 hash as go.sum writes it.
func hashGoMod(data []byte) string {
	h, _ := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	return h
}

// fetchZip downloads a module zip (or takes the published one), checks it
// is a valid module zip for its version and that its h1 hash is the one
// expected, and puts it in the pool. n is the bytes downloaded.
func (p *Proxy) fetchZip(ctx context.Context, f *mirror.Fetcher, st mirror.Store, cur, base string, w *want) (tf mirror.TreeFile, n int64, err error) {
	rel := vpath(w.Mod, ".zip")
	file := ""
	if cur != "" {
		if _, err := os.Stat(filepath.Join(cur, filepath.FromSlash(rel))); err == nil {
			file = filepath.Join(cur, filepath.FromSlash(rel))
		}
	}
	if file == "" {
		tmp, err := os.CreateTemp(filepath.Join(st.Dir, "partial"), "zip-*")
		if err != nil {
			return tf, 0, err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		if n, err = download(ctx, f, base+rel, tmp); err != nil {
			return tf, n, err
		}
		file = tmp.Name()
	}
	if _, err := modzip.CheckZip(w.Mod, file); err != nil {
		return tf, n, fmt.Errorf("not a valid module zip: %w", err)
	}
	h1, err := dirhash.HashZip(file, dirhash.Hash1)
	if err != nil {
		return tf, n, err
	}
	if h1 != w.ZipHash {
		return tf, n, fmt.Errorf("hash %s does not match %s (%s): the upstream's zip is not the one recorded; refusing it: %w", h1, w.ZipHash, w.ZipFrom, mirror.ErrChecksum)
	}
	sum, size, err := sha256File(file)
	if err != nil {
		return tf, n, err
	}
	tf = mirror.TreeFile{Path: rel, Sum: sum, Size: size}
	if !st.Has(sum) {
		if err := os.MkdirAll(filepath.Dir(st.Pool(sum)), 0o750); err != nil {
			return tf, n, err
		}
		if err := mirror.LinkOrCopy(file, st.Pool(sum)); err != nil {
			return tf, n, err
		}
	}
	return tf, n, nil
}

// download streams url into w with the fetcher's client, retrying from
// the start with backoff on failures that may pass.
func download(ctx context.Context, f *mirror.Fetcher, url string, w *os.File) (int64, error) {
	var last error
	for attempt := range f.Attempts {
		if attempt > 0 {
			if err := mirror.Sleep(ctx, f.Backoff<<(attempt-1)); err != nil {
				return 0, err
			}
		}
		if err := w.Truncate(0); err != nil {
			return 0, err
		}
		if _, err := w.Seek(0, io.SeekStart); err != nil {
			return 0, err
		}
		n, err := downloadOnce(ctx, f, url, w)
		if err == nil {
			return n, nil
		}
		last = err
		if mirror.IsPermanent(err) || ctx.Err() != nil {
			return n, err
		}
	}
	return 0, last
}

func downloadOnce(ctx context.Context, f *mirror.Fetcher, url string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, mirror.PermanentError{Err: err}
	}
	resp, err := f.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return 0, mirror.PermanentError{Err: fmt.Errorf("GET %s: %s: %w", url, resp.Status, os.ErrNotExist)}
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests:
		return 0, mirror.PermanentError{Err: fmt.Errorf("GET %s: %s", url, resp.Status)}
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, modzip.MaxZipFile+1))
	if err != nil {
		return n, fmt.Errorf("GET %s: %w", url, err)
	}
	if n > modzip.MaxZipFile {
		return n, mirror.PermanentError{Err: fmt.Errorf("GET %s: larger than a module zip may be (%d bytes)", url, modzip.MaxZipFile)}
	}
	return n, nil
}

// sha256File is a file's sha256 and size.
func sha256File(name string) (mirror.Checksum, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return mirror.Checksum{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return mirror.Checksum{}, 0, err
	}
	return mirror.Checksum{Type: "sha256", Value: hex.EncodeToString(h.Sum(nil))}, n, nil
}
