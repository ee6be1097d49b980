package mirror

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
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

// PermanentError marks failures that retrying cannot fix (404, a checksum
// mismatch on a fresh download): a fetch gives up at once, and a list of
// mirrors does not ask that one again.
type PermanentError struct{ Err error }

func (e PermanentError) Error() string { return e.Err.Error() }
func (e PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is (or wraps) a PermanentError.
func IsPermanent(err error) bool {
	var perm PermanentError
	return errors.As(err, &perm)
}

// ErrChecksum is the sentinel for bytes that do not match the metadata.
var ErrChecksum = errors.New("checksum mismatch")

// Fetcher downloads files, resuming with Range, retrying with backoff, and
// verifying size and checksum before a file reaches its final name.
type Fetcher struct {
	Client   *http.Client
	log      *slog.Logger
	Attempts int           // tries per file (and rounds over a list of mirrors)
	Backoff  time.Duration // first retry delay; doubles
	idle     time.Duration // a response that sends nothing for this long is dropped
}

// NewFetcher builds the downloads of one run with up to parallel of them
// at once. configure, when set, adapts the transport to the upstream (its
// proxy, its TLS settings); its error is returned.
func NewFetcher(log *slog.Logger, parallel int, configure func(*http.Transport) error) (*Fetcher, error) {
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
	if configure != nil {
		if err := configure(tr); err != nil {
			return nil, err
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fetcher{Client: &http.Client{Transport: tr}, log: log, Attempts: 4, Backoff: 500 * time.Millisecond, idle: 60 * time.Second}, nil
}

// Close drops the fetcher's idle connections.
func (f *Fetcher) Close() { f.Client.CloseIdleConnections() }

// Get fetches a small file whole (repomd.xml and its signature), with
// retries. A 404 returns os.ErrNotExist.
func (f *Fetcher) Get(ctx context.Context, url string, limit int64) ([]byte, error) {
	var last error
	for attempt := range f.Attempts {
		if attempt > 0 {
			if err := Sleep(ctx, f.Backoff<<(attempt-1)); err != nil {
				return nil, err
			}
		}
		b, err := f.GetOnce(ctx, url, limit)
		if err == nil {
			return b, nil
		}
		last = err
		if IsPermanent(err) || ctx.Err() != nil {
			return nil, err
		}
		f.log.Debug("retrying", "url", url, "err", err)
	}
	return nil, last
}

// GetOnce is Get without retries.
func (f *Fetcher) GetOnce(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, PermanentError{Err: err}
	}
	resp, err := f.Client.Do(req)
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
		return nil, PermanentError{Err: fmt.Errorf("GET %s: larger than %d bytes", url, limit)}
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
		return PermanentError{Err: fmt.Errorf("GET %s: %s: %w", url, resp.Status, os.ErrNotExist)}
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout:
		return PermanentError{Err: fmt.Errorf("GET %s: %s", url, resp.Status)}
	}
	return fmt.Errorf("GET %s: %s", url, resp.Status)
}

// Fetch downloads url to dst, by way of partial (kept between runs, so
// a killed sync resumes with Range). The file reaches dst only when its size
// and checksum match. progress gets byte deltas (negative when a partial
// file is thrown away). buf is the caller's copy buffer (nil: one of its
// own): a download worker passes the same buffer for every package, so a
// sync allocates a few buffers rather than one per package — in a binary
// this size every garbage collection costs, and fresh memory costs page
// faults.
func (f *Fetcher) Fetch(ctx context.Context, url, partial, dst string, sum Checksum, size int64, buf []byte, progress func(int64)) error {
	if len(buf) == 0 {
		buf = make([]byte, CopyBuffer)
	}
	var last error
	for attempt := range f.Attempts {
		fresh, err := f.fetchOnce(ctx, url, partial, sum, size, buf, progress)
		if err == nil {
			return renameMkdir(partial, dst)
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrChecksum) {
			if st, e := os.Stat(partial); e == nil {
				progress(-st.Size())
			}
			os.Remove(partial)
			if fresh {
				return err // the upstream's bytes are wrong, not ours
			}
			continue // an older run's partial file: start over at once
		}
		if IsPermanent(err) {
			return err
		}
		f.log.Debug("download failed; retrying", "url", url, "attempt", attempt+1, "err", err)
		if attempt+1 < f.Attempts {
			if err := Sleep(ctx, f.Backoff<<attempt); err != nil {
				return err
			}
		}
	}
	return last
}

// FetchAny fetches the file from urls[0] and, while it fails, from each
// other URL in turn (the same file on each mirror of a list), as dnf does:
// the checksum decides, whichever mirror sent it. Repeats of the URL just
// tried are not asked again. buf may be nil.
func (f *Fetcher) FetchAny(ctx context.Context, urls []string, partial, dst string, sum Checksum, size int64, buf []byte, progress func(int64)) error {
	var err error
	tried := ""
	for _, url := range urls {
		if url == tried || ctx.Err() != nil {
			break // one place only
		}
		if tried != "" {
			f.log.Info("download failed; trying the next mirror", "from", tried, "err", err, "next", url)
		}
		tried = url
		if err = f.Fetch(ctx, url, partial, dst, sum, size, buf, progress); err == nil {
			return nil
		}
	}
	if tried == "" {
		return errors.New("no URL to fetch from")
	}
	return err
}

// renameMkdir moves a verified file to its pool name, making the pool's
// folder only when the rename says it is missing (one system call per
// package instead of a stat and a rename).
func renameMkdir(from, to string) error {
	err := os.Rename(from, to)
	if errors.Is(err, fs.ErrNotExist) {
		if err := mkdirOne(filepath.Dir(to), 0o750); err != nil {
			return err
		}
		err = os.Rename(from, to)
	}
	return err
}

// mkdirOne makes dir, and its parents only when they are missing too: a
// new pool folder's parent is there nearly always.
func mkdirOne(dir string, perm fs.FileMode) error {
	err := os.Mkdir(dir, perm)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, perm)
	case errors.Is(err, fs.ErrExist):
		return nil // another worker made it, or a file is in the way (the next step says so)
	}
	return err
}

