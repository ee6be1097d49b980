package pypi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// Content types of the simple API (PEP 691).
const (
	typeJSON     = "application/vnd.pypi.simple.v1+json"
	typeHTMLv1   = "application/vnd.pypi.simple.v1+html"
	typeHTML     = "text/html"
	acceptHeader = typeJSON + ", " + typeHTMLv1 + ";q=0.2, " + typeHTML + ";q=0.1"
)

// File is one file of a project page, upstream's or ours.
type File struct {
	Filename       string `json:"filename"`
	URL            string `json:"url,omitempty"`  // upstream's, resolved
	Path           string `json:"path,omitempty"` // in our tree
	Version        string `json:"version"`
	SHA256         string `json:"sha256"`
	Size           int64  `json:"size,omitempty"`
	RequiresPython string `json:"requires_python,omitempty"`
	Yanked         bool   `json:"yanked,omitempty"`
	YankedReason   string `json:"yanked_reason,omitempty"`
	// Metadata is offered (PEP 658); MetadataSHA256 its digest when known.
	Metadata       bool   `json:"metadata,omitempty"`
	MetadataSHA256 string `json:"metadata_sha256,omitempty"`
}

// parsePage reads a project page, PEP 691 JSON or PEP 503 HTML by its
// content type; links resolve against base.
func parsePage(base *url.URL, contentType string, body []byte) ([]File, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == typeJSON || (mt == "application/json" && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{"))) {
		return parseJSONPage(base, body)
	}
	return parseHTMLPage(base, body)
}

type jsonPage struct {
	Files []struct {
		Filename       string            `json:"filename"`
		URL            string            `json:"url"`
		Hashes         map[string]string `json:"hashes"`
		RequiresPython *string           `json:"requires-python"`
		Yanked         json.RawMessage   `json:"yanked"`
		CoreMetadata   json.RawMessage   `json:"core-metadata"`
		DistInfo       json.RawMessage   `json:"dist-info-metadata"`
		Size           int64             `json:"size"`
	} `json:"files"`
}

func parseJSONPage(base *url.URL, body []byte) ([]File, error) {
	var p jsonPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("PEP 691 page: %w", err)
	}
	var out []File
	for _, jf := range p.Files {
		u, err := base.Parse(jf.URL)
		if err != nil {
			continue
		}
		f := File{Filename: jf.Filename, SHA256: strings.ToLower(jf.Hashes["sha256"]), Size: jf.Size}
		u.Fragment = ""
		f.URL = u.String()
		if jf.RequiresPython != nil {
			f.RequiresPython = *jf.RequiresPython
		}
		var reason string
		var yanked bool
		if json.Unmarshal(jf.Yanked, &reason) == nil {
			f.Yanked, f.YankedReason = true, reason
		} else if json.Unmarshal(jf.Yanked, &yanked) == nil {
			f.Yanked = yanked
		}
		meta := jf.CoreMetadata
		if len(meta) == 0 {
			meta = jf.DistInfo
		}
		var hashes map[string]string
		if json.Unmarshal(meta, &hashes) == nil && hashes != nil {
			f.Metadata, f.MetadataSHA256 = true, strings.ToLower(hashes["sha256"])
		} else {
			json.Unmarshal(meta, &f.Metadata)
		}
		out = append(out, f)
	}
	return out, nil
}

func parseHTMLPage(base *url.URL, body []byte) ([]File, error) {
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("PEP 503 page: %w", err)
	}
	var out []File
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "a" {
			if f, ok := linkFile(base, n); ok {
				out = append(out, f)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out, nil
}

// linkFile reads one <a> of a PEP 503 page.
func linkFile(base *url.URL, n *html.Node) (File, bool) {
	var f File
	attrs := map[string]*string{}
	for _, a := range n.Attr {
		v := a.Val
		attrs[a.Key] = &v
	}
	href := attrs["href"]
	if href == nil {
		return f, false
	}
	u, err := base.Parse(*href)
	if err != nil {
		return f, false
	}
	if algo, sum, ok := strings.Cut(u.Fragment, "="); ok && algo == "sha256" {
		f.SHA256 = strings.ToLower(sum)
	}
	u.Fragment = ""
	f.URL = u.String()
	f.Filename = strings.TrimSpace(text(n))
	if f.Filename == "" {
		f.Filename = u.Path[strings.LastIndex(u.Path, "/")+1:]
	}
	if v := attrs["data-requires-python"]; v != nil {
		f.RequiresPython = *v
	}
	if v := attrs["data-yanked"]; v != nil {
		f.Yanked, f.YankedReason = true, *v
	}
	meta := attrs["data-core-metadata"]
	if meta == nil {
		meta = attrs["data-dist-info-metadata"]
	}
	if meta != nil && *meta != "false" {
		f.Metadata = true
		if algo, sum, ok := strings.Cut(*meta, "="); ok && algo == "sha256" {
			f.MetadataSHA256 = strings.ToLower(sum)
		}
	}
	return f, true
}

func text(n *html.Node) string {
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return b.String()
}
