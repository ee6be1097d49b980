package conf

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestParsePrefix(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{in: "192.168.10.0/24", want: "192.168.10.0/24"},
		{in: "10.0.0.1", want: "10.0.0.1/32"},
		{in: "::1", want: "::1/128"},
		{in: "fd00::/8", want: "fd00::/8"},
		{in: "192.168.10.1/24", err: "did you mean 192.168.10.0/24"},
		{in: "192.168.10.0/33", err: "out of range"},
		{in: "lab", err: "unable to parse IP"},
		{in: "", err: "unable to parse IP"},
	}
	for _, tc := range cases {
		got, err := ParsePrefix(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePrefix(%q) err = %v, want %q", tc.in, err, tc.err)
			}
		case err != nil || got.String() != tc.want:
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestValidListen(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{":53", true}, {"0.0.0.0:53", true}, {"127.0.0.1:0", true}, {"[::1]:53", true},
		{"53", false}, {"localhost:53", false}, {"127.0.0.1:65536", false}, {"127.0.0.1:dns", false},
	}
	for _, tc := range cases {
		if err := ValidListen(tc.in); (err == nil) != tc.ok {
			t.Errorf("ValidListen(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestTLSAndDuration(t *testing.T) {
	cases := []struct {
		yaml string
		want TLS
		err  string
	}{
		{yaml: "auto", want: TLS{Mode: TLSAuto}},
		{yaml: "off", want: TLS{Mode: TLSOff}},
		{yaml: "false", want: TLS{Mode: TLSOff}},
		{yaml: "{cert: a.pem, key: b.pem}", want: TLS{Mode: TLSFiles, Cert: "a.pem", Key: "b.pem"}},
		{yaml: "on", err: "tls must be auto, off or"},
		{yaml: "[a]", err: "tls must be auto, off or"},
	}
	for _, tc := range cases {
		var got TLS
		err := yaml.Unmarshal([]byte(tc.yaml), &got)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("tls %q: err = %v, want %q", tc.yaml, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("tls %q = %+v, %v; want %+v", tc.yaml, got, err, tc.want)
		}
	}

	var d struct {
		D Duration `yaml:"d"`
	}
	if err := yaml.Unmarshal([]byte("d: 1h30m"), &d); err != nil || d.D.D().Minutes() != 90 {
		t.Errorf("1h30m = %v, %v", d.D, err)
	}
	if err := yaml.Unmarshal([]byte("d: 15"), &d); err == nil || !strings.Contains(err.Error(), "write it like 30s") {
		t.Errorf("bare number: err = %v", err)
	}
}

func TestProblemsNest(t *testing.T) {
	var inner Problems
	inner.Add("listen[0]", "hint", "bad %s", "x")
	inner.Add("", "", "whole section")
	var outer Problems
	outer.Nest("dns", inner.Err())
	outer.Nest("ntp", nil)
	if len(outer) != 2 || outer[0].Path != "dns.listen[0]" || outer[1].Path != "dns" {
		t.Fatalf("nested = %+v", outer)
	}
	if got := outer.Error(); !strings.Contains(got, "dns.listen[0]: bad x (hint)") {
		t.Errorf("Error() = %q", got)
	}
	if (Problems{}).Err() != nil {
		t.Error("empty Problems is an error")
	}
}
