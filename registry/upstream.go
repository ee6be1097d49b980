package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airgapd/airgapd/api"
)

// Upstream timeouts. A mirror whose upstream is unreachable must answer
// from its cache at once, not after containerd's own 30 s dial timeout: a
// failed contact marks the upstream down for upstreamBackoff, and while it
// is down tag lookups are answered from the cache without trying.
const (
	upstreamDialTimeout   = 5 * time.Second
	upstreamHeaderTimeout = 15 * time.Second
	upstreamCheckTimeout  = 10 * time.Second // one manifest lookup, token included
	upstreamBackoff       = 30 * time.Second
	upstreamTokenTTL      = 4 * time.Minute // Docker Hub's tokens last 5 minutes
	upstreamTokenMax      = 1000            // cached tokens per upstream
	upstreamBlobTimeout   = 6 * time.Hour   // one blob download
)

// manifestAccept is every manifest type airgapd stores: indexes first, so
// the upstream returns the multi-platform index where there is one.
var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

// upstream is one mirrored registry: how to reach it (the registry API
// with its token or Basic authentication), whether it is reachable, and
// what the mirror did with it.
type upstream struct {
	mirror Mirror
	base   *url.URL
	client *http.Client
	now    func() time.Time

	mu     sync.Mutex
	tokens map[string]upstreamToken // by scope

	downUntil atomic.Int64 // unix nanoseconds; 0 = up (or never tried)
	lastOK    atomic.Int64
	lastErrAt atomic.Int64
	lastErr   atomic.Pointer[string]

	hits, misses, refreshes, errs, bytes atomic.Int64
	inflight                             atomic.Int64
}

type upstreamToken struct {
	value   string
	basic   bool
	expires time.Time
}

func newUpstream(m Mirror, now func() time.Time) (*upstream, error) {
	base, err := url.Parse(upstreamURL(m))
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: upstreamDialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   upstreamDialTimeout,
		ResponseHeaderTimeout: upstreamHeaderTimeout,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &upstream{mirror: m, base: base, client: &http.Client{Transport: tr}, now: now, tokens: map[string]upstreamToken{}}, nil
}

// available reports whether the upstream may be tried now: it is not in
// the back-off that follows a failure.
func (u *upstream) available() bool {
	return u.now().UnixNano() >= u.downUntil.Load()
}

// reachable is what Status shows: tried and answering, or not.
func (u *upstream) reachable() bool {
	return u.lastOK.Load() > 0 && u.lastOK.Load() >= u.lastErrAt.Load()
}

func (u *upstream) ok() {
	u.lastOK.Store(u.now().UnixNano())
	u.downUntil.Store(0)
}

// failed notes a failure to reach the upstream (a network error or a 5xx),
// not an answer such as 404.
func (u *upstream) failed(err error) {
	now := u.now()
	u.errs.Add(1)
	u.lastErrAt.Store(now.UnixNano())
	s := err.Error()
	u.lastErr.Store(&s)
	u.downUntil.Store(now.Add(upstreamBackoff).UnixNano())
}

// errUpstreamDown is an upstream that did not answer, or answered 5xx.
var errUpstreamDown = errors.New("upstream unreachable")

// do sends one registry API request for repo (the upstream's own name,
// e.g. library/nginx) and path (e.g. /manifests/1.25), authenticating as
// the upstream asks. A network error or 5xx marks the upstream down and
// wraps errUpstreamDown; other statuses are the caller's to read.
func (u *upstream) do(ctx context.Context, method, repo, path string, hdr http.Header) (*http.Response, error) {
	target := *u.base
	target.Path = strings.TrimRight(u.base.Path, "/") + "/v2/" + repo + path
	scope := "repository:" + repo + ":pull"
	send := func(tok upstreamToken) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, method, target.String(), nil)
		if err != nil {
			return nil, err
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", "airgapd")
		switch {
		case tok.basic:
			req.SetBasicAuth(u.mirror.Username, u.mirror.Password)
		case tok.value != "":
			req.Header.Set("Authorization", "Bearer "+tok.value)
		}
		return u.client.Do(req)
	}
	tok := u.token(scope)
	resp, err := send(tok)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		challenge := resp.Header.Get("WWW-Authenticate")
		drain(resp)
		if tok, err = u.authenticate(ctx, challenge, scope); err == nil {
			resp, err = send(tok)
		}
	}
	if err == nil && resp.StatusCode >= 500 {
		drain(resp)
		err = fmt.Errorf("%s %s: %s", method, target.Redacted(), resp.Status)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil, err // the client went away; says nothing of the upstream
		}
		u.failed(err)
		return nil, fmt.Errorf("%s: %w: %v", u.mirror.Name, errUpstreamDown, err)
	}
	u.ok()
	return resp, nil
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func (u *upstream) token(scope string) upstreamToken {
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.tokens[scope]
	if !ok || u.now().After(t.expires) {
		return upstreamToken{}
	}
	return t
}

