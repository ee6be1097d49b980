package server

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/airgapd/airgapd/web"
)

// haNodeAddrs points node.sh of a pair at the VIP for everything, with
// nameserver and chrony server lines for both hosts' own addresses.
func haNodeAddrs(c *Config, nb *web.NodeBootstrap) {
	if !c.Enabled("ha") {
		return
	}
	vip, err := netip.ParsePrefix(c.HA.VIP)
	if err != nil {
		return
	}
	nb.AdminAddr = vip.Addr().String()
	for _, a := range c.Advertise.Addresses {
		if a != nb.AdminAddr {
			nb.PairAddrs = append(nb.PairAddrs, a)
			break
		}
	}
	if u, err := url.Parse(c.HA.Peer); err == nil && u.Hostname() != "" && !slices.Contains(nb.PairAddrs, u.Hostname()) {
		nb.PairAddrs = append(nb.PairAddrs, u.Hostname())
	}
}

// KeepalivedConf is keepalived.conf for this host of the pair (`airgapd ha
// keepalived`): one VRRP instance holding ha.vip on ha.interface, a
// track_script that runs `airgapd ha check` every second (the VIP leaves a
// host whose airgapd is not ready), and notify lines running `airgapd ha
// notify master|backup|fault` (the gateway's NAT follows the VIP). binary
// and configPath are how keepalived runs airgapd.
func KeepalivedConf(c *Config, binary, configPath string) (string, error) {
	if !c.Enabled("ha") {
		return "", errors.New("the config has no ha: section; add one (README, \"Two admin hosts\")")
	}
	h := c.HA
	run := func(args string) string {
		cmd := binary + " " + args
		if configPath != "" {
			cmd += " --config " + configPath
		}
		return `"` + strings.ReplaceAll(cmd, `"`, `\"`) + `"`
	}
	state := "BACKUP"
	if h.Role == rolePrimary {
		state = "MASTER"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# keepalived.conf for airgapd's %s (written by `airgapd ha keepalived`).\n", h.Role)
	fmt.Fprintf(&b, "# Both hosts: the same virtual_router_id and VIP; the primary the higher priority.\n")
	fmt.Fprintf(&b, "global_defs {\n    script_user root\n    enable_script_security\n}\n\n")
	fmt.Fprintf(&b, "vrrp_script airgapd_check {\n    script %s\n    interval 1\n    timeout 3\n    fall 2\n    rise 2\n}\n\n", run("ha check"))
	fmt.Fprintf(&b, "vrrp_instance airgapd {\n")
	fmt.Fprintf(&b, "    state %s\n    interface %s\n    virtual_router_id %d\n    priority %d\n    advert_int 1\n", state, h.Interface, h.VirtualRouterID, h.priority())
	fmt.Fprintf(&b, "    virtual_ipaddress {\n        %s dev %s\n    }\n", h.VIP, h.Interface)
	fmt.Fprintf(&b, "    track_script {\n        airgapd_check\n    }\n")
	for _, s := range []string{"master", "backup", "fault"} {
		fmt.Fprintf(&b, "    notify_%s %s\n", s, run("ha notify "+s))
	}
	fmt.Fprintf(&b, "}\n")
	return b.String(), nil
}
