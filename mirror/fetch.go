package mirror

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// newHash returns the hash a repo names: sha256, sha1 ("sha" in old repos),
// sha512, sha384, sha224.
func newHash(typ string) (hash.Hash, error) {
	switch typ {
	case "sha256":
		return sha256.New(), nil
	case "sha", "sha1":
		return sha1.New(), nil
	case "sha512":
		return sha512.New(), nil
	case "sha384":
		return sha512.New384(), nil
	case "sha224":
		return sha256.New224(), nil
	}
	return nil, fmt.Errorf("unsupported checksum type %q", typ)
}

// hashName is the checksum type as a folder name.
func hashName(typ string) string {
	if typ == "sha" {
		return "sha1"
	}
	return typ
}

// valid reports whether the checksum is a well-formed hex digest of its
// type, so it can name a file.
func (c checksum) valid() error {
	h, err := newHash(c.Type)
	if err != nil {
		return err
	}
	if b, err := hex.DecodeString(c.Value); err != nil || len(b) != h.Size() {
		return fmt.Errorf("%q is not a %s digest", c.Value, c.Type)
	}
	return nil
}

// errPermanent marks failures that retrying cannot fix (404, a checksum
// mismatch on a fresh download).
type errPermanent struct{ err error }

func (e errPermanent) Error() string { return e.err.Error() }
func (e errPermanent) Unwrap() error { return e.err }

// errChecksum is the sentinel for bytes that do not match the metadata.
var errChecksum = errors.New("checksum mismatch")

// fetcher downloads files, resuming with Range, retrying with backoff, and
// verifying size and checksum before a file reaches its final name.
type fetcher struct {
	client   *http.Client
	log      *slog.Logger
	attempts int
	backoff  time.Duration // first retry delay; doubles
	idle     time.Duration // a response that sends nothing for this long is dropped
}

// newFetcher builds the downloads of one sync of repo r, through its proxy
// and with its TLS settings (upstream.go).
func newFetcher(log *slog.Logger, parallel int, r Repo) (*fetcher, error) {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   parallel + 2,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		// Packages are compressed already; asking for gzip would only make
		// Range requests ambiguous.
		DisableCompression: true,
	}
	if err := configureUpstream(tr, r, log); err != nil {
		return nil, err
	}
	return &fetcher{client: &http.Client{Transport: tr}, log: log, attempts: 4, backoff: 500 * time.Millisecond, idle: 60 * time.Second}, nil
}

func (f *fetcher) close() { f.client.CloseIdleConnections() }

// get fetches a small file whole (repomd.xml and its signature), with
// retries. A 404 returns os.ErrNotExist.
func (f *fetcher) get(ctx context.Context, url string, limit int64) ([]byte, error) {
	var last error
	for attempt := range f.attempts {
		if attempt > 0 {
			if err := sleepCtx(ctx, f.backoff<<(attempt-1)); err != nil {
				return nil, err
			}
		}
		b, err := f.getOnce(ctx, url, limit)
		if err == nil {
			return b, nil
		}
		last = err
		var perm errPermanent
		if errors.As(err, &perm) || ctx.Err() != nil {
			return nil, err
		}
		f.log.Debug("retrying", "url", url, "err", err)
	}
	return nil, last
}

func (f *fetcher) getOnce(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, errPermanent{err}
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := statusError(resp, url); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if int64(len(b)) > limit {
		return nil, errPermanent{fmt.Errorf("GET %s: larger than %d bytes", url, limit)}
	}
	return b, nil
}

// statusError turns an unusable response into an error; 404 and other 4xx
// are permanent, 5xx are retried.
func statusError(resp *http.Response, url string) error {
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent:
		return nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return errPermanent{fmt.Errorf("GET %s: %s: %w", url, resp.Status, os.ErrNotExist)}
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout:
		return errPermanent{fmt.Errorf("GET %s: %s", url, resp.Status)}
	}
	return fmt.Errorf("GET %s: %s", url, resp.Status)
}

// fetch downloads url to dst, by way of partial (kept between runs, so a
// killed sync resumes with Range). The file reaches dst only when its size
// and checksum match. progress gets byte deltas (negative when a partial
// file is thrown away).
func (f *fetcher) fetch(ctx context.Context, url, partial, dst string, sum checksum, size int64, progress func(int64)) error {
	if err := os.MkdirAll(filepath.Dir(partial), 0o750); err != nil {
		return err
	}
	var last error
	for attempt := range f.attempts {
		fresh, err := f.fetchOnce(ctx, url, partial, sum, size, progress)
		if err == nil {
			if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
				return err
			}
			return os.Rename(partial, dst)
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, errChecksum) {
			if st, e := os.Stat(partial); e == nil {
				progress(-st.Size())
			}
			os.Remove(partial)
			if fresh {
				return err // the upstream's bytes are wrong, not ours
			}
			continue // an older run's partial file: start over at once
		}
		var perm errPermanent
		if errors.As(err, &perm) {
			return err
		}
		f.log.Debug("download failed; retrying", "url", url, "attempt", attempt+1, "err", err)
		if attempt+1 < f.attempts {
			if err := sleepCtx(ctx, f.backoff<<attempt); err != nil {
				return err
			}
		}
	}
	return last
}