// authenticate answers a 401's challenge: Basic with the mirror's
// credentials, or a Bearer token from the realm (Docker Hub, quay.io,
// ghcr.io and registry.k8s.io all use the token flow, anonymously or with
// the mirror's credentials).
func (u *upstream) authenticate(ctx context.Context, challenge, scope string) (upstreamToken, error) {
	scheme, params := parseChallenge(challenge)
	var tok upstreamToken
	switch strings.ToLower(scheme) {
	case "basic":
		if u.mirror.Username == "" {
			return tok, fmt.Errorf("%s asks for credentials: set username and password in registry.mirrors", u.mirror.Name)
		}
		tok.basic = true
	case "bearer":
		realm, err := url.Parse(params["realm"])
		if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") {
			return tok, fmt.Errorf("%s: bad token realm %q", u.mirror.Name, params["realm"])
		}
		q := realm.Query()
		if s := params["service"]; s != "" {
			q.Set("service", s)
		}
		q.Set("scope", scope)
		realm.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
		if err != nil {
			return tok, err
		}
		if u.mirror.Username != "" {
			req.SetBasicAuth(u.mirror.Username, u.mirror.Password)
		}
		resp, err := u.client.Do(req)
		if err != nil {
			return tok, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return tok, fmt.Errorf("%s token: %s", u.mirror.Name, resp.Status)
		}
		var body struct {
			Token       string `json:"token"`
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
			return tok, fmt.Errorf("%s token: %w", u.mirror.Name, err)
		}
		tok.value = body.Token
		if tok.value == "" {
			tok.value = body.AccessToken
		}
	default:
		return tok, fmt.Errorf("%s answered 401 with challenge %q", u.mirror.Name, challenge)
	}
	tok.expires = u.now().Add(upstreamTokenTTL)
	u.mu.Lock()
	if len(u.tokens) >= upstreamTokenMax {
		clear(u.tokens)
	}
	u.tokens[scope] = tok
	u.mu.Unlock()
	return tok, nil
}

// parseChallenge splits `Bearer realm="…",service="…"`.
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,")
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if strings.HasPrefix(v, `"`) {
			end := strings.Index(v[1:], `"`)
			if end < 0 {
				params[k] = v[1:]
				break
			}
			params[k] = v[1 : end+1]
			rest = v[end+2:]
		} else {
			val, after, _ := strings.Cut(v, ",")
			params[k] = strings.TrimSpace(val)
			rest = after
		}
	}
	return scheme, params
}

// UpstreamStatus is one mirrored upstream in Status.
type UpstreamStatus = api.RegistryUpstreamStatus

func (u *upstream) status() UpstreamStatus {
	st := UpstreamStatus{
		Name: u.mirror.Name, URL: u.base.Redacted(), Reachable: u.reachable(),
		Hits: u.hits.Load(), Misses: u.misses.Load(), Refreshes: u.refreshes.Load(), Errors: u.errs.Load(),
		BytesFetched: u.bytes.Load(), InFlight: u.inflight.Load(),
	}
	if t := u.lastOK.Load(); t > 0 {
		at := time.Unix(0, t)
		st.LastOK = &at
	}
	if t := u.lastErrAt.Load(); t > 0 {
		at := time.Unix(0, t)
		st.LastErrorAt = &at
		if s := u.lastErr.Load(); s != nil {
			st.LastError = *s
		}
	}
	return st
}
