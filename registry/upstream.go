package registry

import (
	"context"
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
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
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
	upstreamTransportMax  = 1000          // cached authenticated transports (one per repository) per upstream
	upstreamBlobTimeout   = 6 * time.Hour // one blob download
)

// manifestAccept is every manifest type airgapd stores: indexes first, so
// the upstream returns the multi-platform index where there is one.
var manifestAccept = strings.Join([]string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}, ", ")

// upstream is one mirrored registry: how to reach it (the registry API,
// authenticated by go-containerregistry's transport with the token flow or
// Basic, as the upstream asks), whether it is reachable, and what the
// mirror did with it.
type upstream struct {
	mirror Mirror
	base   *url.URL
	reg    name.Registry
	auth   authn.Authenticator
	rt     http.RoundTripper // unauthenticated, pinned to base
	now    func() time.Time

	mu         sync.Mutex
	transports map[string]http.RoundTripper // authenticated, by upstream repository

	downUntil atomic.Int64 // unix nanoseconds; 0 = up (or never tried)
	lastOK    atomic.Int64
	lastErrAt atomic.Int64
	lastErr   atomic.Pointer[string]

	hits, misses, refreshes, errs, bytes atomic.Int64
	inflight                             atomic.Int64
}

func newUpstream(m Mirror, now func() time.Time) (*upstream, error) {
	base, err := url.Parse(upstreamURL(m))
	if err != nil {
		return nil, err
	}
	var opts []name.Option
	if base.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(base.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Name, err)
	}
	auth := authn.Anonymous
	if m.Username != "" {
		auth = authn.FromConfig(authn.AuthConfig{Username: m.Username, Password: m.Password})
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
	return &upstream{
		mirror: m, base: base, reg: reg, auth: auth, now: now,
		rt:         transport.NewUserAgent(pinnedTransport{base: base, inner: tr}, "airgapd"),
		transports: map[string]http.RoundTripper{},
	}, nil
}

// pinnedTransport sends every registry API request for the upstream's host
// with the configured scheme, and its ping under the configured path:
// go-containerregistry pings https and, for a private or loopback address,
// http as well, and the configured URL must decide instead, so an https
// upstream is never asked over plain HTTP.
type pinnedTransport struct {
	base  *url.URL
	inner http.RoundTripper
}

func (p pinnedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == p.base.Host {
		prefix := strings.TrimRight(p.base.Path, "/")
		req = req.Clone(req.Context())
		req.URL.Scheme = p.base.Scheme
		if prefix != "" && strings.HasPrefix(req.URL.Path, "/v2/") {
			req.URL.Path = prefix + req.URL.Path
			req.URL.RawPath = ""
		}
	}
	return p.inner.RoundTrip(req)
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
// the upstream asks. A network error, a failed authentication or a 5xx
// marks the upstream down and wraps errUpstreamDown; other statuses are
// the caller's to read.
func (u *upstream) do(ctx context.Context, method, repo, path string, hdr http.Header) (*http.Response, error) {
	target := *u.base
	target.Path = strings.TrimRight(u.base.Path, "/") + "/v2/" + repo + path
	resp, err := u.send(ctx, method, repo, target.String(), hdr)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		drain(resp)
		// A cached transport that no longer fits (the upstream changed
		// how it authenticates) is rebuilt on the next request.
		u.forget(repo)
		err = u.refused()
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

func (u *upstream) send(ctx context.Context, method, repo, target string, hdr http.Header) (*http.Response, error) {
	rt, err := u.transport(ctx, repo)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	return (&http.Client{Transport: rt}).Do(req)
}

// refused is the error for a 401 that authentication did not get past.
func (u *upstream) refused() error {
	if u.mirror.Username == "" {
		return fmt.Errorf("%s asks for credentials: set username and password in registry.mirrors", u.mirror.Name)
	}
	return fmt.Errorf("%s refused the username and password in registry.mirrors", u.mirror.Name)
}

// transport returns the authenticated transport for repo's pull scope,
// building it on first use: go-containerregistry pings /v2/, then answers
// the challenge with Basic or a Bearer token from the realm (Docker Hub,
// quay.io, ghcr.io and registry.k8s.io use the token flow, anonymously or
// with the mirror's credentials), and fetches a new token when one
// expires.
func (u *upstream) transport(ctx context.Context, repo string) (http.RoundTripper, error) {
	u.mu.Lock()
	rt, ok := u.transports[repo]
	u.mu.Unlock()
	if ok {
		return rt, nil
	}
	rt, err := transport.NewWithContext(ctx, u.reg, u.auth, u.rt, []string{"repository:" + repo + ":pull"})
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("%w: %v", u.refused(), err)
		}
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	u.mu.Lock()
	if len(u.transports) >= upstreamTransportMax {
		clear(u.transports)
	}
	u.transports[repo] = rt
	u.mu.Unlock()
	return rt, nil
}

func (u *upstream) forget(repo string) {
	u.mu.Lock()
	delete(u.transports, repo)
	u.mu.Unlock()
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
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
