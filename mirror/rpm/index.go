package rpm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/airgapd/airgapd/internal/atomicfile"
	"github.com/airgapd/airgapd/mirror"
)

// Index indexes the named local repos (every repo with a path when names
// is empty) like createrepo_c --update and publishes each that succeeds.
// Results have one entry per repo attempted; the error joins every
// failure.
func (m *Mirror) Index(ctx context.Context, names []string, progress func(mirror.Progress)) ([]Result, error) {
	cfg := m.Config()
	var repos []Repo
	if len(names) == 0 {
		for _, r := range cfg.Repos {
			if !r.Mirrored() {
				repos = append(repos, r)
			}
		}
		if len(repos) == 0 {
			return nil, errors.New("no repo has a path to index")
		}
	}
	for _, n := range names {
		r, ok := cfg.Lookup(n)
		if !ok {
			return nil, fmt.Errorf("%w %q in the config", ErrUnknownRepo, n)
		}
		if r.Mirrored() {
			return nil, fmt.Errorf("repo %q is a mirror of %s: sync it (`airgapd mirror sync %s`), its upstream's index is published as it is", n, r.Upstream(), n)
		}
		repos = append(repos, r)
	}
	return m.runRepos(ctx, cfg, repos, progress) // every one of them is local
}

// rpmFile is one .rpm found in a local repo's folder.
type rpmFile struct {
	href string
	fi   os.FileInfo
}

