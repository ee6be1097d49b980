package api

import "strings"

// PackageList is one page of a language index's packages (PyPI projects,
// Go modules) for its UI page: the page asked for, and how many match.
type PackageList struct {
	// Total is how many packages match the filter; Packages holds those
	// from the offset asked, at most the limit.
	Total    int            `json:"total"`
	Packages []PackageEntry `json:"packages"`
}

// PackageEntry is one package: its versions, files and their size.
type PackageEntry struct {
	Name string `json:"name"`
	// Trees are the trees that hold it (PyPI: index, local).
	Trees    []string `json:"trees,omitempty"`
	Versions []string `json:"versions"`
	Files    int      `json:"files"`
	Bytes    int64    `json:"bytes"`
}

// PagePackages is the page of all (sorted by name) whose names contain q
// (case-insensitive, "" for every one): offset on, at most limit.
func PagePackages(all []PackageEntry, q string, offset, limit int) PackageList {
	q = strings.ToLower(strings.TrimSpace(q))
	out := PackageList{Packages: []PackageEntry{}}
	for _, p := range all {
		if q != "" && !strings.Contains(strings.ToLower(p.Name), q) {
			continue
		}
		if out.Total >= offset && len(out.Packages) < limit {
			out.Packages = append(out.Packages, p)
		}
		out.Total++
	}
	return out
}
