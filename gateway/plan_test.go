package gateway

import (
	"slices"
	"strings"
	"testing"
)

func TestDesiredState(t *testing.T) {
	cases := []struct {
		name    string
		mutate  func(*Config)
		rules   map[string][]string
		sysctls []sysctl
		dropin  []string // lines; nil = no drop-in
	}{
		{
			name:   "masquerade only",
			mutate: func(c *Config) {},
			rules: map[string][]string{
				ChainPrerouting:  nil,
				ChainPostrouting: {"-s 192.168.10.0/24 -o enp0s8 -j MASQUERADE"},
				ChainForward: {
					"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
					"-s 192.168.10.0/24 -o enp0s8 -j ACCEPT",
				},
			},
			sysctls: []sysctl{{ipForwardPath, "1"}},
		},
		{
			name: "everything",
			mutate: func(c *Config) {
				c.Masquerade = append(c.Masquerade, c.Masquerade[0]) // a duplicate goes in once
				c.SNAT = []SNAT{{Source: "192.168.20.5", OutInterface: "enp0s8", ToSource: "203.0.113.10"}}
				c.DNAT = []DNAT{
					{InInterface: "enp0s8", Proto: "tcp", Port: 8443, To: "192.168.10.20:443"},
					{Proto: "udp", Port: 53, To: "192.168.10.10"},
				}
				c.ForwardPolicy = PolicyReject
				c.RPFilter = map[string]int{"enp0s9": 1, "all": 2}
				c.SysctlDropin = true
			},
			rules: map[string][]string{
				ChainPrerouting: {
					"-i enp0s8 -p tcp -m tcp --dport 8443 -j DNAT --to-destination 192.168.10.20:443",
					"-p udp -m udp --dport 53 -j DNAT --to-destination 192.168.10.10",
				},
				ChainPostrouting: {
					"-s 192.168.10.0/24 -o enp0s8 -j MASQUERADE",
					"-s 192.168.20.5/32 -o enp0s8 -j SNAT --to-source 203.0.113.10",
				},
				ChainForward: {
					"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
					"-s 192.168.10.0/24 -o enp0s8 -j ACCEPT",
					"-s 192.168.20.5/32 -o enp0s8 -j ACCEPT",
					"-d 192.168.10.20/32 -i enp0s8 -p tcp -m tcp --dport 443 -m conntrack --ctstate DNAT -j ACCEPT",
					"-d 192.168.10.10/32 -p udp -m udp --dport 53 -m conntrack --ctstate DNAT -j ACCEPT",
					"-j REJECT --reject-with icmp-port-unreachable",
				},
			},
			sysctls: []sysctl{{ipForwardPath, "1"}, {"net/ipv4/conf/all/rp_filter", "2"}, {"net/ipv4/conf/enp0s9/rp_filter", "1"}},
			dropin:  []string{"net.ipv4.ip_forward = 1", "net.ipv4.conf.all.rp_filter = 2", "net.ipv4.conf.enp0s9.rp_filter = 1"},
		},
		{
			name: "ip_forward false leaves it alone",
			mutate: func(c *Config) {
				c.IPForward = false
				c.Masquerade = nil
				c.ForwardPolicy = PolicyDrop
				c.SysctlDropin = true // with nothing to persist: no file
			},
			rules: map[string][]string{
				ChainPrerouting:  nil,
				ChainPostrouting: nil,
				ChainForward:     {"-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "-j DROP"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := labConfig()
			tc.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			d := desiredState(c)
			for ch, want := range tc.rules {
				if got := d.Rules[ch]; !slices.Equal(got, want) {
					t.Errorf("%s:\n got %q\nwant %q", ch, got, want)
				}
			}
			if !slices.Equal(d.Sysctls, tc.sysctls) {
				t.Errorf("sysctls %v, want %v", d.Sysctls, tc.sysctls)
			}
			switch {
			case tc.dropin == nil && d.Dropin != nil:
				t.Errorf("drop-in %q, want none", d.Dropin)
			case tc.dropin != nil:
				lines := strings.Split(strings.TrimSpace(string(d.Dropin)), "\n")
				var body []string
				for _, l := range lines {
					if !strings.HasPrefix(l, "#") {
						body = append(body, l)
					}
				}
				if !slices.Equal(body, tc.dropin) {
					t.Errorf("drop-in:\n%s\nwant %q", d.Dropin, tc.dropin)
				}
			}
		})
	}
}

// applySteps plays steps on a list of rule specs, as iptables would on one
// chain.
func applySteps(t *testing.T, rules []string, steps []Step) []string {
	t.Helper()
	out := slices.Clone(rules)
	for _, s := range steps {
		switch s.Op {
		case OpInsert:
			if s.Pos < 1 || s.Pos > len(out)+1 {
				t.Fatalf("%s: position out of range for %q", s, out)
			}
			out = slices.Insert(out, s.Pos-1, s.Rule)
		case OpAppend:
			out = append(out, s.Rule)
		case OpDeleteAt:
			if s.Pos < 1 || s.Pos > len(out) || out[s.Pos-1] != s.Rule {
				t.Fatalf("%s: rule %d of %q is not %q", s, s.Pos, out, s.Rule)
			}
			out = slices.Delete(out, s.Pos-1, s.Pos)
		case OpDelete:
			i := slices.Index(out, s.Rule)
			if i < 0 {
				t.Fatalf("%s: no such rule in %q", s, out)
			}
			out = slices.Delete(out, i, i+1)
		default:
			t.Fatalf("unexpected step %s", s)
		}
	}
	return out
}

func TestDiffChain(t *testing.T) {
	const a, b, c, x = "-s 10.0.0.0/8 -j A", "-s 10.1.0.0/16 -j B", "-j C", "-j FOREIGN"
	cases := []struct {
		name       string
		have, want []string
		steps      []string
	}{
		{name: "empty to full", have: nil, want: []string{a, b}, steps: []string{"-A X " + a, "-A X " + b}},
		{name: "in sync", have: []string{a, b, c}, want: []string{a, b, c}, steps: nil},
		{name: "flushed", have: nil, want: []string{a}, steps: []string{"-A X " + a}},
		{name: "one missing in the middle", have: []string{a, c}, want: []string{a, b, c}, steps: []string{"-I X 2 " + b}},
		{name: "missing at the top", have: []string{b, c}, want: []string{a, b, c}, steps: []string{"-I X 1 " + a}},
		{name: "extra rule", have: []string{a, x, b}, want: []string{a, b}, steps: []string{"-D X 2"}},
		{name: "duplicate", have: []string{a, a, b}, want: []string{a, b}, steps: []string{"-D X 2"}},
		{name: "duplicate at the end", have: []string{a, b, a}, want: []string{a, b}, steps: []string{"-D X 3"}},
		{name: "swapped", have: []string{b, a}, want: []string{a, b}, steps: []string{"-A X " + b, "-D X 1"}},
		{name: "all gone", have: []string{a, b}, want: nil, steps: []string{"-D X 2", "-D X 1"}},
		{name: "replaced", have: []string{x}, want: []string{a}, steps: []string{"-I X 1 " + a, "-D X 2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			steps := diffChain("nat", "X", tc.have, tc.want)
			var got []string
			for _, s := range steps {
				got = append(got, s.String())
			}
			if !slices.Equal(got, tc.steps) {
				t.Errorf("steps\n got %q\nwant %q", got, tc.steps)
			}
			if res := applySteps(t, tc.have, steps); !slices.Equal(res, tc.want) {
				t.Errorf("after the steps the chain is %q, want %q", res, tc.want)
			}
		})
	}
}

func TestDiffJump(t *testing.T) {
	const jump, other = "-j AIRGAPD-FORWARD", "-j LIBVIRT_FWX"
	cases := []struct {
		name  string
		have  []string
		steps []string
	}{
		{name: "missing", have: nil, steps: []string{"-I FORWARD 1 " + jump}},
		{name: "first", have: []string{jump, other}, steps: nil},
		{name: "below a foreign rule", have: []string{other, jump}, steps: []string{"-D FORWARD " + jump, "-I FORWARD 1 " + jump}},
		{name: "twice", have: []string{jump, other, jump}, steps: []string{"-D FORWARD " + jump, "-D FORWARD " + jump, "-I FORWARD 1 " + jump}},
		{name: "only foreign", have: []string{other}, steps: []string{"-I FORWARD 1 " + jump}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hook listedChain
			for _, r := range tc.have {
				hook.Rules = append(hook.Rules, listedRule{Spec: r})
			}
			steps := diffJump(ownedChain{"filter", ChainForward, "FORWARD"}, hook)
			var got []string
			for _, s := range steps {
				got = append(got, s.String())
			}
			if !slices.Equal(got, tc.steps) {
				t.Errorf("steps\n got %q\nwant %q", got, tc.steps)
			}
			res := applySteps(t, tc.have, steps)
			if len(res) == 0 || res[0] != jump || slices.Index(res[1:], jump) >= 0 {
				t.Errorf("after the steps FORWARD is %q, want one jump, first", res)
			}
			foreign := slices.DeleteFunc(slices.Clone(tc.have), func(s string) bool { return s == jump })
			if got := slices.DeleteFunc(res, func(s string) bool { return s == jump }); !slices.Equal(got, foreign) {
				t.Errorf("foreign rules changed: %q, want %q", got, foreign)
			}
		})
	}
}

