package rpm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/mirror"
)

// Result is how one repo's sync (or index) ended: the api package's type.
type Result = api.SyncResult

// ErrUnknownRepo is returned for a name that is not in the config.
var ErrUnknownRepo = errors.New("no such repo")

// Sync mirrors the named repos (every mirrored repo when names is empty),
// one after the other, and publishes each that succeeds. A local repo
// named explicitly is indexed instead (as Index does), so one control
// socket route serves `mirror sync` and `mirror index`. progress, when not
// nil, is called as each goes (at most a few times a second). The error
// joins every repo's failure; results has one entry per repo attempted.
func (m *Mirror) Sync(ctx context.Context, names []string, progress func(mirror.Progress)) ([]Result, error) {
	cfg := m.Config()
	var repos []Repo
	if len(names) == 0 {
		for _, r := range cfg.Repos {
			if r.Mirrored() {
				repos = append(repos, r)
			}
		}
		if len(repos) == 0 {
			return nil, errors.New("no repo has a baseurl to sync from")
		}
	}
	for _, n := range names {
		r, ok := cfg.Lookup(n)
		if !ok {
			return nil, fmt.Errorf("%w %q in the config", ErrUnknownRepo, n)
		}
		repos = append(repos, r) // a local repo named here is indexed (the control socket's route for `mirror index`)
	}
	return m.runRepos(ctx, cfg, repos, progress)
}

// endRun records how a sync or index (what) of repo name ended: in res,
// in its state on disk and in the status, and as its last progress.
func (m *Mirror) endRun(name string, st mirror.Store, state *repoState, res *Result, tr *syncTracker, began time.Time, err error, what string) {
	res.Duration = m.now().Sub(began).Seconds()
	state.LastSync, state.Duration = began, res.Duration
	state.LastResult, state.LastError = "ok", ""
	phase := "done"
	if err != nil {
		state.LastResult, state.LastError, phase = "failed", err.Error(), "failed"
		res.Error = err.Error()
	}
	res.OK = err == nil
	if werr := st.WriteState(*state); werr != nil {
		m.log.Warn("cannot record "+what+" state", "repo", name, "err", werr)
	}
	tr.Update(true, func(p *mirror.Progress) { p.Phase = phase })
	m.book.SetProgress(name, nil)
	m.finished(name, *state, *res)
}

