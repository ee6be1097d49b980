package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"syscall"

	"github.com/airgapd/airgapd/mirror"
	"github.com/airgapd/airgapd/mirror/rpm"
	"github.com/airgapd/airgapd/web"
)

// mirrorSection is what the mirror instance is built from: its section and
// how nodes reach this host (the .repo files' baseurls).
func mirrorSection(c *Config) any {
	if !c.Enabled("mirror") {
		return nil
	}
	type mirrorInputs struct {
		Mirror    rpm.Config
		Advertise Advertise
	}
	return mirrorInputs{Mirror: *c.Mirror, Advertise: c.Advertise}
}

// mirrorListen is the address mirror.listen is bound to, with its real
// port when the config said 0.
func (s *Server) mirrorListen(c *Config) string {
	for _, l := range c.listens() {
		if l.path == "mirror.listen" {
			if a := s.sockets.boundAddr(keyFor(l)); a != "" {
				return a
			}
			return l.addr
		}
	}
	return ""
}

var _ web.MirrorSyncer = (*Server)(nil)

// SyncMirror implements web.MirrorSyncer on the running mirror: the
// control socket's POST /api/v1/mirror/sync, which `airgapd mirror sync`
// uses while a server runs.
func (s *Server) SyncMirror(ctx context.Context, names []string, progress func(any)) (any, error) {
	m, err := capability[interface {
		Sync(ctx context.Context, names []string, progress func(mirror.Progress)) ([]rpm.Result, error)
	}](s, "mirror")
	if err != nil {
		return nil, err
	}
	res, err := m.Sync(ctx, names, func(p mirror.Progress) { progress(p) })
	if res == nil {
		return nil, err // nothing started: no typed nil inside the any
	}
	return res, err
}

// SyncMirror asks the running server to sync the named repos (all when
// none), calling progress as the server reports it. It waits as long as the
// sync takes; cancel ctx to stop it.
func (c *Client) SyncMirror(ctx context.Context, names []string, progress func(mirror.Progress)) ([]rpm.Result, error) {
	q := url.Values{}
	for _, n := range names {
		q.Add("repo", n)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1/mirror/sync?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := *c.http
	hc.Timeout = 0 // a sync takes as long as it takes
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w: nothing answers on %s", ErrNotRunning, c.display)
		}
		return nil, c.explain(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var apiErr struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &apiErr) == nil && apiErr.Error != "" {
			return nil, errors.New(apiErr.Error)
		}
		return nil, fmt.Errorf("%s answered %s", c.display, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var line struct {
			Progress *mirror.Progress `json:"progress"`
			Results  []rpm.Result     `json:"results"`
			Done     bool             `json:"done"`
			Error    string           `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, fmt.Errorf("decode progress from %s: %w", c.display, err)
		}
		if line.Progress != nil && progress != nil {
			progress(*line.Progress)
		}
		if line.Done {
			if line.Error != "" {
				return line.Results, errors.New(line.Error)
			}
			return line.Results, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", c.display, err)
	}
	return nil, fmt.Errorf("%s ended the sync without a result (did the server stop?)", c.display)
}

// ErrNotRunning: no server answers on the control socket, so a command
// may do the work itself.
var ErrNotRunning = errors.New("no airgapd is running")