func TestPlanText(t *testing.T) {
	want := desiredState(labConfig())
	have := observed{
		Chains:  map[string][]string{"nat": {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}, "filter": {"INPUT", "FORWARD", "OUTPUT"}},
		Listed:  map[string]listedChain{},
		Sysctls: map[string]string{ipForwardPath: "0"},
	}
	p := diff(want, have, "/etc/sysctl.d/90-airgapd.conf")
	got := p.String()
	wantText := `*nat
:AIRGAPD-PREROUTING - [0:0]
-I PREROUTING 1 -j AIRGAPD-PREROUTING
:AIRGAPD-POSTROUTING - [0:0]
-A AIRGAPD-POSTROUTING -s 192.168.10.0/24 -o enp0s8 -j MASQUERADE
-I POSTROUTING 1 -j AIRGAPD-POSTROUTING
COMMIT
*filter
:AIRGAPD-FORWARD - [0:0]
-A AIRGAPD-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A AIRGAPD-FORWARD -s 192.168.10.0/24 -o enp0s8 -j ACCEPT
-I FORWARD 1 -j AIRGAPD-FORWARD
COMMIT
sysctl -w net.ipv4.ip_forward=1   # from 0
`
	if got != wantText {
		t.Errorf("plan:\n%s\nwant:\n%s", got, wantText)
	}
	if s := (Plan{}).String(); !strings.Contains(s, "no changes") {
		t.Errorf("empty plan says %q", s)
	}
}