// scanFolder lists the .rpm files under dir (repodata/ and dot folders
// skipped), sorted by location, and a fingerprint of their names, sizes
// and mtimes: equal fingerprints mean nothing to index.
func scanFolder(dir string) ([]rpmFile, string, error) {
	var out []rpmFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // an unreadable subfolder is skipped, like createrepo_c
		}
		if d.IsDir() {
			if p != dir && (d.Name() == "repodata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), ".rpm") || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		fi, err := os.Stat(p) // follows symlinks, as createrepo_c does
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rpmFile{href: filepath.ToSlash(rel), fi: fi})
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	slices.SortFunc(out, func(a, b rpmFile) int { return strings.Compare(a.href, b.href) })
	h := sha256.New()
	for _, f := range out {
		fmt.Fprintf(h, "%s\x00%d\x00%d\n", f.href, f.fi.Size(), f.fi.ModTime().UnixNano())
	}
	// A changed modules.yaml or comps.xml re-indexes too.
	for _, x := range extraMetadata {
		if fi, err := os.Stat(filepath.Join(dir, x.file)); err == nil {
			fmt.Fprintf(h, "%s\x00%d\x00%d\n", x.file, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return out, hex.EncodeToString(h.Sum(nil)), nil
}

// extraMetadata are files a local folder may hold beside its packages that
// go into the repodata as they are, as `createrepo_c -g comps.xml` and
// `modifyrepo_c modules.yaml` would put them: comps (package groups) and
// modules.yaml (which EL8/EL9 AppStream-style repos need for modular
// packages).
var extraMetadata = []struct {
	file string // at the folder's top
	typ  string // repomd data type
	ext  string // of the published file, before compression
}{
	{"comps.xml", "group", ".xml"},
	{"modules.yaml", "modules", ".yaml"},
}

// indexOptions is what besides the packages decides the published
// repodata; a change re-indexes even when no package changed.
func indexOptions(cfg Config, r Repo) string {
	return fmt.Sprintf("compress=%s sign=%t key=%s", r.compression(), r.Sign, cfg.SigningKey)
}

// indexCache is index.gob: the entries of the last published index.
type indexCache struct {
	Entries []*indexEntry
}

func readCache(s mirror.Store) map[string]*indexEntry {
	out := map[string]*indexEntry{}
	f, err := os.Open(filepath.Join(s.Dir, "index.gob"))
	if err != nil {
		return out
	}
	defer f.Close()
	var c indexCache
	if gob.NewDecoder(f).Decode(&c) != nil {
		return out // a damaged cache only costs a full read
	}
	for _, e := range c.Entries {
		out[e.Href] = e
	}
	return out
}

func writeCache(s mirror.Store, entries []*indexEntry) error {
	path := filepath.Join(s.Dir, "index.gob")
	atomicfile.Clean(path) // what a writer killed mid-write left (the caller holds the lock)
	return atomicfile.WriteWith(path, 0o644, func(w io.Writer) error {
		return gob.NewEncoder(w).Encode(indexCache{Entries: entries})
	})
}

// indexRepo indexes one local repo. With onlyIfChanged (the server's
// scan), a folder whose fingerprint matches the published index is left
// alone without taking the lock's time or logging.
func (m *Mirror) indexRepo(ctx context.Context, cfg Config, r Repo, onlyIfChanged bool, notify func(mirror.Progress)) (res Result, err error) {
	began := m.now()
	res.Repo, res.Indexed = r.Name, true
	st := mirror.RepoStore(m.deps.DataDir, r.Name)
	files, fp, err := scanFolder(r.Path)
	if err != nil {
		res.Error = err.Error()
		return res, fmt.Errorf("scan %s: %w", r.Path, err)
	}
	fp += " " + indexOptions(cfg, r)
	upToDate := func() (repoState, string, bool) {
		state := readState(st)
		cur, _ := st.Current()
		return state, cur, cur != "" && state.Fingerprint == fp && state.LastResult == "ok"
	}
	if _, _, ok := upToDate(); ok && onlyIfChanged {
		res.OK, res.UpToDate = true, true
		return res, nil
	}
	// The scan never waits for the lock; an explicit index waits for the
	// run under way (the scan's, or another command's) and then looks again.
	var unlock func()
	if onlyIfChanged {
		unlock, err = st.Lock()
	} else {
		unlock, err = st.LockWait(ctx)
	}
	if err != nil {
		res.Error = err.Error()
		return res, err
	}
	defer unlock()
	state, cur, ok := upToDate()
	if ok {
		res.OK, res.UpToDate, res.Revision, res.Packages = true, true, state.Revision, state.Packages
		if !onlyIfChanged {
			m.finished(r.Name, state, res)
		}
		return res, nil
	}
	tr := mirror.NewTracker(mirror.Progress{Repo: r.Name, Phase: "scan", Started: began, Packages: len(files)}, notify, func(p *mirror.Progress) { m.book.SetProgress(r.Name, p) })
	tr.Update(true, func(*mirror.Progress) {})
	defer func() { m.endRun(r.Name, st, &state, &res, tr, began, err, "index") }()

	// Reuse the entries of files unchanged in size and mtime; read the rest.
	cache := map[string]*indexEntry{}
	if cur != "" {
		cache = readCache(st)
	}
	entries := make([]*indexEntry, len(files))
	var todo []int
	var total int64
	for i, f := range files {
		total += f.fi.Size()
		if e, ok := cache[f.href]; ok && e.Size == f.fi.Size() && e.MtimeNs == f.fi.ModTime().UnixNano() {
			entries[i] = e
			continue
		}
		todo = append(todo, i)
	}
	var todoBytes int64
	for _, i := range todo {
		todoBytes += files[i].fi.Size()
	}
	tr.Update(true, func(p *mirror.Progress) { p.Phase, p.ToFetch, p.Bytes = "headers", len(todo), todoBytes })
	if err := m.readHeaders(ctx, r, files, entries, todo, cfg.workers(), tr); err != nil {
		return res, err
	}
	res.HeadersRead, res.Reused, res.Packages = len(todo), len(files)-len(todo), len(files)

	tr.Update(true, func(p *mirror.Progress) { p.Phase = "publish" })
	tmp, err := st.NewSnapshot(time.Now()) // a folder name: the real clock, unique
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	revision := strconv.FormatInt(m.now().Unix(), 10)
	if prev, perr := strconv.ParseInt(state.Revision, 10, 64); perr == nil && prev >= m.now().Unix() {
		revision = strconv.FormatInt(prev+1, 10) // two runs in one second still differ
	}
	repomd, err := writeRepodata(filepath.Join(tmp, "repodata"), entries, r.compression(), revision, r.Path)
	if err != nil {
		return res, err
	}
	if r.Sign {
		key, err := m.signingKey(cfg)
		if err != nil {
			return res, err
		}
		if err := key.signRepomd(filepath.Join(tmp, "repodata"), repomd); err != nil {
			return res, err
		}
	}
	if _, err := st.Publish(tmp); err != nil {
		return res, fmt.Errorf("publish: %w", err)
	}
	if err := writeCache(st, entries); err != nil {
		m.log.Warn("cannot keep the index cache; the next index reads every header", "repo", r.Name, "err", err)
	}
	res.Revision = revision
	state.Revision, state.Published, state.Packages, state.Bytes, state.Fingerprint = revision, m.now(), len(files), total, fp
	state.HeadersRead = len(todo)
	m.log.Info("repo indexed", "repo", r.Name, "revision", revision, "packages", len(files), "headers_read", len(todo), "took", m.now().Sub(began).Round(time.Millisecond))
	return res, nil
}

// readHeaders reads files[i] for every i in todo into entries[i], with
// workers goroutines.
func (m *Mirror) readHeaders(ctx context.Context, r Repo, files []rpmFile, entries []*indexEntry, todo []int, workers int, tr *syncTracker) error {
	var mu sync.Mutex
	var errs []error
	err := mirror.EachParallel(ctx, todo, workers, func() func(int) {
		return func(i int) {
			f := files[i]
			e, err := readPackage(filepath.Join(r.Path, filepath.FromSlash(f.href)), f.href, f.fi)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			entries[i] = e
			tr.Update(false, func(p *mirror.Progress) { p.Fetched++; p.BytesDone += f.fi.Size() })
		}
	})
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d package(s) unreadable, nothing published: %w", len(errs), errors.Join(errs...))
	}
	return nil
}

// mdFile is one metadata file written into repodata/.
type mdFile struct {
	typ                   string
	href                  string
	sum, openSum          string
	size, openSize, mtime int64
}

// writeRepodata writes primary, filelists and other (each compressed in
// its own goroutine) and repomd.xml into dir, and returns repomd.xml.
func writeRepodata(dir string, entries []*indexEntry, compression, revision, folder string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	n := len(entries)
	kinds := []struct {
		typ, head, tail string
		part            func(*indexEntry) []byte
	}{
		{"primary", fmt.Sprintf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"%d\">\n", n), "</metadata>\n", func(e *indexEntry) []byte { return e.Primary }},
		{"filelists", fmt.Sprintf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"%d\">\n", n), "</filelists>\n", func(e *indexEntry) []byte { return e.Filelists }},
		{"other", fmt.Sprintf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<otherdata xmlns=\"http://linux.duke.edu/metadata/other\" packages=\"%d\">\n", n), "</otherdata>\n", func(e *indexEntry) []byte { return e.Other }},
	}
	out := make([]mdFile, len(kinds))
	errs := make([]error, len(kinds))
	var wg sync.WaitGroup
	for i, k := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = writeMD(dir, k.typ, compression, func(w io.Writer) error {
				if _, err := io.WriteString(w, k.head); err != nil {
					return err
				}
				for _, e := range entries {
					if _, err := w.Write(k.part(e)); err != nil {
						return err
					}
				}
				_, err := io.WriteString(w, k.tail)
				return err
			})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	extras, err := writeExtraMetadata(dir, folder, compression)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n")
	fmt.Fprintf(&b, "  <revision>%s</revision>\n", revision)
	for _, f := range append(out, extras...) {
		if f.openSum == "" { // stored uncompressed: no open-* elements
			fmt.Fprintf(&b, "  <data type=\"%s\">\n    <checksum type=\"sha256\">%s</checksum>\n    <location href=\"%s\"/>\n    <timestamp>%d</timestamp>\n    <size>%d</size>\n  </data>\n",
				f.typ, f.sum, f.href, f.mtime, f.size)
			continue
		}
		fmt.Fprintf(&b, "  <data type=\"%s\">\n    <checksum type=\"sha256\">%s</checksum>\n    <open-checksum type=\"sha256\">%s</open-checksum>\n    <location href=\"%s\"/>\n    <timestamp>%d</timestamp>\n    <size>%d</size>\n    <open-size>%d</open-size>\n  </data>\n",
			f.typ, f.sum, f.openSum, f.href, f.mtime, f.size, f.openSize)
	}
	b.WriteString("</repomd>\n")
	if err := os.WriteFile(filepath.Join(dir, "repomd.xml"), b.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// countWriter hashes and counts what passes through it.
type countWriter struct {
	w io.Writer
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func newCountWriter(w io.Writer) *countWriter { return &countWriter{w: w, h: sha256.New()} }

func (c *countWriter) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	if c.w == nil {
		return len(p), nil
	}
	return c.w.Write(p)
}

func (c *countWriter) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }

// writeMD writes one metadata file, compressed, named by its checksum as
// createrepo_c's unique-md-filenames do.
func writeMD(dir, typ, compression string, body func(io.Writer) error) (mdFile, error) {
	return writeMDAs(dir, typ, ".xml", compression, body)
}

// writeMDAs is writeMD for a file whose uncompressed name ends in base
// (".xml", ".yaml").
func writeMDAs(dir, typ, base, compression string, body func(io.Writer) error) (mdFile, error) {
	tmp, err := os.CreateTemp(dir, ".tmp-"+typ+"-*")
	if err != nil {
		return mdFile{}, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	packed := newCountWriter(tmp)
	var zw io.WriteCloser
	ext := base + ".gz"
	switch compression {
	case "zstd":
		ext = base + ".zst"
		zw, err = zstd.NewWriter(packed, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return mdFile{}, err
		}
	default:
		zw = gzip.NewWriter(packed)
	}
	open := newCountWriter(zw)
	if err := body(open); err != nil {
		return mdFile{}, err
	}
	if err := zw.Close(); err != nil {
		return mdFile{}, err
	}
	if err := tmp.Close(); err != nil {
		return mdFile{}, err
	}
	f := mdFile{typ: typ, sum: packed.sum(), openSum: open.sum(), size: packed.n, openSize: open.n}
	name := f.sum + "-" + typ + ext
	f.href = "repodata/" + name
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return mdFile{}, err
	}
	if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
		f.mtime = fi.ModTime().Unix()
	}
	os.Chmod(filepath.Join(dir, name), 0o644)
	return f, nil
}

