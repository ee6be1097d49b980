package goproxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/mirror"
)

// Result is how a sync ended: the api package's type, Repo being the
// tree's name.
type Result = api.SyncResult

// ErrRefused wraps every sync that found content not matching its hashes.
var ErrRefused = errors.New("nothing published")

// Sync mirrors every module version the config lists, verified, and
// publishes them as one tree; progress (may be nil) gets the sync as it
// goes. A version whose go.mod or zip does not match go.sum or the
// checksum database refuses the sync: the error names it and the tree
// published before stays.
func (p *Proxy) Sync(ctx context.Context, progress func(mirror.Progress)) (Result, error) {
	cfg := p.config()
	st := p.Store(treeName)
	unlock, err := st.Lock()
	if err != nil {
		return Result{Repo: treeName, Error: err.Error()}, fmt.Errorf("goproxy: %w; wait for it or stop it", err)
	}
	defer unlock()
	started := p.now()
	tr := mirror.NewTracker[mirror.Progress](mirror.Progress{Repo: treeName, Phase: "metadata", Started: started},
		progress, func(pr *mirror.Progress) { p.setProgress(pr) })
	defer p.setProgress(nil)
	res, state, err := p.sync(ctx, cfg, st, tr)
	res.Repo, res.Duration = treeName, p.now().Sub(started).Seconds()
	if err != nil {
		// The published tree stays, and with it its record.
		state = p.state()
		state.LastResult, state.LastError = "failed", err.Error()
		res.Error = err.Error()
		tr.Update(true, func(pr *mirror.Progress) { pr.Phase = "failed" })
	} else {
		res.OK = true
		state.LastResult = "ok"
		tr.Update(true, func(pr *mirror.Progress) { pr.Phase = "done" })
	}
	state.LastSync, state.Duration, state.Downloaded, state.Upstream = started, res.Duration, res.Downloaded, cfg.Upstream
	if werr := st.WriteState(state); werr != nil && err == nil {
		err = fmt.Errorf("goproxy: write state: %w", werr)
	}
	p.setState(state)
	p.m.synced(res)
	return res, err
}

// sync does Sync's work under the lock.
func (p *Proxy) sync(ctx context.Context, cfg Config, st mirror.Store, tr *mirror.Tracker[mirror.Progress, *mirror.Progress]) (Result, treeState, error) {
	var res Result
	var state treeState
	if cfg.Upstream == "" {
		return res, state, errors.New("goproxy: no upstream: set goproxy.upstream to the GOPROXY to sync from")
	}
	st.Clean()
	if err := os.MkdirAll(filepath.Join(st.Dir, "partial"), 0o750); err != nil {
		return res, state, err
	}
	wants, err := collect(cfg)
	if err != nil {
		return res, state, err
	}
	f, err := p.newFetcher(cfg)
	if err != nil {
		return res, state, err
	}
	defer f.Close()
	list := wants.sorted()
	upstream := strings.TrimSuffix(cfg.Upstream, "/")
	var rec *recorder
	if cfg.SumDB.Enabled() {
		base := p.sumdbBase(ctx, f, cfg, upstream)
		p.mu.Lock()
		p.dbBase = base
		p.mu.Unlock()
		rec = &recorder{ctx: ctx, f: f, db: cfg.SumDB, base: base, log: p.log, files: map[string][]byte{}}
		if err := rec.lookupAll(ctx, cfg.Parallel, list); err != nil {
			return res, state, fmt.Errorf("goproxy: %w: %w", err, ErrRefused)
		}
	}
	if err := checkHashes(list); err != nil {
		return res, state, err
	}
	tr.Update(true, func(pr *mirror.Progress) { pr.Phase, pr.Packages, pr.ToFetch = "packages", len(list), len(list) })
	cur, _ := st.Current()
	got := make([]versionFiles, len(list))
	idx := make([]int, len(list))
	for i := range idx {
		idx[i] = i
	}
	mirror.EachParallel(ctx, idx, cfg.Parallel, func() func(int) {
		return func(i int) {
			got[i] = p.fetchVersion(ctx, f, st, cur, upstream, list[i])
			tr.Update(false, func(pr *mirror.Progress) { pr.Fetched++; pr.BytesDone += got[i].downloaded })
		}
	})
	if err := ctx.Err(); err != nil {
		return res, state, err
	}
	var errs []string
	for _, g := range got {
		if g.err != nil {
			errs = append(errs, g.err.Error())
		}
	}
	if len(errs) > 0 {
		return res, state, fmt.Errorf("goproxy: %d of %d module versions failed: %s: %w", len(errs), len(list), strings.Join(mirror.FirstN(errs, 5), "; "), ErrRefused)
	}
	tr.Update(true, func(pr *mirror.Progress) { pr.Phase = "publish" })
	files, mem, state := treeOf(cfg, list, got, rec)
	for _, g := range got {
		res.Downloaded += g.downloaded
		res.Fetched += g.fetched
	}
	if _, err := st.PublishTree(ctx, files, placeMem(mem)); err != nil {
		return res, state, fmt.Errorf("goproxy: publish: %w", err)
	}
	state.Revision = revision(files)
	state.Published = p.now()
	res.Revision, res.Packages = state.Revision, state.Packages
	return res, state, nil
}

