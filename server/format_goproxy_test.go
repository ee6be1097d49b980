package server

import (
	"strings"
	"testing"
)

func TestGoProxySection(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string // want "" means valid
	}{
		{"with the mirror", "data_dir: /tmp/x\nmirror: {listen: '127.0.0.1:0'}\ngoproxy:\n  upstream: http://127.0.0.1:1/\n  modules: [lab.test/a@v1.0.0]\n", ""},
		{"empty section", "data_dir: /tmp/x\nmirror: {listen: '127.0.0.1:0'}\ngoproxy:\n", ""},
		{"without the mirror", "data_dir: /tmp/x\ngoproxy: {upstream: 'http://127.0.0.1:1/'}\n", "goproxy is served at /goproxy/ on mirror.listen"},
		{"bad module", "data_dir: /tmp/x\nmirror: {listen: '127.0.0.1:0'}\ngoproxy: {upstream: 'http://127.0.0.1:1/', modules: [nope]}\n", "goproxy.modules[0]"},
		{"unknown key", "data_dir: /tmp/x\nmirror: {listen: '127.0.0.1:0'}\ngoproxy: {upstreams: []}\n", "upstreams"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("test.yaml", []byte(tc.yaml))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !cfg.Enabled("goproxy") || cfg.GoProxy.Parallel != 4 {
					t.Fatalf("goproxy section %+v", cfg.GoProxy)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
