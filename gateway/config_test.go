package gateway

import (
	"strings"
	"testing"

	"github.com/airgapd/airgapd/internal/conf"
)

func labConfig() Config {
	c := DefaultConfig()
	c.Masquerade = []Masquerade{{Source: "192.168.10.0/24", OutInterface: "enp0s8"}}
	return c
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings of the problems, in order; none = valid
	}{
		{name: "defaults", mutate: func(c *Config) {}},
		{name: "the lab", mutate: func(c *Config) {
			c.SNAT = []SNAT{{Source: "192.168.20.0/24", OutInterface: "enp0s8", ToSource: "203.0.113.10"}}
			c.DNAT = []DNAT{{InInterface: "enp0s8", Proto: "tcp", Port: 8443, To: "192.168.10.20:443"}, {Proto: "udp", Port: 53, To: "192.168.10.10"}}
			c.ForwardPolicy = PolicyDrop
			c.Routes = []Route{{Destination: "10.20.0.0/16", Via: "192.168.10.1", Dev: "enp0s9"}, {Destination: "10.30.0.1", Dev: "enp0s9"}}
			c.RPFilter = map[string]int{"all": 0, "enp0s8.100": 2}
		}},
		{name: "bad mode", mutate: func(c *Config) { c.Mode = "yes" }, want: []string{`mode: mode is "yes"`}},
		{name: "bad masquerade", mutate: func(c *Config) {
			c.Masquerade = append(c.Masquerade, Masquerade{Source: "192.168.10.1/24", OutInterface: "a-very-long-interface"})
		}, want: []string{"masquerade[1].source: ", "did you mean 192.168.10.0/24", `masquerade[1].out_interface: "a-very-long-interface" is not an interface name`}},
		{name: "ipv6 source", mutate: func(c *Config) { c.Masquerade[0].Source = "fd00::/64" }, want: []string{"masquerade[0].source: \"fd00::/64\": only IPv4"}},
		{name: "bad snat", mutate: func(c *Config) {
			c.SNAT = []SNAT{{Source: "10.0.0.0/8", OutInterface: "eth0", ToSource: "eth0"}}
		}, want: []string{`snat[0].to_source: "eth0" is not an IPv4 address`}},
		{name: "bad dnat", mutate: func(c *Config) {
			c.DNAT = []DNAT{{Proto: "sctp", Port: 0, To: "host:80"}}
		}, want: []string{`dnat[0].proto: proto is "sctp"`, "dnat[0].port: port 0 is out of range", `dnat[0].to: "host:80" is not ADDR:PORT`}},
		{name: "bad forward policy", mutate: func(c *Config) { c.ForwardPolicy = "DROP" }, want: []string{`forward_policy: forward_policy is "DROP"`}},
		{name: "bad routes", mutate: func(c *Config) {
			c.Routes = []Route{{Destination: "10.20.0.0/33"}, {Destination: "10.0.0.0/8", Via: "gw"}}
		}, want: []string{"routes[0].destination: ", "routes[0]: a route needs a gateway or a device", `routes[1].via: "gw" is not an IPv4 address`}},
		{name: "bad rp_filter", mutate: func(c *Config) { c.RPFilter = map[string]int{"enp0s8": 3, "bad/name": 1} }, want: []string{
			`rp_filter.bad/name: "bad/name" is not an interface name`, "rp_filter.enp0s8: rp_filter 3 is not 0, 1 or 2"}},
		{name: "negative interval", mutate: func(c *Config) { c.ReconcileEvery = -1 }, want: []string{"reconcile_every is negative"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := labConfig()
			tc.mutate(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected problems:\n%v", err)
				}
				return
			}
			ps, ok := err.(conf.Problems)
			if !ok {
				t.Fatalf("got %v, want problems", err)
			}
			text := ps.Error()
			at := 0
			for _, w := range tc.want {
				i := strings.Index(text[at:], w)
				if i < 0 {
					t.Fatalf("problems lack %q (in order):\n%s", w, text)
				}
				at += i
			}
		})
	}
}