func TestParseListing(t *testing.T) {
	lines := []string{
		"-P FORWARD DROP -c 10 600",
		"-A FORWARD -c 5 300 -j AIRGAPD-FORWARD",
		`-A FORWARD -i virbr0 -m comment --comment "libvirt \"rule\"" -c 0 0 -j REJECT --reject-with icmp-port-unreachable`,
		"-A FORWARD -o br0 -c 1 2",
	}
	lc, err := parseListing("FORWARD", lines)
	if err != nil {
		t.Fatal(err)
	}
	if lc.Policy != "DROP" {
		t.Errorf("policy %q", lc.Policy)
	}
	want := []listedRule{
		{Spec: "-j AIRGAPD-FORWARD", Packets: 5, Bytes: 300},
		{Spec: `-i virbr0 -m comment --comment "libvirt \"rule\"" -j REJECT --reject-with icmp-port-unreachable`},
		{Spec: "-o br0", Packets: 1, Bytes: 2},
	}
	if !slices.Equal(lc.Rules, want) {
		t.Errorf("rules\n got %+v\nwant %+v", lc.Rules, want)
	}
	if got := lc.Rules[1].target(); got != "REJECT" {
		t.Errorf("target %q", got)
	}
	if args := splitSpec(lc.Rules[1].Spec); args[5] != `libvirt "rule"` {
		t.Errorf("comment argument %q", args[5])
	}
	if _, err := parseListing("FORWARD", []string{"garbage"}); err == nil {
		t.Error("garbage line accepted")
	}
}

func TestDownPlan(t *testing.T) {
	have := observed{
		Chains: map[string][]string{
			"nat":    {"PREROUTING", "POSTROUTING", ChainPrerouting, ChainPostrouting, "LIBVIRT_PRT"},
			"filter": {"FORWARD", ChainForward},
		},
		Listed: map[string]listedChain{
			key("nat", "POSTROUTING"):    {Rules: []listedRule{{Spec: "-j AIRGAPD-POSTROUTING"}, {Spec: "-j LIBVIRT_PRT"}}},
			key("nat", ChainPostrouting): {Rules: []listedRule{{Spec: "-s 10.0.0.0/8 -o eth0 -j MASQUERADE"}}},
			key("filter", "FORWARD"):     {Rules: []listedRule{{Spec: "-j LIBVIRT_FWX"}, {Spec: "-j AIRGAPD-FORWARD"}, {Spec: "-s 1.2.3.4/32 -j AIRGAPD-FORWARD"}}},
		},
		Sysctls: map[string]string{ipForwardPath: "1"},
		Routes:  []KernelRoute{{Dev: "eth0"}},
		Dropin:  []byte("x"),
	}
	p := downPlan(have, "/d")
	want := []string{
		"-t nat -D POSTROUTING -j AIRGAPD-POSTROUTING",
		"-t nat -X AIRGAPD-PREROUTING",
		"-t nat -F AIRGAPD-POSTROUTING",
		"-t nat -X AIRGAPD-POSTROUTING",
		"-t filter -D FORWARD -j AIRGAPD-FORWARD",
		"-t filter -D FORWARD -s 1.2.3.4/32 -j AIRGAPD-FORWARD",
		"-t filter -X AIRGAPD-FORWARD",
		"ip route del invalid Prefix dev eth0 proto 147",
		"rm /d",
	}
	if got := p.Changes(); !slices.Equal(got, want) {
		t.Errorf("down plan\n got %q\nwant %q", got, want)
	}
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "ip_forward stays 1") {
		t.Errorf("notes %q", p.Notes)
	}
}