// runRepos syncs each mirrored repo and indexes each local one, in turn,
// until ctx ends; the error joins every repo's failure.
func (m *Mirror) runRepos(ctx context.Context, cfg Config, repos []Repo, progress func(mirror.Progress)) ([]Result, error) {
	var results []Result
	var errs []error
	for _, r := range repos {
		var res Result
		var err error
		if r.Mirrored() {
			res, err = m.syncRepo(ctx, cfg, r, progress)
		} else {
			res, err = m.indexRepo(ctx, cfg, r, false, progress)
		}
		results = append(results, res)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Name, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return results, errors.Join(errs...)
}

// syncRepo syncs mirrored repo r with the settings of cfg, the one
// snapshot of the config this sync reads (a reload during the sync takes
// effect at the next).
func (m *Mirror) syncRepo(ctx context.Context, cfg Config, r Repo, notify func(mirror.Progress)) (res Result, err error) {
	parallel := cfg.Parallel
	began := m.now()
	res.Repo = r.Name
	st := mirror.RepoStore(m.deps.DataDir, r.Name)
	unlock, err := st.Lock()
	if err != nil {
		res.Error = err.Error()
		return res, err
	}
	defer unlock()
	tr := mirror.NewTracker(mirror.Progress{Repo: r.Name, Phase: "metadata", Started: began}, notify, func(p *mirror.Progress) { m.book.SetProgress(r.Name, p) })
	tr.Update(true, func(*mirror.Progress) {})
	state := readState(st)
	var downloaded atomic.Int64
	defer func() {
		res.Downloaded = downloaded.Load()
		state.Downloaded = res.Downloaded
		m.endRun(r.Name, st, &state, &res, tr, began, err, "sync")
	}()

	f, err := newFetcher(m.log, parallel, r)
	if err != nil {
		return res, err
	}
	defer f.Close()
	// The baseurl, or the first good mirror of a mirrorlist or metalink.
	up, err := openUpstream(ctx, f, r, repoVars(cfg.Vars, r.Vars), m.log)
	if err != nil {
		return res, err
	}
	base, mdBytes, md := up.base, up.repomd, up.md
	bases := append([]string{base}, up.fallbacks...)
	downloaded.Add(up.fetched)
	state.Upstream = base
	res.Revision = md.Revision
	// gpgcheck's keys, read each sync: a changed key rebuilds the snapshot.
	var keys gpgKeys
	if r.GPGCheck {
		keys, err = loadKeys(ctx, strings.Fields(r.GPGKey), base, func(ctx context.Context, u string) ([]byte, error) { return f.Get(ctx, u, maxKeyFile) })
		if err != nil {
			return res, err
		}
	}
	policy := syncPolicy(r, keys)
	cur, err := st.Current()
	if err != nil {
		return res, err
	}
	if cur != "" && slices.Equal(state.Arch, r.Arch) && state.Policy == policy && state.LastResult == "ok" {
		if old, err := os.ReadFile(filepath.Join(cur, "repodata", "repomd.xml")); err == nil && bytes.Equal(old, mdBytes) {
			res.UpToDate, res.Packages = true, state.Packages
			m.log.Info("repo is up to date", "repo", r.Name, "revision", md.Revision)
			return res, nil
		}
	}
	tmp, err := st.NewSnapshot(time.Now()) // a folder name: the real clock, unique
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp) // gone by then when published

	// Metadata: every file repomd.xml lists, verified, into the pool; and
	// repomd.xml with its signature and key.
	primaryFile, err := fetchMetadata(ctx, f, st, bases, md, tmp, &downloaded)
	if err != nil {
		return res, err
	}
	if err := writeRepomd(ctx, f, base, tmp, mdBytes); err != nil {
		return res, err
	}

	pkgs, todo, total, err := packageList(st, primaryFile, md, r)
	if err != nil {
		return res, err
	}
	res.Packages = countHrefs(pkgs)
	var todoBytes, have int64
	for _, p := range todo {
		todoBytes += p.Size
		if fi, err := os.Stat(st.Partial(p.Checksum.sum())); err == nil {
			have += fi.Size()
		}
	}
	tr.Update(true, func(pr *mirror.Progress) {
		pr.Phase, pr.Packages, pr.ToFetch, pr.Bytes, pr.BytesDone = "packages", res.Packages, len(todo), todoBytes, have
	})
	m.log.Info("syncing packages", "repo", r.Name, "revision", md.Revision, "packages", res.Packages, "missing", len(todo), "bytes", todoBytes)

	if err := m.download(ctx, f, st, bases, todo, parallel, tr, &downloaded); err != nil {
		return res, err
	}
	res.Fetched = len(todo)

	tr.Update(true, func(pr *mirror.Progress) { pr.Phase = "publish" })
	if err := m.fillTree(ctx, st, r, pkgs, tmp, cur, keys, state.Policy == policy, parallel, tr); err != nil {
		return res, err
	}
	if _, err := st.Publish(tmp); err != nil {
		return res, fmt.Errorf("publish: %w", err)
	}
	state.Revision, state.Published, state.Packages, state.Bytes, state.Arch = md.Revision, m.now(), res.Packages, total, slices.Clone(r.Arch)
	state.Policy = policy
	m.log.Info("repo published", "repo", r.Name, "revision", md.Revision, "packages", res.Packages, "fetched", len(todo), "took", m.now().Sub(began).Round(time.Millisecond))
	return res, nil
}

