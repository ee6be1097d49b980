package server

import (
	"strings"
	"testing"
)

// TestPyPINeedsMirror: the index is served on mirror.listen, so the
// config says so when the mirror section is off.
func TestPyPINeedsMirror(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"data_dir: /tmp/x\npypi: {}\n", "pypi is on but the mirror section is not"},
		{"data_dir: /tmp/x\nmirror: {listen: '127.0.0.1:0'}\npypi: {}\n", ""},
		{"data_dir: /tmp/x\nmirror: {listen: '127.0.0.1:0'}\npypi: {enabled: false}\n", ""},
		{"data_dir: /tmp/x\nmirror: {listen: '127.0.0.1:0'}\npypi: {packages: ['a>=1'], python_versions: ['3.11']}\n", "requirements or packages are listed but no upstream"},
	} {
		c, err := Parse("t.yaml", []byte(tc.yaml))
		if err == nil {
			err = c.Validate()
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
