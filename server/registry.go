package server

import (
	"context"

	"github.com/airgapd/airgapd/api"
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
	if err := s.standbyError(); err != nil { // every use is a write
		return nil, err
	}
	return capability[registryAdmin](s, "registry")
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
