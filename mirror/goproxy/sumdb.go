package goproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb"

	"github.com/airgapd/airgapd/internal/atomicfile"
	"github.com/airgapd/airgapd/mirror"
)

// recorder is the checksum database client's I/O during a sync: every
// answer of the database it reads (lookups and the tiles that prove them)
// is kept, to be published with the modules, so the nodes' go command —
// which asks the same questions — gets them from here offline. The
// client itself (golang.org/x/mod/sumdb) verifies the signed tree heads
// and the proofs, as the go command does.
type recorder struct {
	ctx  context.Context
	f    *mirror.Fetcher
	db   SumDB
	base string // where the database answers (sumdbBase)
	log  *slog.Logger

	mu       sync.Mutex
	latest   []byte
	files    map[string][]byte // path under sumdb/NAME/ → answer
	security []string
}

var _ sumdb.ClientOps = (*recorder)(nil)

func (r *recorder) ReadRemote(path string) ([]byte, error) {
	b, err := r.f.Get(r.ctx, r.base+path, 8<<20)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.files[strings.TrimPrefix(path, "/")] = b
	r.mu.Unlock()
	return b, nil
}

func (r *recorder) ReadConfig(file string) ([]byte, error) {
	if file == "key" {
		return []byte(r.db.Key), nil
	}
	if strings.HasSuffix(file, "/latest") {
		r.mu.Lock()
		defer r.mu.Unlock()
		return bytes.Clone(r.latest), nil
	}
	return nil, fmt.Errorf("unknown config file %s", file)
}

func (r *recorder) WriteConfig(file string, old, new []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !bytes.Equal(old, r.latest) {
		return sumdb.ErrWriteConflict
	}
	r.latest = bytes.Clone(new)
	return nil
}

func (r *recorder) ReadCache(string) ([]byte, error) { return nil, fs.ErrNotExist }
func (r *recorder) WriteCache(string, []byte)        {}
func (r *recorder) Log(msg string)                   { r.log.Debug("sumdb", "msg", msg) }
func (r *recorder) SecurityError(msg string) {
	r.mu.Lock()
	r.security = append(r.security, msg)
	r.mu.Unlock()
	r.log.Error("checksum database security error", "msg", msg)
}

// lookupAll asks the database for every wanted version not skipped, fills
// in the hashes go.sum did not give and returns a mismatch with go.sum as
// an error naming the module.
func (r *recorder) lookupAll(ctx context.Context, parallel int, wants []*want) error {
	c := sumdb.NewClient(r)
	var mu sync.Mutex
	var errs []error
	mirror.EachParallel(ctx, wants, parallel, func() func(*want) {
		return func(w *want) {
			if r.db.skips(w.Mod.Path) {
				return
			}
			// Lookup gives the lines of what it is asked: the zip's, or
			// the go.mod's for VERSION/go.mod (one record, fetched once).
			lines, err := c.Lookup(w.Mod.Path, w.Mod.Version)
			if err == nil {
				var more []string
				more, err = c.Lookup(w.Mod.Path, w.Mod.Version+"/go.mod")
				lines = append(lines, more...)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s@%s: checksum database %s: %w", w.Mod.Path, w.Mod.Version, r.db.name(), err))
				return
			}
			if err := merge(w, lines, "checksum database "+r.db.name()); err != nil {
				errs = append(errs, err)
			}
		}
	})
	if len(r.security) > 0 {
		errs = append(errs, fmt.Errorf("checksum database %s: %s", r.db.name(), strings.Join(r.security, "; ")))
	}
	return errors.Join(errs...)
}

// merge puts the database's lines for w into it; a hash that differs
// from go.sum's is an error.
func merge(w *want, lines []string, source string) error {
	name := w.Mod.Path + "@" + w.Mod.Version
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != w.Mod.Path || !strings.HasPrefix(f[2], "h1:") {
			continue
		}
		p, from, what := &w.ZipHash, &w.ZipFrom, "zip"
		if f[1] == w.Mod.Version+"/go.mod" {
			p, from, what = &w.ModHash, &w.ModFrom, "go.mod"
		} else if f[1] != w.Mod.Version {
			continue
		}
		if *p != "" && *p != f[2] {
			return fmt.Errorf("%s: %s says the %s hash is %s, the %s says %s; refusing it (fix go.sum with go mod tidy on a trusted machine)", name, *from, what, *p, source, f[2])
		}
		if *p == "" {
			*p, *from = f[2], source
		}
	}
	return nil
}

// sumdbBase is where the database answers: sumdb.url when set; else
// the upstream GOPROXY's proxy of it when the upstream says it has one
// (UPSTREAM/sumdb/NAME/supported, as the go command asks), else
// https://NAME.
func (p *Proxy) sumdbBase(ctx context.Context, f *mirror.Fetcher, cfg Config, upstream string) string {
	if cfg.SumDB.URL != "" {
		return cfg.SumDB.url()
	}
	via := upstream + "/sumdb/" + cfg.SumDB.name()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := f.GetOnce(ctx, via+"/supported", 1<<10); err == nil {
		return via
	}
	return cfg.SumDB.url()
}

