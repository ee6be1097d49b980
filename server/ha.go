package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/airgapd/airgapd/internal/conf"
)

// HAConfig is the `ha:` section: this host's half of a primary + standby
// pair behind keepalived (README, "Two admin hosts"). Both hosts have one;
// it is host-specific, so the standby never copies the primary's.
type HAConfig struct {
	Enabled *bool `yaml:"enabled,omitempty"`
	// Role is primary (takes writes) or standby (a read-only replica that
	// follows the primary).
	Role string `yaml:"role"`
	// Peer is the other host's web URL, e.g. https://192.168.10.12:8443.
	Peer string `yaml:"peer"`
	// PeerTokenFile holds an API token of the peer named ha-peer (the
	// peer's Tokens page, or POST /api/v1/tokens on its control socket).
	PeerTokenFile string `yaml:"peer_token_file"`
	// PeerCASHA256 pins the peer's appliance CA (the fingerprint its front
	// page shows) until the standby has copied it; empty: the local CA
	// must have signed the peer's certificate already.
	PeerCASHA256 string `yaml:"peer_ca_sha256"`
	// VIP is the address nodes use, in CIDR form (192.168.10.10/24), on
	// Interface; keepalived moves it.
	VIP       string `yaml:"vip"`
	Interface string `yaml:"interface"`
	// Priority is keepalived's; 0 means 150 on the primary, 100 on the
	// standby.
	Priority        int `yaml:"priority"`
	VirtualRouterID int `yaml:"virtual_router_id"`
	// FollowEvery is how often the standby pulls from the primary.
	FollowEvery conf.Duration `yaml:"follow_every"`
}

// Role names.
const (
	rolePrimary = "primary"
	roleStandby = "standby"
)

// DefaultHAConfig is what an empty `ha: {}` section starts from.
func DefaultHAConfig() HAConfig {
	return HAConfig{FollowEvery: conf.Duration(2 * time.Second)}
}

// Validate reports every problem in the section.
func (c HAConfig) Validate() error {
	var ps conf.Problems
	if c.Role != rolePrimary && c.Role != roleStandby {
		ps.Add("role", "use primary on the host that takes writes, standby on the other", "role is %q", c.Role)
	}
	if u, err := url.Parse(c.Peer); c.Peer == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ps.Add("peer", "write the other host's web URL, e.g. https://192.168.10.12:8443", "peer %q is not an http(s) URL", c.Peer)
	}
	switch {
	case c.PeerTokenFile == "" && c.Role == roleStandby:
		ps.Add("peer_token_file", "create a token named ha-peer on the primary (Tokens page) and save it in a file only root reads, e.g. /etc/airgapd/ha-peer.token", "a standby needs peer_token_file to reach the primary")
	case c.PeerTokenFile != "" && !filepath.IsAbs(c.PeerTokenFile):
		ps.Add("peer_token_file", "use an absolute path", "peer_token_file %q is relative", c.PeerTokenFile)
	}
	if h := c.PeerCASHA256; h != "" && len(normalFingerprint(h)) != 64 {
		ps.Add("peer_ca_sha256", "copy the fingerprint from the primary's front page (64 hex digits, colons allowed)", "peer_ca_sha256 is not a SHA-256 fingerprint")
	}
	if p, err := netip.ParsePrefix(c.VIP); err != nil || !p.Addr().Is4() && !p.Addr().Is6() {
		ps.Add("vip", "write the nodes' address with its prefix length, e.g. 192.168.10.10/24", "vip %q is not an address in CIDR form", c.VIP)
	}
	if c.Interface == "" || len(c.Interface) > 15 || strings.ContainsAny(c.Interface, " /") {
		ps.Add("interface", "name the internal interface as `ip link` shows it, e.g. enp0s9", "interface %q is not an interface name", c.Interface)
	}
	if c.Priority < 0 || c.Priority > 254 {
		ps.Add("priority", "use 1 to 254 (higher wins), or leave it out", "priority is %d", c.Priority)
	}
	if c.VirtualRouterID < 1 || c.VirtualRouterID > 255 {
		ps.Add("virtual_router_id", "pick 1 to 255, the same on both hosts and unique on the network", "virtual_router_id is %d", c.VirtualRouterID)
	}
	if c.FollowEvery.D() < 500*time.Millisecond {
		ps.Add("follow_every", "use 500ms or more, e.g. 2s", "follow_every is %s", c.FollowEvery)
	}
	return ps.Err()
}

// priority is keepalived's priority for this host.
func (c HAConfig) priority() int {
	switch {
	case c.Priority > 0:
		return c.Priority
	case c.Role == rolePrimary:
		return 150
	}
	return 100
}

func normalFingerprint(s string) string {
	return strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(s))
}

// ErrStandby is the error of every write refused on a standby.
var ErrStandby = errors.New("this host is the HA standby, a read-only replica")

// standbyError says where writes go instead, or nil on a primary (or
// without ha).
func (s *Server) standbyError() error {
	s.mu.Lock()
	c := s.cfg
	s.mu.Unlock()
	if c == nil || !c.Enabled("ha") || c.HA.Role != roleStandby {
		return nil
	}
	return fmt.Errorf("%w: make the change on the primary, %s, or promote this host with `airgapd ha promote` when the primary is gone for long", ErrStandby, c.HA.Peer)
}

// haWriteGuard refuses registry writes (PUT, POST, PATCH, DELETE on /v2/)
// on a standby with the OCI error DENIED naming the primary; reads pass.
// The follower stores what it copies in process, past it.
func (s *Server) haWriteGuard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			h.ServeHTTP(w, r)
			return
		}
		err := s.standbyError()
		if err == nil {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"errors":[{"code":"DENIED","message":%q}]}`+"\n", "push refused: "+err.Error())
	})
}
