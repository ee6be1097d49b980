package charts

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/mirror"
)

// view is the classic chart repository over the store's charts/
// namespace: index.yaml and NAME-VERSION.tgz. It is built on demand and
// kept while the store reports no change; a change makes it list the tags
// again, and only when the tags (and the manifests they point at) differ
// is the index written anew, reading only the manifests it has not read.
type view struct {
	mu      sync.Mutex
	changes uint64
	built   bool
	key     string             // every repo:tag@digest, the last build's input
	seen    map[string]*stored // by repo@manifest, read once
	first   map[string]time.Time
	// cur is the last build; Status reads it without mu, because a build
	// holds mu while it asks the store, and the store's owner (server)
	// may be asking Status meanwhile under its own lock.
	cur atomic.Pointer[built]
}

// built is one build of the view.
type built struct {
	index    []byte
	at       time.Time
	files    map[string]*stored // NAME-VERSION.tgz → its chart
	versions int
	bytes    int64
}

// current is the view as of the store's content now.
func (s *Service) current(ctx context.Context) (*built, error) {
	v := &s.view
	v.mu.Lock()
	defer v.mu.Unlock()
	ch := s.deps.Store.Changes()
	if v.built && ch == v.changes {
		return v.cur.Load(), nil
	}
	tags, err := s.deps.Store.TagDigests(ctx, Prefix)
	if err != nil {
		return nil, fmt.Errorf("list the charts in the registry: %w", err)
	}
	var keys []string
	for repo, ts := range tags {
		for t, d := range ts {
			keys = append(keys, repo+":"+t+"@"+d)
		}
	}
	sort.Strings(keys)
	key := strings.Join(keys, "\n")
	if v.built && key == v.key {
		v.changes = ch
		return v.cur.Load(), nil
	}
	b, err := s.build(ctx, tags)
	if err != nil {
		return nil, err
	}
	v.cur.Store(b)
	v.key, v.changes, v.built = key, ch, true
	s.metrics.builds.Inc()
	s.metrics.versions.Set(float64(b.versions))
	s.log.Info("chart index built", "versions", b.versions)
	return b, nil
}

// build reads every chart version the tags name (caching by manifest) and
// writes index.yaml.
func (s *Service) build(ctx context.Context, tags map[string]map[string]string) (*built, error) {
	v := &s.view
	if v.seen == nil {
		v.seen, v.first = map[string]*stored{}, map[string]time.Time{}
	}
	now := s.now()
	b := &built{at: now, files: map[string]*stored{}}
	idx := &IndexFile{APIVersion: "v1", Entries: map[string][]*ChartVersion{}, Generated: now.UTC()}
	live := map[string]bool{}
	for repo, ts := range tags {
		for _, d := range ts {
			id := repo + "@" + d
			live[id] = true
			c, ok := v.seen[id]
			if !ok {
				var err error
				if c, err = readStored(ctx, s.deps.Store, repo, d); err != nil {
					s.log.Warn("skipping a chart the registry holds but that cannot be read", "repo", repo, "manifest", d, "err", err)
					continue
				}
				v.seen[id] = c // nil: not a chart
			}
			if c == nil {
				continue
			}
			file := c.md.Name + "-" + c.md.Version + ".tgz"
			if _, dup := b.files[file]; dup {
				continue // two tags of one manifest
			}
			created := c.created
			if created.IsZero() {
				if created, ok = v.first[id]; !ok {
					created, v.first[id] = now, now
				}
			}
			b.files[file] = c
			b.versions++
			b.bytes += c.size
			idx.Entries[c.md.Name] = append(idx.Entries[c.md.Name], &ChartVersion{
				Metadata: c.md, URLs: []string{file}, Created: created.UTC(),
				Digest: strings.TrimPrefix(c.layer, "sha256:"),
			})
		}
	}
	for id := range v.seen {
		if !live[id] {
			delete(v.seen, id)
			delete(v.first, id)
		}
	}
	idx.sortEntries()
	var err error
	if b.index, err = idx.Marshal(); err != nil {
		return nil, err
	}
	return b, nil
}

// Handler serves the classic view under /charts/.
func (s *Service) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rel := strings.TrimPrefix(r.URL.Path, "/charts/")
		b, err := s.current(r.Context())
		if err != nil {
			s.log.Error("chart index", "err", err)
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		switch {
		case rel == "" || rel == "/":
			names := make([]string, 0, len(b.files)+1)
			for f := range b.files {
				names = append(names, f)
			}
			sort.Strings(names)
			entries := []fs.DirEntry{mirror.ListingEntry("index.yaml", false)}
			for _, f := range names {
				entries = append(entries, mirror.ListingEntry(f, false))
			}
			mirror.WriteListing(w, r, entries)
		case rel == "index.yaml":
			w.Header().Set("Content-Type", "application/x-yaml")
			http.ServeContent(w, r, "index.yaml", b.at, strings.NewReader(string(b.index)))
		default:
			c, ok := b.files[rel]
			if !ok {
				http.NotFound(w, r)
				return
			}
			rc, err := s.deps.Store.OpenBlob(r.Context(), c.repo, c.layer)
			if err != nil {
				http.Error(w, "the chart's content is not in the registry: "+err.Error(), http.StatusNotFound)
				return
			}
			defer rc.Close()
			w.Header().Set("Content-Type", "application/gzip")
			w.Header().Set("ETag", `"`+c.layer+`"`)
			http.ServeContent(w, r, rel, c.created, rc)
		}
	})
}

// entries are the charts of the build, by name, versions newest first.
func (b *built) entries() []api.ChartEntry {
	var vs []*stored
	for _, c := range b.files {
		vs = append(vs, c)
	}
	sort.Slice(vs, func(i, j int) bool {
		if vs[i].md.Name != vs[j].md.Name {
			return vs[i].md.Name < vs[j].md.Name
		}
		a, _ := parseVersion(vs[i].md.Version)
		c, _ := parseVersion(vs[j].md.Version)
		return a != nil && c != nil && c.LessThan(a)
	})
	var out []api.ChartEntry
	for _, c := range vs { // sorted by name: one chart's versions are together
		if len(out) == 0 || out[len(out)-1].Name != c.md.Name {
			out = append(out, api.ChartEntry{Name: c.md.Name})
		}
		e := &out[len(out)-1]
		e.Versions = append(e.Versions, c.md.Version)
		e.Bytes += c.size
	}
	return out
}