// sumdbCache is where answers proxied at serve time are kept.
func (p *Proxy) sumdbCache(name string) string {
	return filepath.Join(p.deps.DataDir, "mirror", "goproxy", "sumdb-cache", name)
}

// serveSumDB answers the checksum database proxy protocol for
// /sumdb/NAME/REST: supported, lookup/…, tile/… and latest; from the
// published tree (what syncs looked up), then the cache, then the
// database itself while it answers (the answer kept in the cache).
func (p *Proxy) serveSumDB(w http.ResponseWriter, r *http.Request, rest string) int {
	cfg := p.config()
	name, sub, _ := strings.Cut(rest, "/")
	known := cfg.SumDB.Enabled() && name == cfg.SumDB.name()
	cur, _ := p.Store(treeName).Current()
	inTree := cur != "" && isDir(filepath.Join(cur, "sumdb", name))
	if !known && !inTree {
		http.Error(w, "checksum database "+name+" is not proxied here; set goproxy.sumdb", http.StatusNotFound)
		return http.StatusNotFound
	}
	if sub == "supported" {
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	}
	if !validSumDBPath(sub) {
		http.Error(w, "not a checksum database path", http.StatusNotFound)
		return http.StatusNotFound
	}
	rel := filepath.FromSlash(sub)
	fresh := sub == "latest"
	if !fresh {
		dirs := []string{p.sumdbCache(name)}
		if cur != "" {
			dirs = append([]string{filepath.Join(cur, "sumdb", name)}, dirs...)
		}
		for _, dir := range dirs {
			if b, err := os.ReadFile(filepath.Join(dir, rel)); err == nil {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.Write(b)
				return http.StatusOK
			}
		}
	}
	if known {
		if b, err := p.askSumDB(r.Context(), cfg, sub); err == nil {
			p.cache(filepath.Join(p.sumdbCache(name), rel), b)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write(b)
			return http.StatusOK
		} else if errors.Is(err, os.ErrNotExist) {
			http.Error(w, err.Error(), http.StatusNotFound)
			return http.StatusNotFound
		}
	}
	if b, err := os.ReadFile(filepath.Join(p.sumdbCache(name), rel)); err == nil && fresh {
		w.Write(b)
		return http.StatusOK
	}
	http.Error(w, "not cached here and the checksum database does not answer: sync the module (airgapd goproxy sync) to keep its lookup", http.StatusNotFound)
	return http.StatusNotFound
}

// cache keeps a database answer; a failure costs only a fetch later.
func (p *Proxy) cache(path string, b []byte) {
	err := os.MkdirAll(filepath.Dir(path), 0o750)
	if err == nil {
		err = atomicfile.WriteFile(path, b, 0o644)
	}
	if err != nil {
		p.log.Warn("cannot cache a checksum database answer", "path", path, "err", err)
	}
}

// askSumDB fetches one answer from the database, briefly: behind the gap
// it does not answer, and the nodes' go command must not wait on it. A
// failure marks it unreachable for a minute.
func (p *Proxy) askSumDB(ctx context.Context, cfg Config, sub string) ([]byte, error) {
	if until := p.sumdbDown.Load(); until > time.Now().UnixNano() {
		return nil, errors.New("checksum database unreachable")
	}
	f, err := p.sumdbFetcher(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p.mu.Lock()
	base := p.dbBase
	p.mu.Unlock()
	if base == "" || cfg.SumDB.URL != "" {
		base = cfg.SumDB.url()
	}
	b, err := f.GetOnce(ctx, base+"/"+sub, 8<<20)
	if err != nil && !mirror.IsPermanent(err) {
		p.sumdbDown.Store(time.Now().Add(time.Minute).UnixNano())
	}
	return b, err
}

// sumdbFetcher is the fetcher the proxy asks the database with, made
// once per config.
func (p *Proxy) sumdbFetcher(cfg Config) (*mirror.Fetcher, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dbFetch == nil {
		f, err := mirror.NewFetcher(p.log, 4, cfg.configure)
		if err != nil {
			return nil, err
		}
		p.dbFetch = f
	}
	return p.dbFetch, nil
}

// validSumDBPath admits latest, lookup/… and tile/… paths with no way out
// of their folder.
func validSumDBPath(sub string) bool {
	if sub != "latest" && !strings.HasPrefix(sub, "lookup/") && !strings.HasPrefix(sub, "tile/") {
		return false
	}
	for _, el := range strings.Split(sub, "/") {
		if el == "" || el == "." || el == ".." || strings.ContainsAny(el, "\\\x00") {
			return false
		}
	}
	return true
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