// fetchMetadata fetches every file repomd.xml lists into the pool,
// verified, and links it into tree; it returns primary's pool file.
func fetchMetadata(ctx context.Context, f *mirror.Fetcher, st mirror.Store, bases []string, md *repomd, tree string, downloaded *atomic.Int64) (string, error) {
	var primaryFile string
	for _, d := range md.Data {
		if err := d.Checksum.sum().Valid(); err != nil {
			return "", fmt.Errorf("repomd.xml %s: %w", d.Type, err)
		}
		dst := st.Pool(d.Checksum.sum())
		if _, err := os.Stat(dst); err != nil {
			if err := fetchAny(ctx, f, bases, d.Location, st.Partial(d.Checksum.sum()), dst, d.Checksum, d.Size, nil, func(n int64) { downloaded.Add(n) }); err != nil {
				return "", fmt.Errorf("metadata %s: %w", d.Location.Href, err)
			}
		}
		if err := mirror.Link(dst, tree, d.Location.Href); err != nil {
			return "", err
		}
		if d.Type == "primary" {
			primaryFile = dst
		}
	}
	if primaryFile == "" {
		return "", errors.New("repomd.xml lists no primary metadata")
	}
	return primaryFile, nil
}

// writeRepomd writes the upstream's repomd.xml into tree, byte for byte,
// and its signature and key when the upstream has them, so repo_gpgcheck
// keeps working.
func writeRepomd(ctx context.Context, f *mirror.Fetcher, base, tree string, mdBytes []byte) error {
	if err := os.MkdirAll(filepath.Join(tree, "repodata"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tree, "repodata", "repomd.xml"), mdBytes, 0o644); err != nil {
		return err
	}
	for _, extra := range []string{"repomd.xml.asc", "repomd.xml.key"} {
		b, err := f.Get(ctx, base+"repodata/"+extra, maxRepomd)
		switch {
		case err == nil:
			if err := os.WriteFile(filepath.Join(tree, "repodata", extra), b, 0o644); err != nil {
				return err
			}
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("%s: %w", extra, err)
		}
	}
	return nil
}

// packageList reads primary's packages, keeps those the arch and keep
// filters let through, and returns them, the ones the pool lacks (each
// href once), and the size of them all.
func packageList(st mirror.Store, primaryFile string, md *repomd, r Repo) (pkgs, todo []pkg, total int64, err error) {
	pf, err := os.Open(primaryFile)
	if err != nil {
		return nil, nil, 0, err
	}
	pd, _ := md.primary()
	pkgs, err = parsePrimary(pf, pd.Location.Href)
	pf.Close()
	if err != nil {
		return nil, nil, 0, err
	}
	if len(r.Arch) > 0 {
		pkgs = slices.DeleteFunc(pkgs, func(p pkg) bool { return !slices.Contains(r.Arch, p.Arch) })
	}
	pkgs = newest(pkgs, r.Keep)
	seen := map[string]bool{}
	for _, p := range pkgs {
		if err := p.Checksum.sum().Valid(); err != nil {
			return nil, nil, 0, fmt.Errorf("package %s: %w", p.Href, err)
		}
		if seen[p.Href] {
			continue
		}
		seen[p.Href] = true
		total += p.Size
		if !st.Has(p.Checksum.sum()) {
			todo = append(todo, p)
		}
	}
	return pkgs, todo, total, nil
}

// countHrefs is how many distinct packages pkgs names.
func countHrefs(pkgs []pkg) int {
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[p.Href] = true
	}
	return len(seen)
}

