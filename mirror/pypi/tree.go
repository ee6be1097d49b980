package pypi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/airgapd/airgapd/mirror"
)

// indexFile is the tree's record of its project pages.
const indexFile = "index.json"

// treeIndex is index.json: every project's files, by normalised name.
type treeIndex struct {
	Projects map[string][]File `json:"projects"`
	dir      string            // the snapshot it was read from
}

// filePath is where a file of project lives in a tree.
func filePath(project, filename string) string { return "files/" + project + "/" + filename }

// poolBytes puts b into the store's pool and returns it as a tree file at
// rel.
func poolBytes(st mirror.Store, rel string, b []byte) (mirror.TreeFile, error) {
	h := sha256.Sum256(b)
	sum := mirror.Checksum{Type: "sha256", Value: hex.EncodeToString(h[:])}
	tf := mirror.TreeFile{Path: rel, Sum: sum, Size: int64(len(b))}
	if st.Has(sum) {
		return tf, nil
	}
	part := st.Partial(sum)
	if err := os.MkdirAll(filepath.Dir(part), 0o750); err != nil {
		return tf, err
	}
	if err := os.WriteFile(part, b, 0o640); err != nil {
		return tf, err
	}
	if err := os.MkdirAll(filepath.Dir(st.Pool(sum)), 0o750); err != nil {
		return tf, err
	}
	return tf, os.Rename(part, st.Pool(sum))
}

// treeFiles is the tree for projects: every file (and its metadata file)
// and index.json, written to the pool.
func treeFiles(st mirror.Store, projects map[string][]File) ([]mirror.TreeFile, error) {
	var out []mirror.TreeFile
	names := make([]string, 0, len(projects))
	for n := range projects {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fs := projects[n]
		sort.Slice(fs, func(i, j int) bool { return fs[i].Filename < fs[j].Filename })
		for i := range fs {
			f := &fs[i]
			f.Path, f.URL = filePath(n, f.Filename), ""
			if f.Size <= 0 { // a PEP 503 page gives no size: the pool's file has it
				if fi, err := os.Stat(st.Pool(mirror.Checksum{Type: "sha256", Value: f.SHA256})); err == nil {
					f.Size = fi.Size()
				}
			}
			out = append(out, mirror.TreeFile{Path: f.Path, Sum: mirror.Checksum{Type: "sha256", Value: f.SHA256}, Size: f.Size})
			if f.MetadataSHA256 != "" {
				out = append(out, mirror.TreeFile{Path: f.Path + ".metadata", Sum: mirror.Checksum{Type: "sha256", Value: f.MetadataSHA256}})
			} else {
				f.Metadata = false
			}
		}
	}
	b, err := json.MarshalIndent(treeIndex{Projects: projects}, "", " ")
	if err != nil {
		return nil, err
	}
	tf, err := poolBytes(st, indexFile, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", indexFile, err)
	}
	return append(out, tf), nil
}

// noPlace is the PlaceFunc of a tree whose every file is in the pool
// already: a sync or an upload put them there, verified.
func noPlace(_ context.Context, f mirror.TreeFile, _ string) error {
	return fmt.Errorf("%s is not in the pool (a bug)", f.Path)
}

// tree returns tree name's published index.json (cached per snapshot);
// an empty one when nothing is published.
func (x *Index) tree(name string) (*treeIndex, error) {
	cur, err := x.Store(name).Current()
	if err != nil || cur == "" {
		return &treeIndex{Projects: map[string][]File{}}, err
	}
	x.mu.Lock()
	t := x.pages[name]
	x.mu.Unlock()
	if t != nil && t.dir == cur {
		return t, nil
	}
	b, err := os.ReadFile(filepath.Join(cur, indexFile))
	if err != nil {
		return &treeIndex{Projects: map[string][]File{}}, fmt.Errorf("pypi %s tree: %w", name, err)
	}
	t = &treeIndex{}
	if err := json.Unmarshal(b, t); err != nil {
		return &treeIndex{Projects: map[string][]File{}}, fmt.Errorf("pypi %s tree: %s: %w", name, indexFile, err)
	}
	if t.Projects == nil {
		t.Projects = map[string][]File{}
	}
	t.dir = cur
	x.mu.Lock()
	x.pages[name] = t
	x.mu.Unlock()
	return t, nil
}

// counts are a tree's projects, files and bytes, for state.json.
func counts(projects map[string][]File) (int, int, int64) {
	var files int
	var bytes int64
	for _, fs := range projects {
		for _, f := range fs {
			files++
			bytes += f.Size
		}
	}
	return len(projects), files, bytes
}