// collect is every module version the config asks for.
func collect(cfg Config) (wantSet, error) {
	wants := wantSet{}
	for _, f := range cfg.GoMod {
		if err := wants.readGoMod(f); err != nil {
			return nil, err
		}
	}
	for _, s := range cfg.Modules {
		m, err := parseModule(s)
		if err != nil {
			return nil, fmt.Errorf("goproxy.modules: %w", err)
		}
		wants.add(m, true)
	}
	return wants, nil
}

// checkHashes refuses versions with no hash to check them by.
func checkHashes(list []*want) error {
	var missing []string
	for _, w := range list {
		if w.ModHash == "" || (w.Zip && w.ZipHash == "") {
			missing = append(missing, w.Mod.Path+"@"+w.Mod.Version)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("goproxy: no hash to verify %s by: add them to a go.sum (go mod tidy) or set goproxy.sumdb: %w", strings.Join(mirror.FirstN(missing, 5), ", "), ErrRefused)
	}
	return nil
}

// treeOf is the tree to publish: every version's files, a list per
// module path (the versions with a zip, pseudo-versions left out as the
// protocol says) and the database's answers.
func treeOf(cfg Config, list []*want, got []versionFiles, rec *recorder) ([]mirror.TreeFile, map[string][]byte, treeState) {
	var files []mirror.TreeFile
	var state treeState
	mem := map[string][]byte{}
	versions := map[string][]string{}
	for i, g := range got {
		files = append(files, g.files...)
		for k, v := range g.mem {
			mem[k] = v
		}
		w := list[i]
		if _, ok := versions[w.Mod.Path]; !ok {
			versions[w.Mod.Path] = nil
		}
		if w.Zip {
			state.Packages++
			state.Bytes += g.zipSize
			if !module.IsPseudoVersion(w.Mod.Version) {
				versions[w.Mod.Path] = append(versions[w.Mod.Path], w.Mod.Version)
			}
		}
	}
	state.Modules = len(versions)
	add := func(rel string, b []byte) {
		sum := sha256.Sum256(b)
		mem[rel] = b
		files = append(files, mirror.TreeFile{Path: rel, Sum: mirror.Checksum{Type: "sha256", Value: hex.EncodeToString(sum[:])}, Size: int64(len(b))})
	}
	for path, vs := range versions {
		semver.Sort(vs)
		esc, _ := module.EscapePath(path)
		var b strings.Builder
		for _, v := range vs {
			b.WriteString(v + "\n")
		}
		add(esc+"/@v/list", []byte(b.String()))
	}
	if rec != nil {
		for rel, b := range rec.files {
			if strings.HasPrefix(rel, "lookup/") {
				state.Lookups++
			}
			add("sumdb/"+cfg.SumDB.name()+"/"+rel, b)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, mem, state
}

// placeMem puts a file held in memory into the pool.
func placeMem(mem map[string][]byte) mirror.PlaceFunc {
	return func(_ context.Context, f mirror.TreeFile, dst string) error {
		b, ok := mem[f.Path]
		if !ok {
			return fmt.Errorf("not in the pool and not fetched (a bug)")
		}
		tmp := dst + ".part"
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, dst)
	}
}

// revision names a tree by its content: the first 12 hex digits of the
// sha256 of its paths and checksums.
func revision(files []mirror.TreeFile) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s %s\n", f.Path, f.Sum.Value)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
