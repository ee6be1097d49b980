package adopt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// debianCopy copies Debian's packaged named.conf and chrony.conf files
// into a temp folder with their /etc/bind/, /etc/chrony/ and /run/ paths
// pointing there, as they would on the host.
func debianCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/debian")); err != nil {
		t.Fatal(err)
	}
	rewrite := strings.NewReplacer("/etc/bind/", dir+"/", "/etc/chrony/", dir+"/chrony/", "/run/", dir+"/run/")
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(p, []byte(rewrite.Replace(string(b))), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// reportLine is how an item shows in the report, for matching.
func reportHas(r *Report, o Outcome, file string, line int, noteHas string) bool {
	for _, it := range r.Items {
		if it.Outcome == o && strings.HasSuffix(it.Pos.File, file) && (line == 0 || it.Pos.Line == line) && strings.Contains(it.Note, noteHas) {
			return true
		}
	}
	return false
}

type wantItem struct {
	outcome Outcome
	file    string
	line    int
	note    string
}

func TestImport(t *testing.T) {
	debian := debianCopy(t)
	seedRules, err := os.ReadFile("testdata/seed/iptables-save")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		src      Sources
		yamlHas  []string
		yamlLack []string
		items    []wantItem
	}{
		{
			name: "seed named.conf",
			src:  Sources{Named: "testdata/seed/named.conf"},
			yamlHas: []string{
				"allow_query: [127.0.0.1, 192.168.10.0/24] # from testdata/seed/named.conf:13",
				"forwarders: [168.126.63.1, 8.8.8.8] # from testdata/seed/named.conf:16",
				"allow_recursion: [127.0.0.1, 192.168.10.0/24]",
				"listen: ['127.0.0.1:53', '192.168.10.10:53'] # from testdata/seed/named.conf:7",
				"forward: only",
			},
			yamlLack: []string{"root_hints"},
			items: []wantItem{
				{Approximate, "seed/named.conf", 32, "built-in IANA root hints"},
				{NoEquivalent, "seed/named.conf", 25, "logs to stderr"},
				{NoEquivalent, "seed/named.conf", 21, "no pid file"},
			},
		},
		{
			name: "debian named.conf with includes",
			src:  Sources{Named: filepath.Join(debian, "named.conf")},
			yamlHas: []string{
				"listen: [':53']", "allow_query: [0.0.0.0/0, '::/0']", "allow_recursion: [127.0.0.0/8, '::1']",
				"- name: localhost\n      file: " + debian + "/db.local",
				"- name: 255.in-addr.arpa",
				"# from " + debian + "/named.conf.default-zones:10",
			},
			items: []wantItem{
				{Approximate, "named.conf.options", 0, "does not validate"},
				{Mapped, "named.conf.default-zones", 10, "reused in place"},
			},
		},
		{
			name: "view, acl, forward and secondary zones",
			src:  Sources{Named: "testdata/view/named.conf"},
			yamlHas: []string{
				"allow_query: [127.0.0.1, 192.168.10.0/24]",
				"forwarders: ['127.0.0.1:5353', '[::1]:5354']",
				"- name: corp.example\n      forwarders: [127.0.0.2]",
				"max_ttl: 86400s", "responses_per_second: 20", "exempt: [127.0.0.1]", "query_log: true",
			},
			yamlLack: []string{"lab.internal", "old.example"},
			items: []wantItem{
				{NoEquivalent, "view/named.conf", 18, "views are not supported"},
				{NoEquivalent, "view/named.conf", 16, "no transferred copy"},
				{Mapped, "view/named.conf", 3, "acl internal"},
			},
		},
		{
			name: "seed chrony.conf",
			src:  Sources{Chrony: "testdata/seed/chrony.conf"},
			yamlHas: []string{
				"servers: [2.rocky.pool.ntp.org] # from testdata/seed/chrony.conf:3",
				"allow: [192.168.10.0/24] # from testdata/seed/chrony.conf:7",
				"local_stratum: 10 # from testdata/seed/chrony.conf:8",
				"threshold: 1s", "discipline: false",
			},
			items: []wantItem{
				{NoEquivalent, "seed/chrony.conf", 6, "RTC"},
				{Approximate, "seed/chrony.conf", 3, "pool"},
			},
		},
		{
			name: "chrony.conf with refclock",
			src:  Sources{Chrony: "testdata/refclock.conf"},
			yamlHas: []string{
				"servers: ['127.0.0.1:11123', 127.0.0.2]", "minpoll: 4", "maxpoll: 6",
				"allow: [0.0.0.0/0, '::/0']", "listen: ['127.0.0.1:11124']", "local_stratum: 0",
				"interval: 2", "burst: 16",
			},
			items: []wantItem{
				{NoEquivalent, "refclock.conf", 2, "reference clocks"},
				{NoEquivalent, "refclock.conf", 3, "reference clocks"},
				{NoEquivalent, "refclock.conf", 7, "only who is allowed"},
				{Approximate, "refclock.conf", 5, "symmetric"},
				{Approximate, "refclock.conf", 8, "leak"},
			},
		},
		{
			// Debian's chrony.conf reads conf.d/*.conf and sources.d/*.sources;
			// /run/chrony-dhcp is absent here, as on a host without DHCP NTP.
			name: "debian chrony.conf with confdir and sourcedir",
			src:  Sources{Chrony: filepath.Join(debian, "chrony.conf")},
			yamlHas: []string{"servers: [2.debian.pool.ntp.org, ntp1.corp.example]", "limit: 3",
				"local_stratum: 10", "allow: [192.168.10.0/24]"},
			yamlLack: []string{"10.0.0.0/8"},
			items: []wantItem{
				{Mapped, "chrony.conf", 0, "followed: " + debian + "/chrony/conf.d/serve.conf"},
				{Mapped, "chrony.conf", 0, "followed: nothing there"},
				{Mapped, "conf.d/serve.conf", 2, "ntp.allow"},
				{Mapped, "sources.d/site.sources", 1, "ntp.servers: ntp1.corp.example"},
				{NoEquivalent, "sources.d/site.sources", 2, "only server, pool and peer"},
			},
		},
		{
			name:    "seed NAT rule",
			src:     Sources{IptablesSave: seedRules, IptablesSource: "seed/iptables-save"},
			yamlHas: []string{"- source: 0.0.0.0/0\n      out_interface: enp0s8", "mode: plan", "ip_forward: true"},
			items:   []wantItem{{Approximate, "seed/iptables-save", 7, "0.0.0.0/0"}},
		},
		{
			name: "NAT, port forwards and the rest",
			src: Sources{IptablesSource: "rules", IptablesSave: []byte(`*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -s 192.168.10.0/24 -o enp0s8 -j ACCEPT
-A FORWARD -d 192.168.10.20/32 -p tcp -m tcp --dport 443 -j ACCEPT
-A FORWARD -s 10.9.0.0/16 -j ACCEPT
COMMIT
*nat
-A PREROUTING -i enp0s8 -p tcp -m tcp --dport 8443 -j DNAT --to-destination 192.168.10.20:443
-A POSTROUTING -s 192.168.10.0/24 -o enp0s8 -m comment --comment "the nodes' way out" -j MASQUERADE
-A POSTROUTING -s 192.168.20.0/24 -o enp0s8 -j SNAT --to-source 203.0.113.10
-A POSTROUTING ! -d 10.0.0.0/8 -o enp0s8 -j MASQUERADE
-A POSTROUTING -j MASQUERADE
COMMIT
`)},
			yamlHas: []string{
				"- source: 192.168.10.0/24\n      out_interface: enp0s8",
				"to_source: 203.0.113.10",
				"- in_interface: enp0s8\n      proto: tcp\n      port: 8443\n      to: 192.168.10.20:443",
			},
			items: []wantItem{
				{NoEquivalent, "rules", 3, "DROP policy"},
				{NoEquivalent, "rules", 4, "left alone"},
				{Mapped, "rules", 5, "itself"},
				{Mapped, "rules", 6, "itself"},
				{Mapped, "rules", 7, "itself"},
				{NoEquivalent, "rules", 8, "not tied"},
				{NoEquivalent, "rules", 14, "negated"},
				{NoEquivalent, "rules", 15, "outgoing interface"},
			},
		},
		{
			name: "yum repos",
			src:  Sources{YumRepos: "testdata/yum.repos.d"},
			yamlHas: []string{
				"- name: baseos\n      mirrorlist: https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=BaseOS-$releasever$rltype",
				"baseurl: https://dl.rockylinux.org/pub/rocky/$releasever/AppStream/$basearch/os/",
				"- name: local\n      path: /srv/rpms", "gpgcheck: true", "sslverify: true",
				"contentdir: pub/rocky", "rltype: \"\"", "basearch:",
			},
			yamlLack: []string{"devel"},
			items: []wantItem{
				{NoEquivalent, "rocky.repo", 19, "disabled"},
				{Approximate, "rocky.repo", 1, "mirror sync baseos"},
				{Mapped, "rocky.repo", 24, "indexed in place"},
			},
		},
		{
			name: "registry config.yml with htpasswd",
			src:  Sources{RegistryConfig: "testdata/registry/config.yml"},
			yamlHas: []string{
				"rootdirectory: /var/lib/registry", "listen: :5000",
				"- name: admin\n      password_hash: $2y$05$", "- name: docker.io",
			},
			yamlLack: []string{"old", "cache", "delete"},
			items: []wantItem{
				{NoEquivalent, "htpasswd", 2, "not a bcrypt hash"},
				{Approximate, "config.yml", 13, "plain HTTP"},
				{Mapped, "config.yml", 20, "ns=docker.io"},
			},
		},
		{
			name:    "registry config.yml on s3",
			src:     Sources{RegistryConfig: "testdata/registry/config-s3.yml"},
			yamlHas: []string{"bucket: images", "gc: # from testdata/registry/config-s3.yml:3\n    enabled: true"},
			items:   []wantItem{{Mapped, "config-s3.yml", 3, "registry.gc.enabled: true"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Import(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			y := string(res.YAML)
			for _, want := range tc.yamlHas {
				if !strings.Contains(y, want) {
					t.Errorf("YAML lacks %q:\n%s", want, y)
				}
			}
			for _, unwanted := range tc.yamlLack {
				if strings.Contains(y, unwanted) {
					t.Errorf("YAML has %q:\n%s", unwanted, y)
				}
			}
			var rep strings.Builder
			res.Report.WriteTo(&rep)
			for _, it := range tc.items {
				if !reportHas(res.Report, it.outcome, it.file, it.line, it.note) {
					t.Errorf("report lacks %s %s:%d %q:\n%s", it.outcome, it.file, it.line, it.note, rep.String())
				}
			}
		})
	}
}

func TestImportNothing(t *testing.T) {
	if _, err := Import(Sources{}); err == nil {
		t.Error("no sources: no error")
	}
}

func TestBindDuration(t *testing.T) {
	for in, want := range map[string]string{"3600": "3600s", "1d": "86400s", "1w2d3h4m5s": "788645s", "2H": "7200s"} {
		if got, err := bindDuration(in); err != nil || got != want {
			t.Errorf("bindDuration(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := bindDuration("1x"); err == nil {
		t.Error("1x: no error")
	}
}

func TestChronySubnet(t *testing.T) {
	for in, want := range map[string]string{"192.168.10": "192.168.10.0/24", "10": "10.0.0.0/8", "192.168.10.0/24": "192.168.10.0/24", "::1": "::1", "x.example": ""} {
		if got, _ := chronySubnet(in); got != want {
			t.Errorf("chronySubnet(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFromHostKeepsGivenAndReadsRules(t *testing.T) {
	calls := 0
	src, err := FromHost(Sources{Named: "given.conf", IptablesSave: nil}, func() ([]byte, error) {
		calls++
		return []byte("*nat\n-A POSTROUTING -s 10.0.0.0/8 -o eth1 -j MASQUERADE\nCOMMIT\n"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if src.Named != "given.conf" || calls != 1 || !strings.Contains(string(src.IptablesSave), "MASQUERADE") || src.IptablesSource == "" {
		t.Errorf("FromHost = %+v after %d iptables-save calls", src, calls)
	}
	given := []byte("*nat\nCOMMIT\n")
	src, err = FromHost(Sources{IptablesSave: given}, func() ([]byte, error) {
		t.Error("iptables-save run although rules were given")
		return nil, nil
	})
	if err != nil || string(src.IptablesSave) != string(given) {
		t.Errorf("given rules replaced: %q, %v", src.IptablesSave, err)
	}
}
