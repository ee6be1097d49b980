package server

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDiagnostics(t *testing.T) {
	dir := t.TempDir()
	zone := filepath.Join(dir, "lab.zone")
	os.WriteFile(zone, []byte("$ORIGIN lab.internal.\n"), 0o644)
	cases := []struct {
		name string
		yaml string
		want []string // "line:col: substring", in line order
	}{
		{
			name: "misspelt top-level key",
			yaml: "data_dri: /x\n",
			want: []string{`1:1: data_dri: unknown key "data_dri" (hint: did you mean "data_dir"?)`},
		},
		{
			name: "unknown key far from any",
			yaml: "dns:\n  zzzzzzzzzz: 1\n",
			want: []string{`2:3: dns.zzzzzzzzzz: unknown key`},
		},
		{
			name: "bad cidr and bare address is fine",
			yaml: "ntp:\n  allow: [10.0.0.1, 10.0.0.0/33]\n",
			want: []string{`2:21: ntp.allow[1]: "10.0.0.0/33" is not a network`},
		},
		{
			name: "host bits set",
			yaml: "dns:\n  allow_query: [192.168.10.1/24]\n",
			want: []string{`did you mean 192.168.10.0/24`},
		},
		{
			name: "duplicate listen across services, wildcard clashes with specific",
			yaml: "web:\n  listen: \":8443\"\nmirror:\n  listen: \"127.0.0.1:8443\"\n",
			want: []string{`4:11: mirror.listen: tcp 127.0.0.1:8443 is already used by web.listen`},
		},
		{
			name: "dns and ntp on one UDP port",
			yaml: "dns:\n  listen: [\"127.0.0.1:5353\"]\nntp:\n  listen: [\"127.0.0.1:5353\"]\n",
			want: []string{`4:12: ntp.listen[0]: udp 127.0.0.1:5353 is already used by dns.listen[0]`},
		},
		{
			name: "ntp's cmdmon on ntp's own port, bad cmdmon.allow",
			yaml: "ntp:\n  listen: [\"127.0.0.1:5323\"]\n  cmdmon:\n    listen: [\"127.0.0.1:5323\"]\n    allow: [10.0.0.0/33]\n",
			want: []string{`4:14: ntp.cmdmon.listen[0]: udp 127.0.0.1:5323 is already used by ntp.listen[0]`, `5:13: ntp.cmdmon.allow[0]: "10.0.0.0/33" is not a network`},
		},
		{
			name: "ntp's NTS-KE on the web port, nts.required without nts",
			yaml: "web:\n  listen: \"127.0.0.1:8443\"\nntp:\n  nts:\n    enabled: true\n    listen: \"127.0.0.1:8443\"\n",
			want: []string{`ntp.nts.listen: tcp 127.0.0.1:8443 is already used by web.listen`},
		},
		{
			name: "nts.required without nts.enabled",
			yaml: "ntp:\n  nts:\n    required: true\n",
			want: []string{`ntp.nts.required: nts.required without nts.enabled would refuse every client`},
		},
		{
			name: "wrong kinds",
			yaml: "ntp:\n  minpoll: often\n  listen: \":123\"\n",
			want: []string{`2:12: ntp.minpoll: "often" is not a whole number`, `3:11: ntp.listen: expected a list`},
		},
		{
			name: "bad duration",
			yaml: "ntp:\n  fallback_after: 15\n",
			want: []string{`2:19: ntp.fallback_after: "15" is not a duration`},
		},
		{
			name: "tls forms",
			yaml: "web:\n  tls: sometimes\nregistry:\n  tls: { cert: /nonexistent/c.pem, key: /nonexistent/k.pem, pin: 1 }\n",
			want: []string{`2:8: web.tls: tls must be auto, off or {cert: FILE, key: FILE}`, `4:16: registry.tls.cert: cannot read /nonexistent/c.pem`, `4:41: registry.tls.key: cannot read`, `4:61: registry.tls.pin: unknown key`},
		},
		{
			name: "missing zone file, existing one is fine",
			yaml: "dns:\n  zones:\n    - { name: a.internal, file: /nonexistent/a.zone }\n    - { name: lab.internal, file: " + zone + " }\n",
			want: []string{`3:33: dns.zones[0].file: cannot read /nonexistent/a.zone: no such file or directory (hint: create the file or fix the path)`},
		},
		{
			name: "yaml syntax error",
			yaml: "dns:\n  listen: \"127.0.0.1:53\n",
			want: []string{`YAML syntax error`},
		},
		{
			// yaml.v3 says line 1; the bracket is on line 2.
			name: "unclosed [ at its line",
			yaml: "dns:\n  listen: [\"127.0.0.1:53\"\n  forward: only\n",
			want: []string{`2:11: this [ is never closed (hint: add the ] that ends it`},
		},
		{
			name: "unclosed { after a closed one, a # in quotes",
			yaml: "dns:\n  zones: [{ name: a.internal, records: [\"x 300 TXT \\\"#\\\"\"] }]\n  forward_zones: [{ name: b.internal\n",
			want: []string{`3:19: this { is never closed`},
		},
		{
			name: "key twice",
			yaml: "dns:\n  forward: only\n  forward: first\n",
			want: []string{`3:3: dns.forward: key "forward" appears twice`},
		},
		{
			name: "mirror repo needs baseurl or path, local folders need not exist",
			yaml: "mirror:\n  repos:\n    - { name: a }\n    - { name: b, path: /nonexistent/rpms }\n",
			want: []string{`3:7: mirror.repos[0]: repo "a" has no baseurl, mirrorlist, metalink or path`},
		},
		{
			name: "mirror URL variable without a value",
			yaml: "mirror:\n  vars: { basearch: x86_64 }\n  repos:\n    - name: el\n      baseurl: http://up/$releasever/$basearch/\n",
			want: []string{`5:16: mirror.repos[0].baseurl: baseurl uses $releasever with no value`},
		},
		{
			name: "registry mirrors: names and mappings",
			yaml: "registry:\n  mirrors: [docker.io, {name: quay.io, url: ftp://x}]\n",
			want: []string{`registry.mirrors[1].url: "ftp://x" is not a registry URL`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.yaml))
			var ce *CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *CheckError", err)
			}
			if len(ce.Diagnostics) != len(tc.want) {
				t.Fatalf("got %d diagnostics, want %d:\n%v", len(ce.Diagnostics), len(tc.want), err)
			}
			for i, want := range tc.want {
				if got := ce.Diagnostics[i].String(); !strings.Contains(got, want) {
					t.Errorf("diagnostic %d = %q\nwant it to contain %q", i, got, want)
				}
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	cases := []struct {
		name  string
		yaml  string
		check func(*testing.T, *Config)
	}{
		{"empty file: no services", "", func(t *testing.T, c *Config) {
			for _, k := range []string{"web", "dns", "ntp", "gateway", "mirror", "registry"} {
				if c.Enabled(k) {
					t.Errorf("%s enabled in an empty config", k)
				}
			}
			if c.DataDir != "/var/lib/airgapd" || c.RuntimeDir != "/run/airgapd" {
				t.Errorf("top defaults: %q %q", c.DataDir, c.RuntimeDir)
			}
		}},
		{"empty section means defaults", "dns:\n", func(t *testing.T, c *Config) {
			if !c.Enabled("dns") || c.DNS.Forward != "first" || c.DNS.Listen[0] != "0.0.0.0:53" {
				t.Errorf("dns = %+v", c.DNS)
			}
			if strings.Join(c.DNS.AllowRecursion, ",") != "127.0.0.0/8,::1" {
				t.Errorf("default allow_recursion %v is not loopback only", c.DNS.AllowRecursion)
			}
		}},
		{"enabled: false", "dns: { enabled: false, listen: [\":53\"] }\nweb: { listen: \":53\" }\n", func(t *testing.T, c *Config) {
			if c.Enabled("dns") {
				t.Error("dns enabled")
			}
		}},
		{"keys left out keep defaults", "ntp:\n  allow: [192.168.10.0/24]\n", func(t *testing.T, c *Config) {
			if c.NTP.LocalStratum != 10 || c.NTP.MinPoll != 6 || c.NTP.FallbackAfter.String() != "15m0s" {
				t.Errorf("ntp = %+v", c.NTP)
			}
		}},
		{"port 0 never clashes", "web: { listen: \"127.0.0.1:0\" }\nmirror: { listen: \"127.0.0.1:0\" }\n", nil},
		{"tls off", "web: { tls: off }\n", func(t *testing.T, c *Config) {
			if c.Web.TLS.Mode != "off" {
				t.Errorf("tls = %+v", c.Web.TLS)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("f.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestExamplesAndDefaults(t *testing.T) {
	for _, f := range []string{"../examples/lab.yaml", "../examples/dev.yaml", "../packaging/airgapd.yaml"} {
		if _, err := LoadFile(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	dev, err := LoadDev()
	if err != nil {
		t.Fatal(err)
	}
	// The dev defaults must stay on loopback and change nothing on the host.
	if dev.Gateway.Mode != "plan" {
		t.Errorf("dev gateway mode %q, want plan", dev.Gateway.Mode)
	}
	for _, l := range dev.listens() {
		if !strings.HasPrefix(l.addr, "127.0.0.1:") {
			t.Errorf("dev listens on %s %s, not loopback", l.network, l.addr)
		}
	}
	if len(dev.DNS.Forwarders) > 0 || len(dev.NTP.Servers) > 0 || len(dev.Registry.Mirrors) > 0 {
		t.Error("dev defaults name upstream servers")
	}
}

// FuzzParse: no input may crash the loader, and whatever it accepts must
// validate.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"../test/e2e/testdata/three-problems.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("dns:\n  zones: [{name: x, records: [a]}]\n"))
	f.Add([]byte("registry: { mirrors: [a, {name: b}], tls: {cert: a} }\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			var ce *CheckError
			if !errors.As(err, &ce) || len(ce.Diagnostics) == 0 {
				t.Fatalf("error is not a CheckError with diagnostics: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
	})
}

// TestListenClashes: which listen addresses can share a port, as the kernel
// lets them (issue 18): an IPv4 and an IPv6 wildcard side by side (the
// IPv6 one then opens IPV6_V6ONLY), two specific addresses of different
// families; but a wildcard holds every address of its families.
func TestListenClashes(t *testing.T) {
	tests := []struct {
		listen string
		clash  bool
	}{
		{`["0.0.0.0:5353", "[::]:5353"]`, false},
		{`["127.0.0.1:5353", "[::1]:5353"]`, false},
		{`["0.0.0.0:5353", "[::1]:5353"]`, false},
		{`["[::]:5353", "127.0.0.1:5353"]`, true}, // a lone [::] is dual-stack
		{`["0.0.0.0:5353", "[::]:5353", "[::1]:5353"]`, true},
		{`["0.0.0.0:5353", "127.0.0.1:5353"]`, true},
		{`[":5353", "[::1]:5353"]`, true},
		{`["127.0.0.1:5353", "127.0.0.2:5353"]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "airgapd.yaml")
			os.WriteFile(path, []byte("dns:\n  listen: "+tt.listen+"\n"), 0o600)
			_, err := LoadFile(path)
			got := err != nil && strings.Contains(err.Error(), "is already used by")
			if got != tt.clash {
				t.Errorf("clash = %v, want %v (err: %v)", got, tt.clash, err)
			}
		})
	}
	var v6only []string
	ls := []listenAddr{{network: "udp", addr: "0.0.0.0:53"}, {network: "udp", addr: "[::]:53"}, {network: "tcp", addr: "[::]:53"}}
	markV6Only(ls)
	for _, l := range ls {
		if l.v6only {
			v6only = append(v6only, l.network+" "+l.addr)
		}
	}
	if strings.Join(v6only, ",") != "udp [::]:53" {
		t.Errorf("v6only on %v, want only udp [::]:53 (tcp [::]:53 has no IPv4 partner)", v6only)
	}
}

// TestSystemFoldersRefused: data_dir and runtime_dir may not be / or a
// folder the system lives in (issue 19 item 1: `data_dir: /` passed check).
func TestSystemFoldersRefused(t *testing.T) {
	tests := []struct {
		yaml string
		bad  bool
	}{
		{"data_dir: /\n", true},
		{"data_dir: /etc/\n", true},
		{"runtime_dir: /run\n", true},
		{"data_dir: /var/lib/airgapd\n", false},
		{"data_dir: /srv/airgapd\nruntime_dir: /run/airgapd\n", false},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "airgapd.yaml")
		os.WriteFile(path, []byte(tt.yaml), 0o600)
		_, err := LoadFile(path)
		if got := err != nil && strings.Contains(err.Error(), "airgapd creates, locks and cleans files there"); got != tt.bad {
			t.Errorf("%q: refused = %v, want %v (err: %v)", tt.yaml, got, tt.bad, err)
		}
	}
}

// TestHostProblems: what check warns about on a given host (issue 18: a
// listen address not on the host; issue 28: a gateway interface that does
// not exist).
func TestHostProblems(t *testing.T) {
	facts := hostFacts{
		addrs:      map[netip.Addr]bool{netip.MustParseAddr("127.0.0.1"): true, netip.MustParseAddr("::1"): true},
		interfaces: map[string]bool{"lo": true, "enp0s8": true},
	}
	tests := []struct {
		yaml string
		want []string // paths warned about
	}{
		{"dns:\n  listen: [\"0.0.0.0:5353\", \"127.0.0.1:5354\", \"[::1]:5355\"]\n", nil},
		{"dns:\n  listen: [\"192.168.10.10:5353\"]\nntp:\n  listen: [\"[fd00::10]:123\"]\n", []string{"dns.listen[0]", "ntp.listen[0]"}},
		{"gateway:\n  masquerade: [{ source: 10.0.0.0/24, out_interface: enp0s8 }, { source: 10.0.1.0/24, out_interface: eth9 }]\n",
			[]string{"gateway.masquerade[1].out_interface"}},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "airgapd.yaml")
		os.WriteFile(path, []byte(tt.yaml), 0o600)
		cfg, err := LoadFile(path)
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		var got []string
		for _, p := range hostProblems(cfg, facts) {
			got = append(got, p.Path)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%q: warnings at %v, want %v", tt.yaml, got, tt.want)
		}
	}
}
