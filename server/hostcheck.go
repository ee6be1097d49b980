package server

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/airgapd/airgapd/internal/conf"
)

// hostFacts is what a config is checked against on this host: its
// addresses and interfaces. A seam, so tests can say what the host has.
type hostFacts struct {
	addrs      map[netip.Addr]bool
	interfaces map[string]bool
}

// readHostFacts reads this host's addresses and interface names.
func readHostFacts() (hostFacts, error) {
	f := hostFacts{addrs: map[netip.Addr]bool{}, interfaces: map[string]bool{}}
	ifs, err := net.Interfaces()
	if err != nil {
		return f, err
	}
	for _, i := range ifs {
		f.interfaces[i.Name] = true
		as, err := i.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				f.addrs[p.Addr().Unmap()] = true
			}
		}
	}
	return f, nil
}

// HostWarnings checks a valid config against this host, as `airgapd check`
// does after the checks that make a config wrong: what is fine to write
// but worth knowing. A listen address the host does not have now (a
// keepalived VIP: airgapd binds it anyway, with IP_FREEBIND, and answers
// once it arrives), and a gateway interface that does not exist (the NAT
// rule would match nothing). Each comes at file:line, marked a warning.
func HostWarnings(path string, cfg *Config) ([]Diagnostic, error) {
	facts, err := readHostFacts()
	if err != nil {
		return nil, fmt.Errorf("read this host's interfaces: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return nil, err
	}
	w := walker{source: path}
	var out []Diagnostic
	for _, p := range hostProblems(cfg, facts) {
		d := w.at(doc.Content[0], p)
		d.Warning = true
		out = append(out, d)
	}
	return out, nil
}

// hostProblems lists what HostWarnings warns about, by config path.
func hostProblems(cfg *Config, facts hostFacts) conf.Problems {
	var ps conf.Problems
	seen := map[string]bool{}
	for _, l := range cfg.listens() {
		host, _, err := net.SplitHostPort(l.addr)
		if err != nil || seen[l.path] {
			continue
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || ip.IsUnspecified() || facts.addrs[ip.Unmap()] {
			continue
		}
		seen[l.path] = true
		ps.Add(l.path, "fine for a keepalived VIP or an address that comes up later: airgapd binds it now (IP_FREEBIND) and answers once it is there",
			"%s is not an address of this host now", host)
	}
	if cfg.Gateway != nil && cfg.Enabled("gateway") {
		for i, m := range cfg.Gateway.Masquerade {
			if !facts.interfaces[m.OutInterface] {
				ps.Add(conf.Join(conf.Index("gateway.masquerade", i), "out_interface"), "name the external interface as `ip link` shows it, e.g. enp0s8",
					"interface %q does not exist on this host: the NAT rule would match nothing", m.OutInterface)
			}
		}
		for i, m := range cfg.Gateway.SNAT {
			if !facts.interfaces[m.OutInterface] {
				ps.Add(conf.Join(conf.Index("gateway.snat", i), "out_interface"), "name the external interface as `ip link` shows it, e.g. enp0s8",
					"interface %q does not exist on this host: the NAT rule would match nothing", m.OutInterface)
			}
		}
	}
	return ps
}