// fetchOnce makes one attempt, resuming from whatever partial holds. fresh
// reports whether it started from byte 0.
func (f *fetcher) fetchOnce(ctx context.Context, url, partial string, sum checksum, size int64, progress func(int64)) (fresh bool, err error) {
	h, err := newHash(sum.Type)
	if err != nil {
		return true, errPermanent{err}
	}
	out, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return true, err
	}
	defer out.Close()
	// Hash what an earlier run left, so bytes are read back at most once.
	have, err := io.Copy(h, out)
	if err != nil {
		return true, err
	}
	if size > 0 && have > size {
		progress(-have)
		if err := out.Truncate(0); err != nil {
			return true, err
		}
		h.Reset()
		have = 0
		out.Seek(0, io.SeekStart)
	}
	fresh = have == 0
	if size <= 0 || have < size {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fresh, errPermanent{err}
		}
		if have > 0 {
			req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		}
		resp, err := f.client.Do(req)
		if err != nil {
			return fresh, err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			progress(-have)
			out.Truncate(0)
			return fresh, fmt.Errorf("GET %s: %s for bytes %d-", url, resp.Status, have)
		}
		if err := statusError(resp, url); err != nil {
			return fresh, err
		}
		if have > 0 && resp.StatusCode == http.StatusOK {
			// The server ignored Range: take the whole file.
			progress(-have)
			if err := out.Truncate(0); err != nil {
				return fresh, err
			}
			out.Seek(0, io.SeekStart)
			h.Reset()
			have, fresh = 0, true
		} else if have > 0 && !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(have, 10)+"-") {
			return fresh, fmt.Errorf("GET %s: asked for bytes %d-, got Content-Range %q", url, have, resp.Header.Get("Content-Range"))
		}
		limit := int64(1 << 62)
		if size > 0 {
			limit = size - have + 1 // one more byte shows an oversize file
		}
		body := newIdleReader(io.LimitReader(resp.Body, limit), f.idle, cancel)
		n, err := io.CopyBuffer(io.MultiWriter(out, h), &progressReader{r: body, report: progress}, make([]byte, copyBuffer))
		body.stop()
		have += n
		if err != nil {
			return fresh, fmt.Errorf("GET %s: after %d bytes: %w", url, have, err)
		}
	}
	if size > 0 && have != size {
		if have > size {
			return fresh, errPermanent{fmt.Errorf("%w: %s is larger than the %d bytes the metadata says", errChecksum, url, size)}
		}
		return fresh, fmt.Errorf("GET %s: got %d of %d bytes", url, have, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum.Value {
		return fresh, errPermanent{fmt.Errorf("%w: %s has %s %s, the metadata says %s", errChecksum, url, sum.Type, got, sum.Value)}
	}
	return fresh, nil
}

// copyBuffer is the read size for downloads: fewer system calls than
// io.Copy's 32 KiB.
const copyBuffer = 256 << 10

// progressReader reports bytes as they are read. (Every read: a sync
// stalled by its upstream must show what it has.)
type progressReader struct {
	r      io.Reader
	report func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.report(int64(n))
	}
	return n, err
}

// idleReader cancels a response that sends nothing for longer than idle.
// Reads only stamp the time; a timer checks the stamp.
type idleReader struct {
	r      io.Reader
	idle   time.Duration
	cancel func()
	last   atomic.Int64 // UnixNano of the last read
	t      *time.Timer
	mu     sync.Mutex
	done   bool
}

func newIdleReader(r io.Reader, idle time.Duration, cancel func()) *idleReader {
	i := &idleReader{r: r, idle: idle, cancel: cancel}
	i.last.Store(time.Now().UnixNano())
	i.t = time.AfterFunc(idle, i.check)
	return i
}

func (i *idleReader) check() {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.done {
		return
	}
	if quiet := time.Since(time.Unix(0, i.last.Load())); quiet >= i.idle {
		i.cancel()
		return
	} else {
		i.t.Reset(i.idle - quiet)
	}
}

func (i *idleReader) Read(b []byte) (int, error) {
	n, err := i.r.Read(b)
	i.last.Store(time.Now().UnixNano())
	return n, err
}

func (i *idleReader) stop() {
	i.mu.Lock()
	i.done = true
	i.mu.Unlock()
	i.t.Stop()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
