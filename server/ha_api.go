package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/mirror/rpm"
)

// HASnapshot implements web.HA: what a standby pulls each round. web adds
// the API tokens and lets only the peer token (or root on the control
// socket) have it: it holds the CA key.
func (s *Server) HASnapshot() (api.HASnapshot, error) {
	s.mu.Lock()
	c := s.cfg
	mirrorAt, registryAt := s.bound["mirror.listen"], s.bound["registry.listen"]
	s.mu.Unlock()
	if !c.Enabled("ha") {
		return api.HASnapshot{}, errors.New("this host has no ha: section, so it is not part of a pair")
	}
	if s.opts.ConfigPath == "" {
		return api.HASnapshot{}, errors.New("this host runs the built-in defaults; start it with --config FILE")
	}
	data, err := os.ReadFile(s.opts.ConfigPath)
	if err != nil {
		return api.HASnapshot{}, fmt.Errorf("read config: %w", err)
	}
	key, err := s.ca.CAKeyPEM()
	if err != nil {
		return api.HASnapshot{}, err
	}
	snap := api.HASnapshot{Role: c.HA.Role, Config: data, CACert: s.CACertPEM(), CAKey: key}
	if _, port, err := net.SplitHostPort(mirrorAt); err == nil && c.Enabled("mirror") {
		snap.MirrorPort = port
		if m, err := capability[*rpm.Mirror](s, "mirror"); err == nil {
			snap.Repos = map[string]string{}
			for _, r := range m.Status().Repos {
				if r.Revision != "" {
					snap.Repos[r.Name] = r.Revision
				}
			}
		}
	}
	if _, port, err := net.SplitHostPort(registryAt); err == nil && c.Enabled("registry") {
		snap.RegistryPort = port
		snap.RegistryTLS = c.Registry.TLS.Mode != conf.TLSOff
		snap.Registry = s.registryStored(c)
	}
	snap.ZoneFiles = s.zoneFiles(c)
	return snap, nil
}

// PromoteHA implements web.HA: `airgapd ha promote` makes a standby the
// primary, writable, by setting ha.role: primary in its config file
// through the same transactional path as any edit, so a restart keeps it.
func (s *Server) PromoteHA(ctx context.Context) (string, error) {
	s.mu.Lock()
	c := s.cfg
	s.mu.Unlock()
	if !c.Enabled("ha") {
		return "", errors.New("this host has no ha: section, so there is nothing to promote")
	}
	if c.HA.Role == rolePrimary {
		return "this host is already the primary", nil
	}
	_, data, err := s.ConfigFile()
	if err != nil {
		return "", err
	}
	next, err := setHARole(data, rolePrimary)
	if err != nil {
		return "", err
	}
	repos, err := s.promoteRepos(ctx, data)
	if err != nil {
		// The repos keep following the old primary's copy; the role
		// change must not wait on them.
		repos = fmt.Sprintf("; the repos still follow %s's copy, because their own upstreams did not apply here (%v): set them on the Settings page", c.HA.Peer, err)
		if err := s.applyConfig(ctx, "", next); err != nil {
			return "", err
		}
	}
	s.log.Warn("promoted to HA primary: this host takes writes now", "old_primary", c.HA.Peer)
	return fmt.Sprintf("this host is now the primary and takes writes%s; before %s starts again, set ha.role: standby in its config so it follows this host (README, \"Demote and re-seed\")", repos, c.HA.Peer), nil
}

// promoteRepos applies data (this standby's config) as the primary, with
// each repo's own upstream back from the primary's config as the follower
// last copied it, and says what it did.
func (s *Server) promoteRepos(ctx context.Context, data []byte) (string, error) {
	primary, err := os.ReadFile(primaryCopy(s.cfg.DataDir))
	if err != nil {
		return "", fmt.Errorf("no copy of the primary's config: %w", err)
	}
	restored, names, kept, err := haRestoreRepos(data, primary)
	if err != nil {
		return "", err
	}
	next, err := setHARole(restored, rolePrimary)
	if err != nil {
		return "", err
	}
	if err := s.applyConfig(ctx, "", next); err != nil {
		return "", err
	}
	msg := ""
	if len(names) > 0 {
		msg += "; repos " + strings.Join(names, ", ") + " sync from their own upstreams again"
	}
	if len(kept) > 0 {
		msg += "; repos " + strings.Join(kept, ", ") + " were folders on the old primary: this host keeps serving their last copy (give them a path: here to take them over)"
	}
	return msg, nil
}

// setHARole returns src with ha.role's value replaced by role; every other
// byte stays.
func setHARole(src []byte, role string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("the config is empty")
	}
	v := mapValue(mapValue(doc.Content[0], "ha"), "role")
	if v == nil || v.Kind != yaml.ScalarNode {
		return nil, errors.New("the config has no ha.role to change; write `role: standby` under ha:")
	}
	lines := strings.SplitAfter(string(src), "\n")
	if v.Line < 1 || v.Line > len(lines) {
		return nil, errors.New("cannot find ha.role in the file (a bug)")
	}
	off := v.Column - 1
	for _, l := range lines[:v.Line-1] {
		off += len(l)
	}
	old := v.Value
	switch v.Style {
	case yaml.DoubleQuotedStyle:
		old = `"` + old + `"`
	case yaml.SingleQuotedStyle:
		old = "'" + old + "'"
	}
	if off+len(old) > len(src) || string(src[off:off+len(old)]) != old {
		return nil, errors.New("ha.role is written in a way this edit does not handle; set it by hand and send SIGHUP")
	}
	out := append([]byte{}, src[:off]...)
	out = append(out, role...)
	return append(out, src[off+len(old):]...), nil
}