// workers is how many headers an index reads at once.
func (c Config) workers() int {
	if c.IndexWorkers > 0 {
		return c.IndexWorkers
	}
	return runtime.NumCPU()
}

// compression is the repo's metadata compression: gz unless zstd is asked.
func (r Repo) compression() string {
	if r.Compress == "zstd" {
		return "zstd"
	}
	return "gz"
}

// writeExtraMetadata publishes the folder's comps.xml (as "group", plain,
// and "group_gz"/"group_zst", compressed, as createrepo_c does) and
// modules.yaml (as "modules", compressed).
func writeExtraMetadata(dir, folder, compression string) ([]mdFile, error) {
	var out []mdFile
	for _, x := range extraMetadata {
		src := filepath.Join(folder, x.file)
		data, err := os.ReadFile(src)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", src, err)
		}
		write := func(w io.Writer) error { _, err := w.Write(data); return err }
		if x.typ == "group" {
			plain, err := writePlainMD(dir, x.typ, x.ext, data)
			if err != nil {
				return nil, err
			}
			out = append(out, plain)
			suffix := "_gz"
			if compression == "zstd" {
				suffix = "_zst"
			}
			f, err := writeMDAs(dir, x.typ+suffix, x.ext, compression, write)
			if err != nil {
				return nil, err
			}
			out = append(out, f)
			continue
		}
		f, err := writeMDAs(dir, x.typ, x.ext, compression, write)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// writePlainMD writes an uncompressed metadata file named by its checksum.
func writePlainMD(dir, typ, ext string, data []byte) (mdFile, error) {
	sum := sha256.Sum256(data)
	f := mdFile{typ: typ, sum: hex.EncodeToString(sum[:]), size: int64(len(data))}
	name := f.sum + "-" + typ + ext
	f.href = "repodata/" + name
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return mdFile{}, err
	}
	if fi, err := os.Stat(path); err == nil {
		f.mtime = fi.ModTime().Unix()
	}
	return f, nil
}
