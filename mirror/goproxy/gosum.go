package goproxy

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

// sumLine is one go.sum line: the module version, whether it is the
// go.mod's hash (VERSION/go.mod) or the zip's, and the hash ("h1:…").
type sumLine struct {
	Mod   module.Version
	GoMod bool
	Hash  string
}

// parseGoSum reads a go.sum as the go command writes it: "PATH VERSION
// HASH" or "PATH VERSION/go.mod HASH" a line. Hashes of other algorithms
// than h1 are skipped (the go command ignores what it does not know);
// anything else malformed is an error naming its line.
func parseGoSum(name string, data []byte) ([]sumLine, error) {
	var out []sumLine
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("%s:%d: want PATH VERSION HASH, got %d fields; regenerate it with go mod tidy", name, i+1, len(f))
		}
		vers, goMod := strings.CutSuffix(f[1], "/go.mod")
		if err := module.Check(f[0], vers); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, i+1, err)
		}
		if !strings.HasPrefix(f[2], "h1:") {
			continue
		}
		out = append(out, sumLine{Mod: module.Version{Path: f[0], Version: vers}, GoMod: goMod, Hash: f[2]})
	}
	return out, nil
}

// want is one module version a sync mirrors: its go.mod always, its zip
// when Zip, with the hashes go.sum (or the checksum database) gives.
type want struct {
	Mod     module.Version
	Zip     bool
	ModHash string // h1 of the go.mod
	ZipHash string // h1 of the zip's tree
	// ModFrom and ZipFrom say where each hash came from (a go.sum, the
	// checksum database), for messages.
	ModFrom, ZipFrom string
}

// wantSet collects module versions and their expected hashes from every
// source; two sources that disagree on a hash are an error.
type wantSet map[module.Version]*want

func (s wantSet) add(m module.Version, zip bool) *want {
	w := s[m]
	if w == nil {
		w = &want{Mod: m}
		s[m] = w
	}
	w.Zip = w.Zip || zip
	return w
}

// addSum records a go.sum line; source names the file in an error.
func (s wantSet) addSum(l sumLine, source string) error {
	w := s.add(l.Mod, !l.GoMod)
	p, from, what := &w.ZipHash, &w.ZipFrom, "zip"
	if l.GoMod {
		p, from, what = &w.ModHash, &w.ModFrom, "go.mod"
	}
	if *p != "" && *p != l.Hash {
		return fmt.Errorf("%s: %s %s's %s hash is %s here but %s in %s; the go.sum files disagree", source, l.Mod.Path, l.Mod.Version, what, l.Hash, *p, *from)
	}
	*p, *from = l.Hash, source
	return nil
}

// sorted lists the set by path and version.
func (s wantSet) sorted() []*want {
	out := make([]*want, 0, len(s))
	for _, w := range s {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Mod.Path != out[j].Mod.Path {
			return out[i].Mod.Path < out[j].Mod.Path
		}
		return out[i].Mod.Version < out[j].Mod.Version
	})
	return out
}

// readGoMod adds a go.mod file's requirements (after its replace
// directives; those replaced by a folder are not fetched) and every line
// of the go.sum beside it.
func (s wantSet) readGoMod(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("go_mod: %w", err)
	}
	f, err := modfile.Parse(path, data, nil)
	if err != nil {
		return fmt.Errorf("go_mod: %w", err)
	}
	sums := filepath.Join(filepath.Dir(path), "go.sum")
	sumData, err := os.ReadFile(sums)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("go_mod: %w", err)
	}
	lines, err := parseGoSum(sums, sumData)
	if err != nil {
		return err
	}
	listed := map[module.Version]bool{}
	for _, l := range lines {
		listed[l.Mod] = true
		if err := s.addSum(l, sums); err != nil {
			return err
		}
	}
	for _, r := range f.Require {
		m, ok := replaced(f, r.Mod)
		if ok && !listed[m] {
			s.add(m, true) // hashes from the checksum database, or the sync refuses
		}
	}
	return nil
}

// replaced applies f's replace directives to m; false when a folder
// replaces it.
func replaced(f *modfile.File, m module.Version) (module.Version, bool) {
	for _, r := range f.Replace {
		if r.Old.Path == m.Path && (r.Old.Version == "" || r.Old.Version == m.Version) {
			if r.New.Version == "" {
				return module.Version{}, false
			}
			return r.New, true
		}
	}
	return m, true
}