// fillTree links the packages into tree, keeps what the upstream dropped
// unless delete, and with gpgcheck verifies every package of the tree
// (those of the published tree cur only when the keys changed) and puts
// the key beside them.
func (m *Mirror) fillTree(ctx context.Context, st mirror.Store, r Repo, pkgs []pkg, tree, cur string, keys gpgKeys, sameKeys bool, parallel int, tr *syncTracker) error {
	for _, p := range pkgs {
		if err := mirror.Link(st.Pool(p.Checksum.sum()), tree, p.Href); err != nil {
			return fmt.Errorf("package %s: %w", p.Href, err)
		}
	}
	if !r.Delete && cur != "" {
		if err := carryOver(cur, tree); err != nil {
			return fmt.Errorf("keep packages the upstream dropped: %w", err)
		}
	}
	if !r.GPGCheck {
		return nil
	}
	tr.Update(true, func(pr *mirror.Progress) { pr.Phase = "verify" })
	n, err := verifyTree(ctx, tree, cur, sameKeys, keys.keys, parallel)
	if err != nil {
		return err
	}
	if err := writeKeyFile(tree, r.Name, keys.armored); err != nil {
		return fmt.Errorf("gpgkey: %w", err)
	}
	m.log.Info("package signatures verified", "repo", r.Name, "checked", n, "keys", strings.Join(keys.fingerprints(), ","))
	tr.Update(true, func(pr *mirror.Progress) { pr.Phase = "publish" })
	return nil
}

// fetchAny fetches the file at l from bases[0] and, while it fails, from
// each other mirror of the list in turn (the store's FetchAny: the
// checksum decides, whichever mirror sent it). buf may be nil.
func fetchAny(ctx context.Context, f *mirror.Fetcher, bases []string, l location, partial, dst string, sum checksum, size int64, buf []byte, progress func(int64)) error {
	urls := make([]string, len(bases))
	for i, base := range bases {
		urls[i] = locationURL(base, l) // an xml:base names one place only: the same URL, asked once
	}
	return f.FetchAny(ctx, urls, partial, dst, sum.sum(), size, buf, progress)
}

// download fetches todo with parallel workers, each package from the first
// of bases that gives it (fetchAny). Every package is tried even when one
// fails (what arrives now need not be fetched next time); the error names
// each that failed.
func (m *Mirror) download(ctx context.Context, f *mirror.Fetcher, st mirror.Store, bases []string, todo []pkg, parallel int, tr *syncTracker, downloaded *atomic.Int64) error {
	var mu sync.Mutex
	var failed []string
	var errs []error
	err := mirror.EachParallel(ctx, todo, parallel, func() func(pkg) {
		buf := make([]byte, mirror.CopyBuffer) // this worker's, for every package it fetches
		return func(p pkg) {
			err := fetchAny(ctx, f, bases, location{Href: p.Href, Base: p.Base}, st.Partial(p.Checksum.sum()), st.Pool(p.Checksum.sum()), p.Checksum, p.Size, buf, func(n int64) {
				downloaded.Add(n)
				tr.Update(false, func(pr *mirror.Progress) { pr.BytesDone += n })
			})
			if err != nil {
				if ctx.Err() == nil {
					m.log.Warn("package download failed", "package", p.Href, "err", err)
				}
				mu.Lock()
				failed = append(failed, p.Href)
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			tr.Update(false, func(pr *mirror.Progress) { pr.Fetched++ })
		}
	})
	if err != nil {
		return err
	}
	if len(failed) == 0 {
		return nil
	}
	slices.Sort(failed)
	return fmt.Errorf("%d package(s) failed, nothing published: %s: %w", len(failed), strings.Join(mirror.FirstN(failed, 5), ", "), errors.Join(errs...))
}

// carryOver links into next every file of cur that next lacks, outside
// repodata/: packages the upstream dropped stay downloadable (reposync
// without --delete).
func carryOver(cur, next string) error {
	return filepath.WalkDir(cur, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(cur, p)
		if d.IsDir() {
			if rel == "repodata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if _, err := os.Lstat(filepath.Join(next, rel)); err == nil {
			return nil
		}
		return mirror.Link(p, next, filepath.ToSlash(rel))
	})
}

// locationURL resolves a location against the repo's base URL, or its own
// xml:base.
func locationURL(base string, l location) string {
	if l.Base != "" {
		return strings.TrimSuffix(l.Base, "/") + "/" + l.Href
	}
	return base + l.Href
}
