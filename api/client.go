package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Client talks to a running airgapd's API: over the local control socket
// (root only, no login), or over HTTP(S) with an API token.
type Client struct {
	http    *http.Client
	base    string
	token   string
	display string // where, for messages
}

// ControlSocketPath is the control socket inside a runtime_dir.
func ControlSocketPath(runtimeDir string) string { return filepath.Join(runtimeDir, "api.sock") }

// ErrNotRunning: no server answers on the control socket, so a command
// may do the work itself.
var ErrNotRunning = errors.New("no airgapd is running")

// NewControlClient talks to the control socket at path.
func NewControlClient(path string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{http: &http.Client{Transport: tr, Timeout: 10 * time.Second}, base: "http://airgapd", display: path}
}

// NewRemoteClient talks to a web listener at base (https://admin:8443).
func NewRemoteClient(base, token string) *Client {
	return &Client{http: &http.Client{Timeout: 10 * time.Second}, base: strings.TrimRight(base, "/"), token: token, display: base}
}

// TrustCAFile makes a remote client trust the CA certificates in path (PEM)
// instead of the system's, as curl's --cacert does.
func (c *Client) TrustCAFile(path string) error {
	pem, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read the CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	c.http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return nil
}

// Status fetches /api/v1/status.
func (c *Client) Status(ctx context.Context) (StatusReport, error) {
	var r StatusReport
	err := c.get(ctx, "/api/v1/status", &r)
	return r, err
}

