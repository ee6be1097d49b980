package apt

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strings"

	"github.com/airgapd/airgapd/mirror"
)

// Handler serves /apt/ (web mounts it on mirror.listen): /apt/NAME/…
// (the published tree, with Range), /apt/NAME.sources (a deb822 entry for
// /etc/apt/sources.list.d with the key inline in Signed-By) and
// /apt/NAME.asc (that key).
func (a *Apt) Handler() http.Handler { return http.HandlerFunc(a.serveHTTP) }

func (a *Apt) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		a.m.request(http.StatusMethodNotAllowed)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/apt/")
	if !ok {
		a.m.request(http.StatusNotFound)
		http.NotFound(w, r)
		return
	}
	name, sub, hasSlash := strings.Cut(rest, "/")
	switch {
	case rest == "":
		a.serveList(w, r)
		return
	case !hasSlash && strings.HasSuffix(name, ".sources"):
		a.serveSources(w, r, strings.TrimSuffix(name, ".sources"))
		return
	case !hasSlash && strings.HasSuffix(name, ".asc"):
		a.serveKey(w, strings.TrimSuffix(name, ".asc"))
		return
	}
	cur, err := a.current(name)
	if err != nil {
		a.m.request(http.StatusNotFound)
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if !hasSlash {
		http.Redirect(w, r, "/apt/"+url.PathEscape(name)+"/", http.StatusMovedPermanently)
		return
	}
	a.m.request(mirror.ServeTree(w, r, cur, sub))
}

// current is repo name's published tree.
func (a *Apt) current(name string) (string, error) {
	if _, ok := a.book.Config().Lookup(name); !ok {
		return "", fmt.Errorf("no apt repo %q here", name)
	}
	cur, err := a.Store(name).Current()
	if err == nil && cur == "" {
		err = fmt.Errorf("apt repo %q has nothing published yet: run `airgapd apt sync %s`", name, name)
	}
	return cur, err
}

func (a *Apt) serveList(w http.ResponseWriter, r *http.Request) {
	var entries []fs.DirEntry
	for _, rp := range a.book.Config().Repos {
		entries = append(entries, mirror.ListingEntry(rp.Name, true), mirror.ListingEntry(rp.Name+".sources", false), mirror.ListingEntry(rp.Name+".asc", false))
	}
	mirror.WriteListing(w, r, entries)
	a.m.request(http.StatusOK)
}

// key is the armored public key a repo's Release verifies with: the
// upstream's keyring for a mirror, the site key for a local folder.
func (a *Apt) key(name string) ([]byte, error) {
	rp, ok := a.book.Config().Lookup(name)
	if !ok {
		return nil, fmt.Errorf("no apt repo %q here", name)
	}
	if !rp.Mirrored() {
		k, err := mirror.LoadSigningKey(a.deps.SigningKey, a.deps.DataDir, a.log)
		if err != nil {
			return nil, err
		}
		return k.Public, nil
	}
	if k := a.book.State(name).Keyring; len(k) > 0 {
		return k, nil
	}
	ring, err := loadKeyring(rp.Keyring)
	if err != nil {
		return nil, err
	}
	return mirror.ArmorPublic(ring)
}

func (a *Apt) serveKey(w http.ResponseWriter, name string) {
	k, err := a.key(name)
	if err != nil {
		a.m.request(http.StatusNotFound)
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(k)
	a.m.request(http.StatusOK)
}

// serveSources writes the deb822 entry for the nodes: drop it into
// /etc/apt/sources.list.d/NAME.sources. The key is inline in Signed-By
// (apt 2.3 and later: Ubuntu 22.04, Debian 12), so the file is all a node
// needs.
func (a *Apt) serveSources(w http.ResponseWriter, r *http.Request, name string) {
	rp, ok := a.book.Config().Lookup(name)
	k, err := a.key(name)
	if !ok || err != nil {
		a.m.request(http.StatusNotFound)
		http.Error(w, fmt.Sprintf("no apt repo %q here", name), http.StatusNotFound)
		return
	}
	desc, suites, comps := "local folder", localSuite(rp), []string{localComponent(rp)}
	if rp.Mirrored() {
		desc, suites, comps = "mirror of "+rp.URL, rp.Suites, rp.componentsOf()
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "# airgapd: %s; the key is also at %s/apt/%s.asc\nTypes: deb\nURIs: %s/apt/%s/\nSuites: %s\nComponents: %s\nSigned-By:\n%s",
		desc, a.baseURL(r), url.PathEscape(name), a.baseURL(r), url.PathEscape(name), strings.Join(suites, " "), strings.Join(comps, " "), indentKey(k))
	a.m.request(http.StatusOK)
}

// indentKey is an armored key as a deb822 multi-line value: each line
// after a space, empty lines as " .".
func indentKey(k []byte) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(string(k), "\n"), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			line = "."
		}
		b.WriteString(" " + line + "\n")
	}
	return b.String()
}
