package server

import (
	"context"
	"errors"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/registry"
	"github.com/airgapd/airgapd/web"
)

var _ web.RegistryAdmin = (*Server)(nil)

// runningRegistry is the registry instance now serving, or an error saying
// why there is none.
func (s *Server) runningRegistry() (*registry.Registry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, in := range s.instances {
		if in.name == "registry" && in.registry != nil {
			return in.registry, nil
		}
	}
	return nil, errors.New("registry is not running: its section is absent or disabled")
}

// RegistryGC implements web.RegistryAdmin.
func (s *Server) RegistryGC(ctx context.Context, dryRun bool) (api.GCResult, error) {
	r, err := s.runningRegistry()
	if err != nil {
		return api.GCResult{}, err
	}
	return r.GC(ctx, dryRun)
}

// RegistryImport implements web.RegistryAdmin.
func (s *Server) RegistryImport(ctx context.Context, path, repo string, progress func(complete, total int64)) (api.RegistryImportResult, error) {
	r, err := s.runningRegistry()
	if err != nil {
		return api.RegistryImportResult{}, err
	}
	return r.Import(ctx, path, registry.ImportOptions{Repo: repo, Progress: progress})
}