// openPartial opens (or creates) a download's partial file, making its
// folder only when it is missing.
func openPartial(name string) (*os.File, error) {
	out, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o640)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
			return nil, err
		}
		out, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o640)
	}
	return out, err
}

// fetchOnce makes one attempt, resuming from whatever partial holds. fresh
// reports whether it started from byte 0. buf is the copy buffer.
func (f *Fetcher) fetchOnce(ctx context.Context, url, partial string, sum Checksum, size int64, buf []byte, progress func(int64)) (fresh bool, err error) {
	h, err := NewHash(sum.Type)
	if err != nil {
		return true, PermanentError{Err: err}
	}
	out, err := openPartial(partial)
	if err != nil {
		return true, err
	}
	defer out.Close()
	// Hash what an earlier run left, so bytes are read back at most once.
	have, err := hashExisting(h, out, buf)
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
			return fresh, PermanentError{Err: err}
		}
		if have > 0 {
			req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		}
		resp, err := f.Client.Do(req)
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
		n, err := copyHashed(out, h, &progressReader{r: body, report: progress}, buf)
		body.stop()
		have += n
		if err != nil {
			return fresh, fmt.Errorf("GET %s: after %d bytes: %w", url, have, err)
		}
	}
	if size > 0 && have != size {
		if have > size {
			return fresh, PermanentError{Err: fmt.Errorf("%w: %s is larger than the %d bytes the metadata says", ErrChecksum, url, size)}
		}
		return fresh, fmt.Errorf("GET %s: got %d of %d bytes", url, have, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum.Value {
		return fresh, PermanentError{Err: fmt.Errorf("%w: %s has %s %s, the metadata says %s", ErrChecksum, url, sum.Type, got, sum.Value)}
	}
	return fresh, nil
}

// hashExisting hashes what f holds from its start, through buf, and
// returns its size. (io.Copy would allocate a buffer per file.)
func hashExisting(h hash.Hash, f *os.File, buf []byte) (int64, error) {
	var have int64
	for {
		n, err := f.Read(buf)
		h.Write(buf[:n])
		have += int64(n)
		if err == io.EOF {
			return have, nil
		}
		if err != nil {
			return have, err
		}
	}
}

// copyHashed copies r into w and h through buf, filling buf before each
// write: a socket read returns whatever has arrived (a few KiB to a few
// hundred), and each write(2) to a file costs a system call and a
// file-system transaction whatever its size. What buf holds is written
// before any error returns, so a failed or cancelled download resumes after
// every byte it received; only a kill -9 loses what was in buf, which the
// resume's Range asks for again.
func copyHashed(w io.Writer, h hash.Hash, r io.Reader, buf []byte) (int64, error) {
	var written int64
	for {
		n := 0
		var rerr error
		for n < len(buf) && rerr == nil {
			var m int
			m, rerr = r.Read(buf[n:])
			n += m
		}
		if n > 0 {
			h.Write(buf[:n])
			if _, err := w.Write(buf[:n]); err != nil {
				return written, err
			}
			written += int64(n)
		}
		if rerr == io.EOF {
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}

// CopyBuffer is the size of one download worker's copy buffer, and so of
// the writes to a partial file: a 1.5 MB package goes to disk in 3 writes
// (a read brings about 160 KiB on loopback, at most one 16 KiB TLS record
// from an https upstream), and 32 workers (the most) hold 16 MiB.
const CopyBuffer = 512 << 10

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

// Sleep waits d, or until ctx ends (its error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
