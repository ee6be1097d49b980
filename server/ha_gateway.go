package server

import (
	"net"
	"net/netip"

	"github.com/airgapd/airgapd/gateway"
)

// The gateway on a pair: the nodes' default route is the VIP, so only the
// host holding it applies the NAT. keepalived says when that changes
// (`airgapd ha notify master|backup|fault`, which asks the running server
// to look again); the HA node also looks every round, and a gateway built
// or reloaded on a host without the VIP starts in plan mode. Connection
// tracking state is not carried over: connections through the old holder
// break and are made again.

// holdsVIP reports whether ha.vip is on ha.interface here.
func holdsVIP(c *Config) bool {
	if !c.Enabled("ha") {
		return true
	}
	vip, err := netip.ParsePrefix(c.HA.VIP)
	if err != nil {
		return false
	}
	ifi, err := net.InterfaceByName(c.HA.Interface)
	if err != nil {
		return false
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == vip.Addr() {
				return true
			}
		}
	}
	return false
}

// haGatewayConfig is the gateway section as this host runs it: as written
// where the VIP is (or without ha), in plan mode elsewhere.
func haGatewayConfig(c *Config) gateway.Config {
	g := *c.Gateway
	if g.Mode == gateway.ModeApply && !holdsVIP(c) {
		g.Mode = gateway.ModePlan
	}
	return g
}

// haGateway brings the running gateway in line with who holds the VIP:
// applied on the holder, taken down elsewhere. It returns the mode now in
// force, "" without a gateway.
func (s *Server) haGateway() string {
	s.mu.Lock()
	c := s.cfg
	s.mu.Unlock()
	if !c.Enabled("gateway") {
		return ""
	}
	g, err := capability[*gateway.Gateway](s, "gateway")
	if err != nil {
		return ""
	}
	want := haGatewayConfig(c)
	if g.Config().Mode == want.Mode {
		return want.Mode
	}
	if err := g.Reload(want); err != nil {
		s.log.Error("gateway: cannot follow the VIP", "err", err)
		return g.Config().Mode
	}
	if want.Mode == gateway.ModePlan && c.Gateway.Mode == gateway.ModeApply {
		if p, err := g.Down(); err != nil {
			s.log.Error("gateway: the VIP left, but removing the NAT failed", "err", err)
		} else {
			s.log.Info("gateway: the VIP left this host; NAT removed", "changes", len(p.Steps))
		}
	} else {
		s.log.Info("gateway: this host holds the VIP; NAT applied")
	}
	return want.Mode
}

// NotifyHA implements web.HA: keepalived's notify (`airgapd ha notify
// STATE`) for this host.
func (s *Server) NotifyHA(state string) (string, error) {
	s.log.Info("keepalived says", "state", state)
	mode := s.haGateway()
	if mode == "" {
		return "state " + state + " noted; no gateway here", nil
	}
	return "state " + state + " noted; gateway in " + mode + " mode", nil
}
