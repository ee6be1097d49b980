package server

import "context"

// RegistryDeleteTag implements web.RegistryAdmin.
func (s *Server) RegistryDeleteTag(ctx context.Context, repo, tag string) error {
	r, err := s.runningRegistry()
	if err != nil {
		return err
	}
	return r.DeleteTag(ctx, repo, tag)
}
