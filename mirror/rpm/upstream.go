package rpm

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/mirror"
)

// How a mirrored repo reaches its upstream, the way dnf does it: a baseurl,
// or a mirrorlist / metalink that names the baseurls to try; $releasever
// and friends substituted in those URLs; a proxy per repo; a CA and client
// certificate for upstreams that need them.

// noProxy is dnf's proxy value for "direct, whatever the environment says".
const noProxy = "_none_"

// maxList bounds a mirrorlist or metalink; real ones are a few kB.
const maxList = 1 << 20

// sources names the keys that say where a repo comes from; a valid repo
// has exactly one.
func (r Repo) sources() []string {
	var keys []string
	for _, s := range []struct{ key, val string }{{"baseurl", r.BaseURL}, {"mirrorlist", r.Mirrorlist}, {"metalink", r.Metalink}, {"path", r.Path}} {
		if s.val != "" {
			keys = append(keys, s.key)
		}
	}
	return keys
}

// Upstream is where a mirrored repo comes from as the config writes it:
// its baseurl, mirrorlist or metalink ("" for a local repo).
func (r Repo) Upstream() string { return cmp.Or(r.BaseURL, r.Mirrorlist, r.Metalink) }

// varName is what dnf reads as a variable name after "$".
var varName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// repoVars merges the mirror's vars with a repo's (the repo's win) and
// derives releasever_major and releasever_minor from releasever, as dnf
// does.
func repoVars(mirror, repo map[string]string) map[string]string {
	vars := make(map[string]string, len(mirror)+len(repo)+2)
	for k, v := range mirror {
		vars[k] = v
	}
	for k, v := range repo {
		vars[k] = v
	}
	if rv, ok := vars["releasever"]; ok {
		major, minor, _ := strings.Cut(rv, ".")
		if _, ok := vars["releasever_major"]; !ok {
			vars["releasever_major"] = major
		}
		if _, ok := vars["releasever_minor"]; !ok {
			vars["releasever_minor"] = minor
		}
	}
	return vars
}

// expandVars substitutes $name and ${name} in s from vars. A name is the
// longest run of letters, digits and '_' after "$", as dnf reads it. It
// returns the names s uses that have no value (s keeps those as written);
// a "$" that starts no name stays as it is.
func expandVars(s string, vars map[string]string) (string, []string) {
	var b strings.Builder
	var missing []string
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		rest := s[i+1:]
		var name, written string
		if strings.HasPrefix(rest, "{") {
			if j := strings.IndexByte(rest, '}'); j > 1 && varName.MatchString(rest[1:j]) {
				name, written = rest[1:j], s[i:i+j+2]
			}
		} else {
			j := 0
			for j < len(rest) && isNameByte(rest[j]) {
				j++
			}
			if j > 0 {
				name, written = rest[:j], s[i:i+j+1]
			}
		}
		if name == "" {
			b.WriteByte('$')
			s = rest
			continue
		}
		if v, ok := vars[name]; ok {
			b.WriteString(v)
		} else {
			b.WriteString(written)
			if !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
		}
		s = s[i+len(written):]
	}
	return b.String(), missing
}

func isNameByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// httpURL reports whether s is an absolute http(s) URL with a host.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// checkVars reports variable names dnf could not use.
func checkVars(ps *conf.Problems, path string, vars map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if !varName.MatchString(k) {
			ps.Add(conf.Join(path, k), "use letters, digits and '_', as $releasever and $basearch do", "%q is not a variable name", k)
		}
	}
}

