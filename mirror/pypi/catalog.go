package pypi

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/airgapd/airgapd/api"
)

// Projects is a page of the projects both trees publish, for the UI: each
// with its versions, files and their size; q filters by name.
func (x *Index) Projects(q string, offset, limit int) (api.PackageList, error) {
	byName := map[string]*api.PackageEntry{}
	var first error
	for _, tree := range x.Names() {
		t, err := x.tree(tree)
		if err != nil && first == nil {
			first = err
		}
		for n, fs := range t.Projects {
			e := byName[n]
			if e == nil {
				e = &api.PackageEntry{Name: n}
				byName[n] = e
			}
			e.Trees = append(e.Trees, tree)
			for _, f := range fs {
				e.Files++
				e.Bytes += f.Size
				if !slices.Contains(e.Versions, f.Version) {
					e.Versions = append(e.Versions, f.Version)
				}
			}
		}
	}
	all := make([]api.PackageEntry, 0, len(byName))
	for _, e := range byName {
		sort.Slice(e.Versions, func(i, j int) bool { return versionLess(e.Versions[i], e.Versions[j]) })
		all = append(all, *e)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return api.PagePackages(all, q, offset, limit), first
}

// versionLess orders versions by their dotted parts, numbers as numbers
// ("1.10" after "1.9"): enough to list them; pip does the PEP 440 choice.
func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}
