package adopt

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
)

// Sources names the files to import; empty fields are skipped.
type Sources struct {
	Named          string   // named.conf
	Chrony         string   // chrony.conf
	IptablesSave   []byte   // iptables-save output
	IptablesSource string   // where IptablesSave came from, for comments and the report
	YumRepos       string   // folder of *.repo files
	Reposync       []string // folders of reposync/createrepo_c repos (nginx's root), indexed in place
	RegistryConfig string   // Docker Registry config.yml
	// Host is the interfaces of the host named.conf is from (FromHost
	// fills it), for BIND's localhost and localnets; nil: loopback only.
	Host *HostNets
}

// Result is the written airgapd.yaml and the report on it.
type Result struct {
	YAML   []byte
	Report *Report
}

// Import reads every given source and returns airgapd.yaml's text with the
// report. It reads only.
func Import(src Sources) (*Result, error) {
	doc, rep := newDocument(), &Report{}
	steps := []struct {
		given bool
		run   func() error
	}{
		{src.Named != "", func() error { return importNamed(src.Named, src.Host, doc, rep) }},
		{src.Chrony != "", func() error { return importChrony(src.Chrony, doc, rep) }},
		{src.IptablesSave != nil, func() error {
			return importIptablesSave(valueOr(src.IptablesSource, "iptables-save"), src.IptablesSave, doc, rep)
		}},
		{src.YumRepos != "", func() error { return importYumRepos(src.YumRepos, doc, rep) }},
		{len(src.Reposync) > 0, func() error { return importReposync(src.Reposync, doc, rep) }},
		{src.RegistryConfig != "", func() error { return importRegistryConfig(src.RegistryConfig, doc, rep) }},
	}
	any := false
	for _, s := range steps {
		if !s.given {
			continue
		}
		any = true
		if err := s.run(); err != nil {
			return nil, err
		}
	}
	if !any {
		return nil, errors.New("nothing to import: give at least one source")
	}
	out, err := doc.YAML()
	if err != nil {
		return nil, err
	}
	return &Result{YAML: out, Report: rep}, nil
}

// hostPaths are where the seeds and the usual distributions keep each
// file, first match wins (Rocky/RHEL first, then Debian).
type hostPaths struct {
	named, chrony, registryConfig []string
	yumRepos                      string
}

func usualPaths() hostPaths {
	return hostPaths{
		named:          []string{"/etc/named.conf", "/etc/bind/named.conf"},
		chrony:         []string{"/etc/chrony.conf", "/etc/chrony/chrony.conf"},
		registryConfig: []string{"/etc/docker/registry/config.yml", "/etc/distribution/config.yml"},
		yumRepos:       "/etc/yum.repos.d",
	}
}

// FromHost fills the sources this host has, at the usual paths, and the
// NAT rules from iptablesSave (the caller runs `iptables-save`, read-only).
// Given fields are kept.
func FromHost(src Sources, iptablesSave func() ([]byte, error)) (Sources, error) {
	paths := usualPaths()
	first := func(paths []string) string {
		for _, p := range paths {
			if fileExists(p) {
				return p
			}
		}
		return ""
	}
	if src.Named == "" {
		src.Named = first(paths.named)
	}
	if src.Chrony == "" {
		src.Chrony = first(paths.chrony)
	}
	if src.RegistryConfig == "" {
		src.RegistryConfig = first(paths.registryConfig)
	}
	if m, _ := filepath.Glob(filepath.Join(paths.yumRepos, "*.repo")); src.YumRepos == "" && len(m) > 0 {
		src.YumRepos = paths.yumRepos
	}
	if src.Host == nil {
		src.Host = hostNets()
	}
	if src.Reposync == nil {
		src.Reposync = nginxRepoRoots()
	}
	if src.IptablesSave == nil && iptablesSave != nil {
		out, err := iptablesSave()
		if err != nil {
			return src, fmt.Errorf("iptables-save: %w", err)
		}
		src.IptablesSave, src.IptablesSource = out, "iptables-save (this host)"
	}
	return src, nil
}

// ReadIptablesSave reads saved rules from a file.
func ReadIptablesSave(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read iptables-save output: %w", err)
	}
	return b, nil
}

// hostNets reads this host's interface addresses and networks, read-only.
func hostNets() *HostNets {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	h := &HostNets{}
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		h.Addresses = append(h.Addresses, p.Addr().String())
		h.Networks = append(h.Networks, p.Masked().String())
	}
	h.Networks = dedupeStrings(h.Networks)
	return h
}
