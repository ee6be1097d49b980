package web

import (
	"strings"
	"testing"
	"time"
)

// TestTokenScopesAndExpiry: a read token reads, an admin token may also
// change things, an expired token is refused, and bad scopes or lifetimes
// are refused with what to give.
func TestTokenScopesAndExpiry(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	a, err := newAuthState(t.TempDir(), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	_, readTok, err := a.newToken("grafana", ScopeRead, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, shortTok, err := a.newToken("ci", "", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if info, ok := a.checkToken(readTok); !ok || info.Scope != ScopeRead {
		t.Errorf("read token: %+v %v", info, ok)
	}
	if info, ok := a.checkToken(shortTok); !ok || info.Scope != ScopeAdmin || !info.Expires.Equal(now.Add(24*time.Hour)) {
		t.Errorf("day token: %+v %v", info, ok)
	}
	now = now.Add(24 * time.Hour)
	if _, ok := a.checkToken(shortTok); ok {
		t.Error("a token past its expiry is accepted")
	}
	for _, tc := range []struct {
		scope, ttl, want string
	}{
		{"root", "", "give admin"},
		{"", "1000000h", "between 0 (never) and 5 years"},
		{"", "soon", "like 720h or 30d"},
	} {
		ttl, err := parseTokenTTL(tc.ttl)
		if err == nil {
			_, _, err = a.newToken("x-"+tc.scope+tc.ttl, tc.scope, ttl)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("scope %q, expires_in %q: %v, want %q", tc.scope, tc.ttl, err, tc.want)
		}
	}
	if d, err := parseTokenTTL("30d"); err != nil || d != 30*24*time.Hour {
		t.Errorf("30d = %v %v", d, err)
	}
}