// checkUpstream adds the problems of repo r (at path p) in how it reaches
// its upstream. mirrorVars is the mirror section's vars.
func (r Repo) checkUpstream(ps *conf.Problems, p string, mirrorVars map[string]string) {
	checkVars(ps, conf.Join(p, "vars"), r.Vars)
	if !r.Mirrored() {
		if r.Proxy != nil || r.ProxyUsername != "" || r.ProxyPassword != "" || r.SSLCACert != "" || r.SSLClientCert != "" || r.SSLClientKey != "" || r.SSLVerify != nil || len(r.Vars) > 0 {
			ps.Add(p, "proxy, ssl* and vars apply to mirrored repos (baseurl:, mirrorlist:, metalink:) only", "repo %q is a local folder", r.Name)
		}
		return
	}
	vars := repoVars(mirrorVars, r.Vars)
	for _, u := range []struct{ key, val string }{{"baseurl", r.BaseURL}, {"mirrorlist", r.Mirrorlist}, {"metalink", r.Metalink}} {
		if u.val == "" {
			continue
		}
		expanded, missing := expandVars(u.val, vars)
		switch {
		case len(missing) > 0:
			ps.Add(conf.Join(p, u.key), `give it a value under mirror.vars (every repo) or the repo's vars, e.g. vars: {releasever: "9", basearch: x86_64}`,
				"%s uses $%s with no value", u.key, strings.Join(missing, ", $"))
		case !httpURL(expanded):
			ps.Add(conf.Join(p, u.key), "write an http:// or https:// URL", "%q is not a repo URL", u.val)
		}
	}
	if r.Proxy != nil && *r.Proxy != "" && *r.Proxy != noProxy {
		if u, err := url.Parse(*r.Proxy); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") || u.Host == "" {
			ps.Add(conf.Join(p, "proxy"), "write http://host:port, or _none_ to go direct", "%q is not a proxy URL", *r.Proxy)
		}
	}
	if (r.ProxyUsername != "" || r.ProxyPassword != "") && (r.Proxy == nil || *r.Proxy == "" || *r.Proxy == noProxy) {
		ps.Add(p, "set proxy: to the proxy they are for", "repo %q has proxy_username or proxy_password but no proxy", r.Name)
	}
	conf.CheckFile(ps, conf.Join(p, "sslcacert"), r.SSLCACert)
	conf.CheckFile(ps, conf.Join(p, "sslclientcert"), r.SSLClientCert)
	conf.CheckFile(ps, conf.Join(p, "sslclientkey"), r.SSLClientKey)
	if (r.SSLClientCert == "") != (r.SSLClientKey == "") {
		ps.Add(p, "give both sslclientcert and sslclientkey, or neither", "repo %q has only one of sslclientcert and sslclientkey", r.Name)
	}
}

// newFetcher builds the downloads of one sync of repo r, through its proxy
// and with its TLS settings.
func newFetcher(log *slog.Logger, parallel int, r Repo) (*mirror.Fetcher, error) {
	return mirror.NewFetcher(log, parallel, func(tr *http.Transport) error { return configureUpstream(tr, r, log) })
}