// FlushDNSCache asks the DNS service to forget name (every type), or
// everything when name is empty; it returns how many entries went.
func (c *Client) FlushDNSCache(ctx context.Context, name string) (int, error) {
	var r struct {
		Flushed int `json:"flushed"`
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/dns/cache/flush?name="+url.QueryEscape(name), &r)
	return r.Flushed, err
}

// SyncMirror asks the running server to sync the named repos (all when
// none; a local repo named is indexed), calling progress as the server
// reports it. It waits as long as the sync takes; cancel ctx to stop it.
// With no server running the error wraps ErrNotRunning.
func (c *Client) SyncMirror(ctx context.Context, names []string, progress func(Progress)) ([]SyncResult, error) {
	return c.syncStream(ctx, "/api/v1/mirror/sync", names, progress)
}

// syncStream POSTs a sync route (path?repo=NAME…) and follows its JSON
// lines, calling progress, until the result.
func (c *Client) syncStream(ctx context.Context, path string, names []string, progress func(Progress)) ([]SyncResult, error) {
	q := url.Values{}
	for _, n := range names {
		q.Add("repo", n)
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := c.post(ctx, path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	last, err := DecodeStream(resp.Body, func(ev SyncEvent) {
		if ev.Progress != nil && progress != nil {
			progress(*ev.Progress)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%s ended the sync without a result (did the server stop?): %w", c.display, err)
	}
	return last.Results, last.Err()
}

// SyncPyPI asks the running server to sync its PyPI index, calling
// progress as the server reports it.
func (c *Client) SyncPyPI(ctx context.Context, progress func(Progress)) (SyncResult, error) {
	res, err := c.syncStream(ctx, "/api/v1/pypi/sync", nil, progress)
	if len(res) == 0 {
		return SyncResult{}, err
	}
	return res[0], err
}

// ImportBundle asks the running server to import the bundle at path (an
// absolute path on the server's host), calling progress as the server
// reports it. It waits as long as the import takes; cancelling ctx stops
// the import (run it again to finish: what was verified is kept).
func (c *Client) ImportBundle(ctx context.Context, path string, progress func(ImportProgress)) (BundleImportResult, error) {
	var res BundleImportResult
	resp, err := c.post(ctx, "/api/v1/bundle/import?"+url.Values{"path": {path}}.Encode())
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	last, err := DecodeStream(resp.Body, func(ev BundleImportEvent) {
		if ev.Progress != nil && progress != nil {
			progress(*ev.Progress)
		}
	})
	switch {
	case err != nil:
		return res, fmt.Errorf("%s stopped answering during the import (did the server stop?): %w; run the import again to finish it", c.display, err)
	case last.Error != "":
		return res, last.Err()
	case last.Result == nil:
		return res, fmt.Errorf("%s ended the import without a result", c.display)
	}
	return *last.Result, nil
}

// SetNTPTime is `chronyc settime` on the running server: the served time
// becomes to; refused while an upstream source is selected unless force.
// It returns the step, served − system clock.
func (c *Client) SetNTPTime(ctx context.Context, to time.Time, force bool) (time.Duration, error) {
	var r struct {
		Step float64 `json:"step_seconds"`
	}
	req := struct {
		Time  time.Time `json:"time"`
		Force bool      `json:"force"`
	}{to, force}
	err := c.send(ctx, http.MethodPost, "/api/v1/ntp/settime", req, &r)
	return time.Duration(r.Step * float64(time.Second)), err
}

// RegistryGC asks the running server to collect garbage (or list it, dry).
// It waits as long as the collection takes; cancel ctx to stop waiting.
func (c *Client) RegistryGC(ctx context.Context, dryRun bool) (GCResult, error) {
	var res GCResult
	resp, err := c.post(ctx, fmt.Sprintf("/api/v1/registry/gc?dry_run=%t", dryRun))
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&res); err != nil {
		return res, fmt.Errorf("decode reply from %s: %w", c.display, err)
	}
	return res, nil
}

// RegistryImport asks the running server to import the file at path (an
// absolute path on its host), calling progress as it reports.
func (c *Client) RegistryImport(ctx context.Context, path, repo string, progress func(complete, total int64)) (RegistryImportResult, error) {
	var res RegistryImportResult
	q := url.Values{"path": {path}}
	if repo != "" {
		q.Set("repo", repo)
	}
	resp, err := c.post(ctx, "/api/v1/registry/import?"+q.Encode())
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	last, err := DecodeStream(resp.Body, func(ev RegistryImportEvent) {
		if progress != nil {
			progress(ev.Complete, ev.Total)
		}
	})
	switch {
	case err != nil:
		return res, fmt.Errorf("%s ended the import without a result (did the server stop?): %w", c.display, err)
	case last.Error != "":
		return res, last.Err()
	case last.Result == nil:
		return res, fmt.Errorf("%s ended the import without a result", c.display)
	}
	return *last.Result, nil
}

func (c *Client) get(ctx context.Context, path string, into any) error {
	return c.do(ctx, http.MethodGet, path, into)
}

func (c *Client) do(ctx context.Context, method, path string, into any) error {
	return c.send(ctx, method, path, nil, into)
}

// send is do with a JSON request body (none when body is nil).
func (c *Client) send(ctx context.Context, method, path string, body, into any) error {
	var payload io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		payload = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, payload)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.explain(err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read reply from %s: %w", c.display, err)
	}
	if resp.StatusCode != http.StatusOK {
		return c.refused(resp, reply)
	}
	if err := json.Unmarshal(reply, into); err != nil {
		return fmt.Errorf("decode reply from %s: %w", c.display, err)
	}
	return nil
}

// post sends a POST without the client's usual time limit (these run as
// long as the work does) and turns a non-200 answer into its error.
func (c *Client) post(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return nil, c.explain(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, c.refused(resp, body)
	}
	return resp, nil
}

// refused turns a non-200 answer into an error with the API's message.
func (c *Client) refused(resp *http.Response, body []byte) error {
	var apiErr struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &apiErr) == nil && apiErr.Error != "" {
		return fmt.Errorf("%s refused: %s (%s)", c.display, apiErr.Error, resp.Status)
	}
	return fmt.Errorf("%s answered %s", c.display, resp.Status)
}

// explain turns a dial error into what to do about it.
func (c *Client) explain(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w here (nothing answers on %s); start it with `airgapd serve` or `systemctl start airgapd`, or use --api URL --token T", ErrNotRunning, c.display)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("permission denied on %s: the control socket is for root only; run as root (sudo), or use --api URL --token T", c.display)
	case errors.As(err, new(x509.UnknownAuthorityError)), errors.As(err, new(*tls.CertificateVerificationError)):
		return fmt.Errorf("reach %s: %w\nthis machine does not trust the certificate: give --cacert FILE with the appliance CA (its ca.crt is served at /ca.crt on the mirror listener; compare its fingerprint with the one on the UI's login page)", c.display, err)
	}
	return fmt.Errorf("reach %s: %w", c.display, err)
}
