package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/mirror"
	"github.com/airgapd/airgapd/mirror/rpm"
	"github.com/airgapd/airgapd/web"
)

// The standby's follower: each round (ha.follow_every) it pulls one
// snapshot from the primary's API with the peer token and makes this host
// match it, kind by kind (README, "Two admin hosts"):
//   - the CA and its key (pki Adopt), so both hosts issue from one CA;
//   - the config: the primary's file with this host's own keys kept
//     (haMerge), applied through the same transactional path as a UI edit
//     (ApplyConfig: validate, apply, then write). Local DNS zones come
//     with it: they are config (dns.zones records), so one copy keeps
//     zones and every other section consistent and applied together,
//     refused together, with no second protocol, ACL or serial to keep
//     in step as AXFR + NOTIFY would need;
//   - the API tokens, hashed (web's token records);
//   - mirror repos: each is a mirrored repo here whose upstream is the
//     primary's /repos/NAME/, synced when its revision differs;
//   - registry content: ha_images.go.

func (n *haNode) follow(ctx context.Context) {
	snap, err := n.snapshot(ctx)
	n.contact(err)
	if err != nil {
		n.log.Debug("cannot reach the primary", "err", err)
		return
	}
	if snap.Role != rolePrimary {
		n.contact(fmt.Errorf("the peer says it is %s, not the primary; check ha.role on both hosts", snap.Role))
		return
	}
	n.synced("ca", n.s.ca.Adopt(snap.CACert, snap.CAKey))
	err = n.followConfig(ctx, snap)
	n.synced("config", err)
	n.synced("zones", err)
	n.synced("tokens", n.followTokens(snap))
	n.synced("repos", n.followRepos(ctx, snap))
	n.synced("images", n.followImages(ctx, snap))
}

func (n *haNode) snapshot(ctx context.Context) (api.HASnapshot, error) {
	resp, err := n.peerGet(ctx, "/api/v1/ha/snapshot", true)
	if err != nil {
		return api.HASnapshot{}, err
	}
	defer resp.Body.Close()
	var snap api.HASnapshot
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&snap); err != nil {
		return api.HASnapshot{}, fmt.Errorf("decode the primary's snapshot: %w", err)
	}
	return snap, nil
}

// peerHost is the primary's host as ha.peer names it.
func (n *haNode) peerHost() string {
	u, err := url.Parse(n.cfg.Peer)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func (n *haNode) followConfig(ctx context.Context, snap api.HASnapshot) error {
	path := n.s.opts.ConfigPath
	if path == "" {
		return errors.New("the standby runs the built-in defaults; start it with --config FILE")
	}
	local, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	base := ""
	if snap.MirrorPort != "" {
		base = "http://" + net.JoinHostPort(n.peerHost(), snap.MirrorPort)
	}
	if err := n.keepPrimaryConfig(snap.Config); err != nil {
		return err
	}
	zones, changed, err := n.followZoneFiles(snap.ZoneFiles)
	if err != nil {
		return err
	}
	merged, err := haMerge(snap.Config, local, base, zones)
	if err != nil {
		return err
	}
	// A zone file's new text alone changes no byte of the config; the
	// apply reloads dns because its inputs hold the files' text.
	if bytes.Equal(merged, local) && !changed {
		return nil
	}
	// Against the file as read: a promote (or a hand edit) meanwhile
	// wins, and the next round merges with it.
	if err := n.s.applyConfig(ctx, web.ConfigETag(local), merged); err != nil {
		return fmt.Errorf("the primary's config does not apply here: %w", err)
	}
	n.log.Info("applied the primary's config")
	return nil
}

// tokenStore is web's API tokens as the follower copies them.
type tokenStore interface {
	ExportTokens() ([]byte, error)
	ImportTokens([]byte) error
}

func (n *haNode) followTokens(snap api.HASnapshot) error {
	if snap.Tokens == nil {
		return nil
	}
	w, err := capability[tokenStore](n.s, "web")
	if err != nil {
		return err
	}
	return w.ImportTokens(snap.Tokens)
}

// followRepos syncs each repo whose revision here is not the primary's.
func (n *haNode) followRepos(ctx context.Context, snap api.HASnapshot) error {
	if len(snap.Repos) == 0 {
		return nil
	}
	m, err := capability[*rpm.Mirror](n.s, "mirror")
	if err != nil {
		return err
	}
	here := map[string]string{}
	for _, r := range m.Status().Repos {
		here[r.Name] = r.Revision
	}
	var stale []string
	for name, rev := range snap.Repos {
		if here[name] != rev {
			stale = append(stale, name)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	_, err = m.Sync(ctx, stale, func(mirror.Progress) {})
	return err
}
