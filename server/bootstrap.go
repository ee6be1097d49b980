package server

import (
	"net"
	"net/http"
	"strings"

	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/registry"
	"github.com/airgapd/airgapd/web"
)

var _ web.Bootstrapper = (*Server)(nil)

// NodeBootstrap implements web.Bootstrapper: node.sh is rendered from the
// running config, so it always matches what this host serves.
func (s *Server) NodeBootstrap() web.NodeBootstrap {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cfg
	nb := web.NodeBootstrap{
		AdminName: c.Advertise.Name,
		DNS:       c.Enabled("dns"),
		NTP:       c.Enabled("ntp"),
		Gateway:   c.Enabled("gateway"),
	}
	if len(c.Advertise.Addresses) > 0 {
		nb.AdminAddr = c.Advertise.Addresses[0]
	}
	if nb.AdminName == "" {
		nb.AdminName = nb.AdminAddr
	}
	if nb.DNS {
		nb.ReportFrom = c.DNS.AllowQuery
	}
	haNodeAddrs(c, &nb)
	if nb.DNS && len(c.DNS.Zones) > 0 {
		nb.SearchDomain = strings.TrimSuffix(c.DNS.Zones[0].Name, ".")
	}
	if c.Enabled("mirror") {
		nb.MirrorURL = "http://" + s.advertisedHostPort(nb.AdminAddr, s.bound["mirror.listen"], "80")
		for _, r := range c.Mirror.Repos {
			nb.Repos = append(nb.Repos, r.Name)
		}
		if c.Enabled("pypi") {
			nb.PyPIURL = nb.MirrorURL + "/pypi/simple/"
		}
	}
	if c.Enabled("apt") && c.Enabled("mirror") {
		for _, r := range c.Apt.Repos {
			nb.AptRepos = append(nb.AptRepos, r.Name)
		}
	}
	if c.Enabled("goproxy") && nb.MirrorURL != "" {
		nb.GoProxyURL, nb.GoSumDB = nb.MirrorURL+"/goproxy", c.GoProxy.SumDB.Key
	}
	if c.Enabled("registry") {
		nb.Registry = s.advertisedHostPort(nb.AdminAddr, s.bound["registry.listen"], "443")
		for _, m := range c.Registry.Mirrors {
			nb.RegistryMirrors = append(nb.RegistryMirrors, m.Name)
		}
	}
	return nb
}

// advertisedHostPort is how a node reaches a listener: the advertised
// address with the port the listener really has; the scheme's default port
// is left out.
func (s *Server) advertisedHostPort(addr, bound, defaultPort string) string {
	_, port, err := net.SplitHostPort(bound)
	if err != nil || port == defaultPort {
		return addrForURL(addr)
	}
	return net.JoinHostPort(addr, port)
}

// addrForURL brackets an IPv6 address.
func addrForURL(a string) string {
	if strings.Contains(a, ":") {
		return "[" + a + "]"
	}
	return a
}

// recordBound keeps, for readers on other goroutines, the address each
// listen key really got (port 0 resolved). Call with s.mu held.
func (s *Server) recordBound(c *Config) {
	s.bound = map[string]string{}
	for _, l := range c.listens() {
		if a := s.sockets.boundAddr(keyFor(l)); a != "" {
			s.bound[l.path] = a
		}
	}
}

// registryNodeFiles serves the registry's node files (hosts.toml …) as
// nodes reach the registry: the advertised address and the bound port,
// with the CA where node.sh puts it.
func (s *Server) registryNodeFiles() http.Handler {
	return registry.NodeConfigHandler(func() registry.NodeOptions {
		nb := s.NodeBootstrap()
		s.mu.Lock()
		defer s.mu.Unlock()
		o := registry.NodeOptions{Host: nb.Registry, CAPath: "/etc/containerd/certs.d/" + nb.Registry + "/ca.crt"}
		if s.cfg.Enabled("registry") {
			o.PlainHTTP = s.cfg.Registry.TLS.Mode == conf.TLSOff
			o.Upstreams = s.cfg.Registry.Mirrors
		}
		return o
	})
}
