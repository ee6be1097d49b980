package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ServiceHA is the ha section's line in the status report.
const ServiceHA = "ha"

// HAStatus is this host's place in a primary + standby pair: its role, the
// peer's reachability and, on a standby, how far behind the primary each
// kind of content is.
type HAStatus struct {
	Role string `json:"role"` // primary | standby
	Peer string `json:"peer"`
	VIP  string `json:"vip"`
	// PeerReachable: the last call to the peer's API answered.
	PeerReachable bool      `json:"peer_reachable"`
	PeerError     string    `json:"peer_error,omitempty"`
	LastContact   time.Time `json:"last_contact,omitzero"`
	// Kinds is, on a standby, each kind the follower copies (config,
	// zones, ca, repos, images) and when it last matched the primary.
	Kinds []HAKind `json:"kinds,omitempty"`
}

// HAKind is one kind of replicated content on a standby.
type HAKind struct {
	Kind string `json:"kind"` // config | zones | ca | repos | images
	// InSync is when the standby last had exactly what the primary had;
	// Lag is now minus that (zero when never).
	InSync time.Time     `json:"in_sync,omitzero"`
	Lag    time.Duration `json:"lag_ns"`
	Error  string        `json:"error,omitempty"`
}

// HASnapshot is what a standby pulls from its primary each round
// (GET /api/v1/ha/snapshot, the peer token only): the config file, the
// appliance CA with its key, the API tokens (hashed), and where the
// primary's mirror and registry listen, with each repo's revision.
type HASnapshot struct {
	Role         string `json:"role"`
	Config       []byte `json:"config"`
	CACert       []byte `json:"ca_cert"`
	CAKey        []byte `json:"ca_key"`
	Tokens       []byte `json:"tokens,omitempty"` // web's token records, JSON
	MirrorPort   string `json:"mirror_port,omitempty"`
	RegistryPort string `json:"registry_port,omitempty"`
	RegistryTLS  bool   `json:"registry_tls,omitempty"`
	// Repos is each published repo's revision.
	Repos map[string]string `json:"repos,omitempty"`
	// Registry is what the primary's registry stores, pulled through or
	// not; nil without a registry.
	Registry *HARegistry `json:"registry,omitempty"`
	// ZoneFiles is the text of each local zone's file:, by zone name.
	ZoneFiles map[string][]byte `json:"zone_files,omitempty"`
}

// HARegistry is a registry's storage as a standby copies it.
type HARegistry struct {
	// Tags is REPO:TAG → its manifest.
	Tags map[string]HATag `json:"tags"`
	// Manifests is every manifest digest each repository holds, tagged or
	// not (a pull by digest stores one untagged).
	Manifests map[string][]string `json:"manifests"`
}

// HATag is one tag: its digest, and whether it is pinned (pushed or
// imported under an upstream's name, so the upstream never replaces it).
type HATag struct {
	Digest string `json:"digest"`
	Pinned bool   `json:"pinned,omitempty"`
}

// PromoteHA asks the running instance to become the primary
// (`airgapd ha promote`).
func (c *Client) PromoteHA(ctx context.Context) (string, error) {
	resp, err := c.post(ctx, "/api/v1/ha/promote")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Message string `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return "", fmt.Errorf("decode reply from %s: %w", c.display, err)
	}
	return out.Message, nil
}

// NotifyHA passes keepalived's state change to the running instance
// (`airgapd ha notify master|backup|fault`).
func (c *Client) NotifyHA(ctx context.Context, state string) (string, error) {
	resp, err := c.post(ctx, "/api/v1/ha/notify?state="+url.QueryEscape(state))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Message string `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return "", fmt.Errorf("decode reply from %s: %w", c.display, err)
	}
	return out.Message, nil
}

// Ready asks /readyz: nil when the instance answers that it is ready to
// serve, else why not.
func (c *Client) Ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.explain(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s is not ready: %s (%s)", c.display, strings.TrimSpace(string(body)), resp.Status)
	}
	return nil
}
