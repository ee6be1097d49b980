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

	"github.com/airgapd/airgapd/registry"
	"github.com/airgapd/airgapd/web"
)

var _ web.RegistryAdmin = (*Server)(nil)

// registryAdmin is the registry's maintenance work, as the running
// registry service offers it.
type registryAdmin interface {
	GC(ctx context.Context, dryRun bool) (registry.GCResult, error)
	Import(ctx context.Context, path string, opts registry.ImportOptions) (registry.ImportResult, error)
	DeleteTag(ctx context.Context, repo, tag string) error
}

// runningRegistry is the registry service now running, or an error saying
// why there is none.
func (s *Server) runningRegistry() (registryAdmin, error) {
	return capability[registryAdmin](s, "registry")
}

// RegistryGC implements web.RegistryAdmin.
func (s *Server) RegistryGC(ctx context.Context, dryRun bool) (any, error) {
	r, err := s.runningRegistry()
	if err != nil {
		return nil, err
	}
	res, err := r.GC(ctx, dryRun)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// RegistryImport implements web.RegistryAdmin.
func (s *Server) RegistryImport(ctx context.Context, path, repo string, progress func(complete, total int64)) (any, error) {
	r, err := s.runningRegistry()
	if err != nil {
		return nil, err
	}
	res, err := r.Import(ctx, path, registry.ImportOptions{Repo: repo, Progress: progress})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// RegistryGC asks the running server to collect garbage (or list it, dry).
// It waits as long as the collection takes; cancel ctx to stop waiting.
func (c *Client) RegistryGC(ctx context.Context, dryRun bool) (registry.GCResult, error) {
	var res registry.GCResult
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
func (c *Client) RegistryImport(ctx context.Context, path, repo string, progress func(complete, total int64)) (registry.ImportResult, error) {
	var res registry.ImportResult
	q := url.Values{"path": {path}}
	if repo != "" {
		q.Set("repo", repo)
	}
	resp, err := c.post(ctx, "/api/v1/registry/import?"+q.Encode())
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var ev struct {
			web.ImportEvent
			Result *registry.ImportResult `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return res, fmt.Errorf("decode progress from %s: %w", c.display, err)
		}
		switch {
		case ev.Error != "":
			return res, errors.New(ev.Error)
		case ev.Result != nil:
			return *ev.Result, nil
		case progress != nil:
			progress(ev.Complete, ev.Total)
		}
	}
	if err := sc.Err(); err != nil {
		return res, fmt.Errorf("%s: %w", c.display, err)
	}
	return res, fmt.Errorf("%s ended the import without a result (did the server stop?)", c.display)
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
		var apiErr struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &apiErr) == nil && apiErr.Error != "" {
			return nil, fmt.Errorf("%s refused: %s (%s)", c.display, apiErr.Error, resp.Status)
		}
		return nil, fmt.Errorf("%s answered %s", c.display, resp.Status)
	}
	return resp, nil
}
