package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAptSectionProblems(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.gpg")
	os.WriteFile(key, []byte("x"), 0o644)
	tests := []struct {
		name, yaml string
		want       string // "" = valid
	}{
		{"mirrored repo", "mirror: { listen: 127.0.0.1:0 }\napt: { repos: [{ name: up, url: http://127.0.0.1:1/, suites: [jammy], keyring: " + key + " }] }\n", ""},
		{"local folder", "mirror: { listen: 127.0.0.1:0 }\napt: { repos: [{ name: site, path: " + dir + " }] }\n", ""},
		{"no mirror listener", "apt: { repos: [{ name: site, path: " + dir + " }] }\n", "apt is served at /apt/ on mirror.listen"},
		{"no keyring", "mirror: {}\napt: { repos: [{ name: up, url: http://127.0.0.1:1/, suites: [jammy] }] }\n", "apt.repos[0].keyring"},
		{"no suites", "mirror: {}\napt: { repos: [{ name: up, url: http://127.0.0.1:1/, keyring: " + key + " }] }\n", "apt.repos[0].suites"},
		{"url and path", "mirror: {}\napt: { repos: [{ name: up, url: http://127.0.0.1:1/, path: /x, suites: [a], keyring: " + key + " }] }\n", "has url and path"},
		{"bad suite", "mirror: {}\napt: { repos: [{ name: up, url: http://127.0.0.1:1/, suites: [../x], keyring: " + key + " }] }\n", "apt.repos[0].suites[0]"},
		{"keyring on a folder", "mirror: {}\napt: { repos: [{ name: site, path: /x, keyring: " + key + " }] }\n", "local folder"},
		{"unknown key", "mirror: {}\napt: { repos: [{ name: up, uri: http://x/ }] }\n", `unknown key "uri"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte("data_dir: "+dir+"/data\n"+tt.yaml))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want a problem with %q", err, tt.want)
			}
		})
	}
}
