package server

import (
	"context"
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

func (c *Client) get(ctx context.Context, path string, into any) error {
	return c.do(ctx, http.MethodGet, path, into)
}

func (c *Client) do(ctx context.Context, method, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.explain(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read reply from %s: %w", c.display, err)
	}
	if resp.StatusCode != http.StatusOK {
		var apiErr struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &apiErr) == nil && apiErr.Error != "" {
			return fmt.Errorf("%s refused: %s (%s)", c.display, apiErr.Error, resp.Status)
		}
		return fmt.Errorf("%s answered %s", c.display, resp.Status)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("decode reply from %s: %w", c.display, err)
	}
	return nil
}

// explain turns a dial error into what to do about it.
func (c *Client) explain(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no airgapd is running here (nothing answers on %s); start it with `airgapd serve` or `systemctl start airgapd`, or use --api URL --token T", c.display)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("permission denied on %s: the control socket is for root only; run as root (sudo), or use --api URL --token T", c.display)
	}
	return fmt.Errorf("reach %s: %w", c.display, err)
}
