package goproxy

import (
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"

	"github.com/airgapd/airgapd/api"
)

// catalog is the published tree's modules, read once per snapshot.
type catalog struct {
	dir     string
	modules []api.PackageEntry
}

// Modules is a page of the modules the tree publishes, for the UI: each
// path with its versions (those with a zip) and their zips' size; q
// filters by path.
func (p *Proxy) Modules(q string, offset, limit int) (api.PackageList, error) {
	cur, err := p.Store(treeName).Current()
	if err != nil || cur == "" {
		return api.PagePackages(nil, q, offset, limit), err
	}
	p.mu.Lock()
	c := p.cat
	p.mu.Unlock()
	if c == nil || c.dir != cur {
		if c, err = readCatalog(cur); err != nil {
			return api.PagePackages(nil, q, offset, limit), err
		}
		p.mu.Lock()
		p.cat = c
		p.mu.Unlock()
	}
	return api.PagePackages(c.modules, q, offset, limit), nil
}

// readCatalog walks a snapshot for MODULE/@v/VERSION.zip, paths and
// versions case-decoded; the checksum database's answers are skipped.
func readCatalog(dir string) (*catalog, error) {
	byPath := map[string]*api.PackageEntry{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && rel == "sumdb" {
			return filepath.SkipDir
		}
		esc, file, ok := strings.Cut(rel, "/@v/")
		if !ok || d.IsDir() || !strings.HasSuffix(file, ".zip") {
			return nil
		}
		mp, err1 := module.UnescapePath(esc)
		v, err2 := module.UnescapeVersion(strings.TrimSuffix(file, ".zip"))
		if err1 != nil || err2 != nil {
			return nil // not the tree's own (a sync writes only escaped names)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := byPath[mp]
		if e == nil {
			e = &api.PackageEntry{Name: mp}
			byPath[mp] = e
		}
		e.Versions = append(e.Versions, v)
		e.Files++
		e.Bytes += fi.Size()
		return nil
	})
	if err != nil {
		return nil, err
	}
	c := &catalog{dir: dir}
	for _, e := range byPath {
		semver.Sort(e.Versions)
		c.modules = append(c.modules, *e)
	}
	sort.Slice(c.modules, func(i, j int) bool { return c.modules[i].Name < c.modules[j].Name })
	return c, nil
}