// configureUpstream sets tr's proxy and TLS as repo r asks.
func configureUpstream(tr *http.Transport, r Repo, log *slog.Logger) error {
	switch {
	case r.Proxy == nil: // the environment's, as tr has it
	case *r.Proxy == "" || *r.Proxy == noProxy:
		tr.Proxy = nil
	default:
		u, err := url.Parse(*r.Proxy)
		if err != nil {
			return fmt.Errorf("proxy %q: %w", *r.Proxy, err)
		}
		if r.ProxyUsername != "" {
			u.User = url.UserPassword(r.ProxyUsername, r.ProxyPassword)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	insecure := r.SSLVerify != nil && !*r.SSLVerify
	if r.SSLCACert == "" && r.SSLClientCert == "" && !insecure {
		return nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.SSLCACert != "" {
		pem, err := os.ReadFile(r.SSLCACert)
		if err != nil {
			return fmt.Errorf("sslcacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("sslcacert %s holds no PEM certificate; give the upstream's CA certificate", r.SSLCACert)
		}
		tc.RootCAs = pool
	}
	if r.SSLClientCert != "" {
		cert, err := tls.LoadX509KeyPair(r.SSLClientCert, r.SSLClientKey)
		if err != nil {
			return fmt.Errorf("sslclientcert %s with sslclientkey %s (both PEM, the key unencrypted): %w", r.SSLClientCert, r.SSLClientKey, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if insecure {
		tc.InsecureSkipVerify = true
		log.Warn("sslverify is off: the upstream's certificate is not checked, so anyone on the way can serve this repo's metadata", "repo", r.Name)
	}
	tr.TLSClientConfig = tc
	return nil
}

// upstream is the mirror a sync uses, with the repomd.xml it served.
type upstream struct {
	base string // ends in "/"
	// fallbacks are the list's other mirrors that did not fail, in order:
	// where a package is asked next when base does not give it.
	fallbacks []string
	repomd    []byte
	md        *repomd
	fetched   int64 // bytes downloaded to get here (lists and repomd.xml)
}

// openUpstream finds where repo r's sync downloads from: its baseurl, or
// the first mirror of its mirrorlist or metalink that serves a usable
// repomd.xml (for a metalink, one matching the metalink's hashes).
func openUpstream(ctx context.Context, f *mirror.Fetcher, r Repo, vars map[string]string, log *slog.Logger) (upstream, error) {
	if r.BaseURL != "" {
		base, missing := expandVars(r.BaseURL, vars)
		if len(missing) > 0 {
			return upstream{}, fmt.Errorf("baseurl %s: $%s has no value; set it under vars", r.BaseURL, strings.Join(missing, ", $"))
		}
		up, err := firstMirror(ctx, f, []string{strings.TrimSuffix(base, "/") + "/"}, nil, log)
		if err != nil {
			return up, fmt.Errorf("repomd.xml: %w", err)
		}
		return up, nil
	}
	kind, listURL := "mirrorlist", r.Mirrorlist
	if r.Metalink != "" {
		kind, listURL = "metalink", r.Metalink
	}
	listURL, missing := expandVars(listURL, vars)
	if len(missing) > 0 {
		return upstream{}, fmt.Errorf("%s %s: $%s has no value; set it under vars", kind, listURL, strings.Join(missing, ", $"))
	}
	body, err := f.Get(ctx, listURL, maxList)
	if err != nil {
		return upstream{}, fmt.Errorf("%s %s: %w", kind, listURL, explainTLS(err))
	}
	var bases []string
	var check func([]byte) error
	// dnf reads a metalink given as mirrorlist as a metalink too.
	if kind == "metalink" || isMetalink(body) {
		kind = "metalink"
		ml, err := parseMetalink(body)
		if err != nil {
			return upstream{}, fmt.Errorf("metalink %s: %w", listURL, err)
		}
		bases, check = ml.bases, ml.check
	} else {
		bases = parseMirrorlist(body, vars)
	}
	if len(bases) == 0 {
		return upstream{}, fmt.Errorf("%s %s lists no http:// or https:// mirror", kind, listURL)
	}
	up, err := firstMirror(ctx, f, bases, check, log)
	if err != nil {
		return up, fmt.Errorf("%s %s: %w", kind, listURL, err)
	}
	up.fetched += int64(len(body))
	log.Info("upstream mirror chosen", "repo", r.Name, kind, listURL, "baseurl", up.base)
	return up, nil
}

// firstMirror tries each base in turn for a repomd.xml that parses and
// passes check, in up to f.Attempts rounds with backoff between them. A
// mirror that answers 4xx or serves a bad repomd.xml is not asked again.
func firstMirror(ctx context.Context, f *mirror.Fetcher, bases []string, check func([]byte) error, log *slog.Logger) (upstream, error) {
	errs := make([]error, len(bases))
	done := make([]bool, len(bases)) // no use asking again
	for round := range f.Attempts {
		if round > 0 {
			if err := mirror.Sleep(ctx, f.Backoff<<(round-1)); err != nil {
				return upstream{}, err
			}
		}
		asked := 0
		for i, base := range bases {
			if done[i] {
				continue
			}
			asked++
			b, err := f.GetOnce(ctx, base+"repodata/repomd.xml", maxRepomd)
			if err == nil {
				var md *repomd
				if check != nil {
					err = check(b)
				}
				if err == nil {
					md, err = parseRepomd(b)
				}
				if err == nil {
					var fallbacks []string
					for j, other := range bases {
						if j != i && !done[j] {
							fallbacks = append(fallbacks, other)
						}
					}
					return upstream{base: base, fallbacks: fallbacks, repomd: b, md: md, fetched: int64(len(b))}, nil
				}
				done[i] = true
			}
			if ctx.Err() != nil {
				return upstream{}, ctx.Err()
			}
			explained := explainTLS(err)
			if mirror.IsPermanent(err) || explained != err { // asking again gets the same answer
				done[i] = true
			}
			errs[i] = explained
			if len(bases) > 1 {
				log.Info("upstream mirror failed; trying the next", "baseurl", base, "err", err)
			}
		}
		if asked == 0 {
			break
		}
	}
	if len(bases) == 1 {
		return upstream{}, errs[0]
	}
	return upstream{}, mirrorsFailed{bases: bases, errs: errs}
}

// mirrorsFailed says what each mirror of a list did wrong, on one line.
type mirrorsFailed struct {
	bases []string
	errs  []error
}

func (e mirrorsFailed) Error() string {
	parts := make([]string, len(e.errs))
	for i, err := range e.errs {
		parts[i] = e.bases[i] + ": " + err.Error()
	}
	return fmt.Sprintf("none of its %d mirrors served a usable repomd.xml: %s", len(e.bases), strings.Join(parts, "; "))
}

func (e mirrorsFailed) Unwrap() []error { return e.errs }

// explainTLS adds what to do to the TLS failures a repo's ssl* keys fix.
func explainTLS(err error) error {
	var unknownCA x509.UnknownAuthorityError
	var opErr *net.OpError
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Errorf("the upstream's certificate is not signed by a CA trusted here (set sslcacert to its CA): %w", err)
	case errors.As(err, &opErr) && opErr.Op == "remote error" && strings.HasPrefix(opErr.Err.Error(), "tls:"):
		return fmt.Errorf("the upstream refused the TLS handshake, it may want a client certificate it trusts (set sslclientcert and sslclientkey): %w", err)
	}
	return err
}

// parseMirrorlist reads a mirrorlist as dnf does: one baseurl a line,
// blank lines and "#" comments skipped, variables substituted; lines that
// are not http(s) URLs (rsync, ftp, a variable with no value) are skipped.
func parseMirrorlist(b []byte, vars map[string]string) []string {
	var bases []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, missing := expandVars(line, vars)
		if len(missing) > 0 || !httpURL(u) {
			continue
		}
		bases = append(bases, strings.TrimSuffix(u, "/")+"/")
	}
	return bases
}

// isMetalink reports whether a list is a metalink document.
func isMetalink(b []byte) bool {
	head := b[:min(len(b), 512)]
	return bytes.Contains(head, []byte("<metalink"))
}

// metalinkDoc is the part of a metalink 3.0 file (what MirrorManager serves
// for Fedora, EPEL and Rocky) a sync reads. Tags match in any namespace, so
// mm0:alternates is "alternates".
type metalinkDoc struct {
	Files []struct {
		Name       string            `xml:"name,attr"`
		Size       int64             `xml:"size"`
		Hashes     []metalinkHash    `xml:"verification>hash"`
		Alternates []metalinkVersion `xml:"alternates>alternate"`
		URLs       []metalinkURL     `xml:"resources>url"`
	} `xml:"files>file"`
}

type metalinkURL struct {
	Preference int    `xml:"preference,attr"` // 100 is best
	URL        string `xml:",chardata"`
}

type metalinkVersion struct {
	Size   int64          `xml:"size"`
	Hashes []metalinkHash `xml:"verification>hash"`
}

type metalinkHash struct {
	Type  string `xml:"type,attr"`
	Value string `xml:",chardata"`
}

// metalink is a parsed metalink: the baseurls by preference and the
// versions of repomd.xml it vouches for (the current one and the
// alternates mirrors that lag may still serve).
type metalink struct {
	bases    []string
	versions []metalinkVersion
}

func parseMetalink(b []byte) (*metalink, error) {
	var doc metalinkDoc
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a metalink: %w", err)
	}
	for _, f := range doc.Files {
		if f.Name != "repomd.xml" {
			continue
		}
		ml := &metalink{versions: append([]metalinkVersion{{Size: f.Size, Hashes: f.Hashes}}, f.Alternates...)}
		if !slices.ContainsFunc(ml.versions, func(v metalinkVersion) bool { return strongHash(v) }) {
			return nil, errors.New("it gives no sha256 or sha512 hash of repomd.xml to check it against")
		}
		urls := slices.Clone(f.URLs)
		slices.SortStableFunc(urls, func(a, b metalinkURL) int { return cmp.Compare(b.Preference, a.Preference) })
		for _, u := range urls {
			s := strings.TrimSpace(u.URL)
			base, ok := strings.CutSuffix(s, "repodata/repomd.xml")
			if !ok || !httpURL(s) {
				continue
			}
			ml.bases = append(ml.bases, base)
		}
		return ml, nil
	}
	return nil, errors.New("it describes no repomd.xml")
}

func strongHash(v metalinkVersion) bool {
	return slices.ContainsFunc(v.Hashes, func(h metalinkHash) bool { return h.Type == "sha256" || h.Type == "sha512" })
}

// check accepts a repomd.xml whose size (when given) and sha256 or sha512
// match one of the versions the metalink vouches for.
func (ml *metalink) check(b []byte) error {
	s256, s512 := sha256.Sum256(b), sha512.Sum512(b)
	got := map[string]string{"sha256": hex.EncodeToString(s256[:]), "sha512": hex.EncodeToString(s512[:])}
	for _, v := range ml.versions {
		if v.Size > 0 && v.Size != int64(len(b)) {
			continue
		}
		for _, h := range v.Hashes {
			if want, ok := got[h.Type]; ok && strings.EqualFold(strings.TrimSpace(h.Value), want) {
				return nil
			}
		}
	}
	return mirror.PermanentError{Err: fmt.Errorf("%w: repomd.xml (%d bytes, sha256 %s) matches none of the metalink's hashes", mirror.ErrChecksum, len(b), got["sha256"])}
}
