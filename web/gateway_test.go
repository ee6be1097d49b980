package web

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestGatewayFirewalldBanner: the red firewalld banner shows only when
// firewalld runs (issue 28: it showed on every host without firewalld,
// whose status reads "not running").
func TestGatewayFirewalldBanner(t *testing.T) {
	for _, tt := range []struct {
		firewalld string
		banner    bool
	}{
		{"not running", false},
		{"", false},
		{"running (iptables backend)", true},
		{"active (nftables backend: its drops win over iptables rules)", true},
	} {
		detail := map[string]any{"mode": "plan", "ip_forward": "1", "firewalld": tt.firewalld}
		status := map[string]any{"services": []map[string]any{{"name": "gateway", "enabled": true, "state": "up", "detail": detail}}}
		s, err := New(DefaultConfig(), Deps{Instance: fakeInstance{status: func() any { return status }}, Control: listen(t, "unix", filepath.Join(t.TempDir(), "api.sock"))})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		s.renderService(w, httptest.NewRequest("GET", "/gateway", nil), "gateway", 200, "", "", nil)
		if got := strings.Contains(w.Body.String(), `id="firewalld"`); got != tt.banner {
			t.Errorf("firewalld %q: banner %v, want %v", tt.firewalld, got, tt.banner)
		}
	}
}
