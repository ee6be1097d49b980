package web

import (
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"

	"github.com/airgapd/airgapd/api"
)

// The browse pages: a registry repository's tags with their digests and a
// ready pull command, and a mirror repo's package list. Both read what
// nodes read, through the same handlers (the registry's /v2/, the
// mirror's /repos/), in process.

// localGet runs a GET through h as a client on this host would send it
// (from loopback: the registry answers only when pull_from lets loopback
// pull, as it would answer `crictl pull` run here).
func localGet(h http.Handler, path string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = "127.0.0.1:1"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// manifestAccept is what a container runtime asks for.
const manifestAccept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

type tagRow struct {
	Tag, Digest, Pull, Error string
}

type registryRepoPage struct {
	Repo     string
	Registry string
	Tags     []tagRow
}

func (s *Server) pageRegistryRepo(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	st := s.status()
	sv := st.Service(api.ServiceRegistry)
	d := pageData{Title: "Registry: " + name, Nav: "registry", Status: st, Service: sv}
	var repo *api.RegistryRepoStatus
	if sv.Registry != nil {
		for i := range sv.Registry.Repositories {
			if sv.Registry.Repositories[i].Name == name {
				repo = &sv.Registry.Repositories[i]
			}
		}
	}
	if repo == nil || s.deps.RegistryHandler == nil {
		d.Error = fmt.Sprintf("no repository %q in the registry: the Registry page lists them", name)
		s.render(w, r, "registryrepo", http.StatusNotFound, d)
		return
	}
	p := registryRepoPage{Repo: name, Registry: "REGISTRY"}
	if s.deps.Bootstrapper != nil && s.deps.Bootstrapper.NodeBootstrap().Registry != "" {
		p.Registry = s.deps.Bootstrapper.NodeBootstrap().Registry
	}
	for _, tag := range repo.Tags {
		row := tagRow{Tag: tag}
		rec := localGet(s.deps.RegistryHandler, "/v2/"+name+"/manifests/"+url.PathEscape(tag), map[string]string{"Accept": manifestAccept})
		if dg := rec.Header().Get("Docker-Content-Digest"); rec.Code == http.StatusOK && dg != "" {
			row.Digest = dg
			row.Pull = "crictl pull " + p.Registry + "/" + name + "@" + dg
		} else {
			row.Error = fmt.Sprintf("the registry answered %d (pull_from may not include this host)", rec.Code)
			row.Pull = "crictl pull " + p.Registry + "/" + name + ":" + tag
		}
		p.Tags = append(p.Tags, row)
	}
	d.Data = p
	s.render(w, r, "registryrepo", http.StatusOK, d)
}

// rpmPackage is one package of a repo's primary.xml.
type rpmPackage struct {
	Name    string `xml:"name"`
	Arch    string `xml:"arch"`
	Version struct {
		Epoch string `xml:"epoch,attr"`
		Ver   string `xml:"ver,attr"`
		Rel   string `xml:"rel,attr"`
	} `xml:"version"`
	Summary string `xml:"summary"`
	Size    struct {
		Package int64 `xml:"package,attr"`
	} `xml:"size"`
	Location struct {
		Href string `xml:"href,attr"`
	} `xml:"location"`
}

// maxListed bounds the package list a page shows.
const maxListed = 5000

// repoPackages reads a published repo's package list from its repodata,
// as dnf would.
func repoPackages(h http.Handler, repo string) ([]rpmPackage, int, error) {
	base := "/repos/" + url.PathEscape(repo) + "/"
	rec := localGet(h, base+"repodata/repomd.xml", nil)
	if rec.Code != http.StatusOK {
		return nil, 0, fmt.Errorf("the repo has no published repodata yet (%d): sync or index it first", rec.Code)
	}
	var md struct {
		Data []struct {
			Type     string `xml:"type,attr"`
			Location struct {
				Href string `xml:"href,attr"`
			} `xml:"location"`
		} `xml:"data"`
	}
	if err := xml.Unmarshal(rec.Body.Bytes(), &md); err != nil {
		return nil, 0, fmt.Errorf("read repomd.xml: %w", err)
	}
	href := ""
	for _, d := range md.Data {
		if d.Type == "primary" {
			href = d.Location.Href
		}
	}
	if href == "" {
		return nil, 0, errors.New("repomd.xml names no primary metadata")
	}
	rec = localGet(h, base+href, nil)
	if rec.Code != http.StatusOK {
		return nil, 0, fmt.Errorf("primary metadata %s: %d", href, rec.Code)
	}
	var rd io.Reader = rec.Body
	if strings.HasSuffix(href, ".gz") {
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			return nil, 0, fmt.Errorf("primary metadata %s: %w (only gzip is read here)", href, err)
		}
		rd = zr
	} else if !strings.HasSuffix(href, ".xml") {
		return nil, 0, fmt.Errorf("primary metadata %s is compressed in a form this page does not read; dnf list --repo %s shows it", href, repo)
	}
	dec := xml.NewDecoder(rd)
	var out []rpmPackage
	total := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, total, fmt.Errorf("read primary metadata: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "package" {
			var p rpmPackage
			if err := dec.DecodeElement(&p, &se); err != nil {
				return out, total, fmt.Errorf("read primary metadata: %w", err)
			}
			total++
			if len(out) < maxListed {
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, total, nil
}

type mirrorRepoPage struct {
	Repo     string
	Filter   string
	Packages []rpmPackage
	Total    int
	Shown    int
}

func (s *Server) pageMirrorRepo(w http.ResponseWriter, r *http.Request) {
	name, q := r.URL.Query().Get("name"), strings.TrimSpace(r.URL.Query().Get("q"))
	st := s.status()
	d := pageData{Title: "Mirror: " + name, Nav: "mirror", Status: st, Service: st.Service(api.ServiceMirror)}
	if s.deps.MirrorHandler == nil || s.knownRepos([]string{name}) != nil {
		d.Error = fmt.Sprintf("no repo %q in the mirror: the Mirror page lists them", name)
		s.render(w, r, "mirrorrepo", http.StatusNotFound, d)
		return
	}
	ps, total, err := repoPackages(s.deps.MirrorHandler, name)
	if err != nil {
		d.Error = err.Error()
	}
	if q != "" {
		f := strings.ToLower(q)
		kept := ps[:0]
		for _, p := range ps {
			if strings.Contains(strings.ToLower(p.Name+" "+p.Summary), f) {
				kept = append(kept, p)
			}
		}
		ps = kept
	}
	d.Data = mirrorRepoPage{Repo: name, Filter: q, Packages: ps, Total: total, Shown: len(ps)}
	s.render(w, r, "mirrorrepo", http.StatusOK, d)
}
