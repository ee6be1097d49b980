package apt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/airgapd/airgapd/mirror"
)

// ErrUnknownRepo is returned for a name that is not in the config.
var ErrUnknownRepo = errors.New("no such apt repo")

// Sync mirrors the named repos (every mirrored repo when names is empty)
// and indexes the local ones named, one after the other. The error joins
// every repo's failure; results has one entry per repo attempted.
func (a *Apt) Sync(ctx context.Context, names []string, progress func(mirror.Progress)) ([]Result, error) {
	cfg := a.book.Config()
	var repos []Repo
	if len(names) == 0 {
		for _, r := range cfg.Repos {
			if r.Mirrored() {
				repos = append(repos, r)
			}
		}
		if len(repos) == 0 {
			return nil, errors.New("no apt repo has a url to sync from")
		}
	}
	for _, n := range names {
		r, ok := cfg.Lookup(n)
		if !ok {
			return nil, fmt.Errorf("%w %q in the config", ErrUnknownRepo, n)
		}
		repos = append(repos, r)
	}
	var results []Result
	var errs []error
	for _, r := range repos {
		var res Result
		var err error
		if r.Mirrored() {
			res, err = a.syncRepo(ctx, cfg, r, progress)
		} else {
			res, err = a.indexRepo(ctx, r, progress)
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

// Index indexes the named local repos (every local repo when names is
// empty).
func (a *Apt) Index(ctx context.Context, names []string, progress func(mirror.Progress)) ([]Result, error) {
	if len(names) == 0 {
		for _, r := range a.book.Config().Repos {
			if !r.Mirrored() {
				names = append(names, r.Name)
			}
		}
		if len(names) == 0 {
			return nil, errors.New("no apt repo has a path to index")
		}
	}
	return a.Sync(ctx, names, progress)
}

// endRun records how a run of repo name ended.
func (a *Apt) endRun(name string, st mirror.Store, state *repoState, res *Result, tr *tracker, began time.Time, err error) {
	res.Duration = a.now().Sub(began).Seconds()
	state.LastSync, state.Duration = began, res.Duration
	state.LastResult, state.LastError = "ok", ""
	phase := "done"
	if err != nil {
		state.LastResult, state.LastError, phase = "failed", err.Error(), "failed"
		res.Error = err.Error()
	}
	res.OK = err == nil
	if werr := st.WriteState(*state); werr != nil {
		a.log.Warn("cannot record the run's state", "repo", name, "err", werr)
	}
	tr.Update(true, func(p *mirror.Progress) { p.Phase = phase })
	a.book.SetProgress(name, nil)
	a.book.SetState(name, *state)
	a.m.synced(name, *res)
}

// syncRun is one sync's working set.
type syncRun struct {
	a     *Apt
	r     Repo
	st    mirror.Store
	f     *mirror.Fetcher
	base  string // the repo's root URL, ending in "/"
	ring  openpgp.EntityList
	files map[string]mirror.TreeFile // the tree, by path
	debs  []debEntry
	got   atomic.Int64
	tr    *tracker
}

func (s *syncRun) add(p string, sum string, size int64) {
	s.files[p] = mirror.TreeFile{Path: p, Sum: mirror.Checksum{Type: "sha256", Value: sum}, Size: size}
}

func (a *Apt) syncRepo(ctx context.Context, cfg Config, r Repo, notify func(mirror.Progress)) (res Result, err error) {
	began := a.now()
	res.Repo = r.Name
	st := a.Store(r.Name)
	unlock, err := st.Lock()
	if err != nil {
		res.Error = err.Error()
		return res, err
	}
	defer unlock()
	s := &syncRun{a: a, r: r, st: st, base: strings.TrimSuffix(r.URL, "/") + "/", files: map[string]mirror.TreeFile{}}
	s.tr = mirror.NewTracker(mirror.Progress{Repo: r.Name, Phase: "metadata", Started: began}, notify, func(p *mirror.Progress) { a.book.SetProgress(r.Name, p) })
	s.tr.Update(true, func(*mirror.Progress) {})
	state := readState(st)
	defer func() {
		res.Downloaded = s.got.Load()
		state.Downloaded = res.Downloaded
		a.endRun(r.Name, st, &state, &res, s.tr, began, err)
	}()
	if s.ring, err = loadKeyring(r.Keyring); err != nil {
		return res, err
	}
	if s.f, err = newFetcher(a, cfg.Parallel, r); err != nil {
		return res, err
	}
	defer s.f.Close()
	state.Upstream = r.URL

	releases := map[string]string{}
	rels := map[string]*release{}
	for _, suite := range r.Suites {
		rel, sum, err := s.fetchRelease(ctx, suite)
		if err != nil {
			return res, err
		}
		rels[suite], releases[suite] = rel, sum
	}
	policy := fmt.Sprint(r.Suites, r.componentsOf(), r.archesOf(), r.Keep)
	res.Revision = revision(releases)
	if cur, _ := st.Current(); cur != "" && state.LastResult == "ok" && state.Policy == policy && mapsEqual(state.Releases, releases) {
		res.UpToDate, res.Packages = true, state.Packages
		a.log.Info("apt repo is up to date", "repo", r.Name)
		return res, nil
	}
	for _, suite := range r.Suites {
		if err := s.fetchIndexes(ctx, suite, rels[suite]); err != nil {
			return res, err
		}
	}
	todo, total, err := s.packageList()
	if err != nil {
		return res, err
	}
	res.Packages = len(s.debs)
	if err := s.download(ctx, todo, cfg.Parallel); err != nil {
		return res, err
	}
	res.Fetched = len(todo)
	s.tr.Update(true, func(p *mirror.Progress) { p.Phase = "publish" })
	if err := s.publish(ctx); err != nil {
		return res, err
	}
	armored, _ := mirror.ArmorPublic(s.ring)
	state.Revision, state.Published, state.Packages, state.Bytes = res.Revision, a.now(), res.Packages, total
	state.Policy, state.Releases, state.Keyring = policy, releases, armored
	a.log.Info("apt repo published", "repo", r.Name, "packages", res.Packages, "fetched", len(todo), "took", a.now().Sub(began).Round(time.Millisecond))
	return res, nil
}

// fetchRelease gets a suite's InRelease (or Release and Release.gpg),
// verifies it against the keyring, puts the files into the pool and the
// tree, and returns it parsed with the SHA256 of what was verified.
func (s *syncRun) fetchRelease(ctx context.Context, suite string) (*release, string, error) {
	dir := "dists/" + suite + "/"
	in, err := s.f.Get(ctx, s.base+dir+"InRelease", maxRelease)
	var signed []byte
	switch {
	case err == nil:
		s.got.Add(int64(len(in)))
		if signed, err = verifyInRelease(in, s.ring); err != nil {
			return nil, "", fmt.Errorf("%sInRelease: %w", dir, err)
		}
		if err := s.putBytes(dir+"InRelease", in); err != nil {
			return nil, "", err
		}
	case errors.Is(err, os.ErrNotExist):
		rel, err := s.f.Get(ctx, s.base+dir+"Release", maxRelease)
		if err != nil {
			return nil, "", fmt.Errorf("%s: neither InRelease nor Release: %w", dir, err)
		}
		sig, err := s.f.Get(ctx, s.base+dir+"Release.gpg", 1<<20)
		if err != nil {
			return nil, "", fmt.Errorf("%sRelease.gpg: %w (an unsigned Release is not mirrored)", dir, err)
		}
		s.got.Add(int64(len(rel) + len(sig)))
		if err := verifyDetached(rel, sig, s.ring); err != nil {
			return nil, "", fmt.Errorf("%sRelease: %w", dir, err)
		}
		signed = rel
		if err := s.putBytes(dir+"Release", rel); err != nil {
			return nil, "", err
		}
		if err := s.putBytes(dir+"Release.gpg", sig); err != nil {
			return nil, "", err
		}
	default:
		return nil, "", fmt.Errorf("%sInRelease: %w", dir, err)
	}
	rel, err := parseRelease(signed)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", dir, err)
	}
	sum := sha256.Sum256(signed)
	return rel, hex.EncodeToString(sum[:]), nil
}

// putBytes puts b into the pool and at p in the tree.
func (s *syncRun) putBytes(p string, b []byte) error {
	f, err := putBytes(s.st, p, b)
	if err != nil {
		return err
	}
	s.files[p] = f
	return nil
}

// fetchIndexes fetches every index rel names for the repo's components
// and architectures, each checked by size and SHA256 (from its by-hash
// path when the canonical one is missing), and reads the Packages. An
// index the Release lists but the upstream does not serve (Debian lists
// uncompressed Packages it does not keep) is skipped, as apt skips it;
// each Packages folder must give at least one.
func (s *syncRun) fetchIndexes(ctx context.Context, suite string, rel *release) error {
	dir := "dists/" + suite + "/"
	var names []string
	for p := range rel.files {
		if wanted(p, s.r.componentsOf(), s.r.archesOf()) {
			names = append(names, p)
		}
	}
	sort.Strings(names)
	readFrom := map[string]string{} // Packages folder -> the variant read
	for _, p := range names {
		ix := rel.files[p]
		sum := mirror.Checksum{Type: "sha256", Value: ix.SHA256}
		byHash := path.Dir(p) + "/by-hash/SHA256/" + ix.SHA256
		if !s.st.Has(sum) {
			err := s.fetch(ctx, dir+p, sum, ix.Size)
			if errors.Is(err, os.ErrNotExist) && rel.byHash {
				err = s.fetch(ctx, dir+byHash, sum, ix.Size)
			}
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("%s%s: %w", dir, p, err)
			}
		}
		s.add(dir+p, ix.SHA256, ix.Size)
		if rel.byHash {
			s.add(dir+byHash, ix.SHA256, ix.Size)
		}
		if base := path.Base(p); isIndex(base, "Packages") {
			if prev, ok := readFrom[path.Dir(p)]; !ok || rank(base) < rank(path.Base(prev)) {
				readFrom[path.Dir(p)] = p
			}
		}
	}
	for _, p := range names {
		if d := path.Dir(p); isIndex(path.Base(p), "Packages") && readFrom[d] == "" {
			return fmt.Errorf("%s%s: no Packages index of this folder could be fetched", dir, d)
		}
	}
	for _, p := range slices.Sorted(mapValues(readFrom)) {
		if err := s.readPackages(dir, p, rel.files[p]); err != nil {
			return err
		}
	}
	return nil
}

// fetch gets the file at p (under the repo's root) into the pool,
// checked against sum and size.
func (s *syncRun) fetch(ctx context.Context, p string, sum mirror.Checksum, size int64) error {
	return s.f.Fetch(ctx, s.base+p, s.st.Partial(sum), s.st.Pool(sum), sum, size, nil, func(n int64) { s.got.Add(n) })
}

// rank is the order Packages variants are read in (the cheapest first).
func rank(file string) int {
	return slices.Index([]string{"Packages", "Packages.gz", "Packages.xz", "Packages.zst", "Packages.bz2", "Packages.lzma"}, file)
}

func (s *syncRun) readPackages(dir, p string, ix indexFile) error {
	rc, err := openIndex(s.st.Pool(mirror.Checksum{Type: "sha256", Value: ix.SHA256}), p)
	if err != nil {
		return fmt.Errorf("%s%s: %w", dir, p, err)
	}
	defer rc.Close()
	debs, err := parsePackages(rc, dir+p)
	if err != nil {
		return err
	}
	s.debs = append(s.debs, debs...)
	return nil
}

// packageList applies keep, checks that no Filename is listed with two
// checksums, adds the .debs to the tree and returns those the pool lacks.
func (s *syncRun) packageList() (todo []debEntry, total int64, err error) {
	s.debs = newest(s.debs, s.r.Keep)
	seen := map[string]debEntry{}
	var uniq []debEntry
	for _, d := range s.debs {
		if prev, ok := seen[d.Filename]; ok {
			if prev.SHA256 != d.SHA256 || prev.Size != d.Size {
				return nil, 0, fmt.Errorf("%s is listed with two different checksums; the upstream is being updated: sync again later", d.Filename)
			}
			continue
		}
		seen[d.Filename] = d
		uniq = append(uniq, d)
		total += d.Size
		s.add(d.Filename, d.SHA256, d.Size)
		if !s.st.Has(mirror.Checksum{Type: "sha256", Value: d.SHA256}) {
			todo = append(todo, d)
		}
	}
	s.debs = uniq
	return todo, total, nil
}

// download fetches todo with parallel workers; every package is tried
// even when one fails, and the error names each that failed.
func (s *syncRun) download(ctx context.Context, todo []debEntry, parallel int) error {
	var todoBytes, have int64
	for _, d := range todo {
		todoBytes += d.Size
		if fi, err := os.Stat(s.st.Partial(mirror.Checksum{Type: "sha256", Value: d.SHA256})); err == nil {
			have += fi.Size()
		}
	}
	s.tr.Update(true, func(p *mirror.Progress) {
		p.Phase, p.Packages, p.ToFetch, p.Bytes, p.BytesDone = "packages", len(s.debs), len(todo), todoBytes, have
	})
	s.a.log.Info("syncing packages", "repo", s.r.Name, "packages", len(s.debs), "missing", len(todo), "bytes", todoBytes)
	var mu sync.Mutex
	var failed []string
	var errs []error
	err := mirror.EachParallel(ctx, todo, parallel, func() func(debEntry) {
		buf := make([]byte, mirror.CopyBuffer)
		return func(d debEntry) {
			sum := mirror.Checksum{Type: "sha256", Value: d.SHA256}
			err := s.f.Fetch(ctx, s.base+d.Filename, s.st.Partial(sum), s.st.Pool(sum), sum, d.Size, buf, func(n int64) {
				s.got.Add(n)
				s.tr.Update(false, func(p *mirror.Progress) { p.BytesDone += n })
			})
			if err != nil {
				mu.Lock()
				failed, errs = append(failed, d.Filename), append(errs, err)
				mu.Unlock()
				return
			}
			s.tr.Update(false, func(p *mirror.Progress) { p.Fetched++ })
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

// publish publishes the tree in one switch; every file is in the pool.
func (s *syncRun) publish(ctx context.Context) error {
	files := slices.SortedFunc(mapValues(s.files), func(a, b mirror.TreeFile) int { return strings.Compare(a.Path, b.Path) })
	_, err := s.st.PublishTree(ctx, files, func(_ context.Context, f mirror.TreeFile, _ string) error {
		return fmt.Errorf("not in the pool (a bug)")
	})
	return err
}

// newFetcher builds a sync's downloads through the repo's proxy, CA and
// credentials.
func newFetcher(a *Apt, parallel int, r Repo) (*mirror.Fetcher, error) {
	f, err := mirror.NewFetcher(a.log, parallel, func(tr *http.Transport) error { return configureUpstream(tr, r) })
	if err != nil {
		return nil, err
	}
	if r.Username != "" {
		f.Client.Transport = basicAuth{next: f.Client.Transport, user: r.Username, pass: r.Password}
	}
	return f, nil
}

type basicAuth struct {
	next       http.RoundTripper
	user, pass string
}

func (b basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.SetBasicAuth(b.user, b.pass)
	return b.next.RoundTrip(req)
}

// configureUpstream sets tr's proxy and CA as repo r asks.
func configureUpstream(tr *http.Transport, r Repo) error {
	if r.Proxy != nil {
		if *r.Proxy == "" {
			tr.Proxy = nil
		} else {
			u, err := url.Parse(*r.Proxy)
			if err != nil {
				return fmt.Errorf("proxy %q: %w", *r.Proxy, err)
			}
			tr.Proxy = http.ProxyURL(u)
		}
	}
	if r.SSLCACert != "" {
		pool, err := caPool(r.SSLCACert)
		if err != nil {
			return err
		}
		tr.TLSClientConfig = tlsWith(pool)
	}
	return nil
}

// revision names a sync's set of Releases: the first 12 hex digits of the
// hash of their hashes, in suite order.
func revision(releases map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(mapKeys(releases)) {
		fmt.Fprintf(h, "%s %s\n", k, releases[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
