package web

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Token scopes: admin may do what the admin's session may; read may only
// look (GET and HEAD), for Prometheus, dashboards and `airgapd status`.
const (
	ScopeAdmin = "admin"
	ScopeRead  = "read"
)

// maxTokenLife bounds expires_in: a token that outlives this is one
// nobody remembers making.
const maxTokenLife = 5 * 365 * 24 * time.Hour

// newToken creates an API token named name of scope ("" = admin),
// expiring after ttl (0 = never), and returns it; only its hash is kept.
func (a *authState) newToken(name, scope string, ttl time.Duration) (TokenInfo, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 || strings.ContainsAny(name, "\r\n\t") {
		return TokenInfo{}, "", errors.New("give the token a name of 1 to 64 characters, e.g. prometheus or ci")
	}
	if scope == "" {
		scope = ScopeAdmin
	}
	if scope != ScopeAdmin && scope != ScopeRead {
		return TokenInfo{}, "", fmt.Errorf("scope %q: give admin (may change things) or read (GET only)", scope)
	}
	if ttl < 0 || ttl > maxTokenLife {
		return TokenInfo{}, "", errors.New("expires_in must be between 0 (never) and 5 years, e.g. 720h")
	}
	id := randomHex(4)
	tok := "agd_" + id + "_" + randomHex(24)
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.data.Tokens {
		if t.Name == name {
			return TokenInfo{}, "", fmt.Errorf("a token named %q exists; revoke it first or pick another name", name)
		}
	}
	rec := tokenRec{ID: id, Name: name, Hash: sha256Hex(tok), Created: a.now()}
	if scope == ScopeRead {
		rec.Scope = ScopeRead
	}
	if ttl > 0 {
		rec.Expires = rec.Created.Add(ttl).Truncate(time.Second)
	}
	a.data.Tokens = append(a.data.Tokens, rec)
	if err := a.save(); err != nil {
		a.data.Tokens = a.data.Tokens[:len(a.data.Tokens)-1]
		return TokenInfo{}, "", err
	}
	return rec.info(), tok, nil
}

// parseTokenTTL reads expires_in: a Go duration (720h), or days (30d).
func parseTokenTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err == nil && fmt.Sprint(n) == d {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	ttl, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("expires_in %q: give a duration like 720h or 30d", s)
	}
	return ttl, nil
}

func (t tokenRec) info() TokenInfo {
	scope := t.Scope
	if scope == "" {
		scope = ScopeAdmin
	}
	return TokenInfo{ID: t.ID, Name: t.Name, Created: t.Created, LastUsed: t.LastUsed, Scope: scope, Expires: t.Expires}
}

func (a *authState) tokens() []TokenInfo {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []TokenInfo{}
	for _, t := range a.data.Tokens {
		out = append(out, t.info())
	}
	return out
}

func (a *authState) revokeToken(id string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, t := range a.data.Tokens {
		if t.ID == id {
			a.data.Tokens = slices.Delete(a.data.Tokens, i, i+1)
			a.save()
			return t.Name, true
		}
	}
	return "", false
}

// checkToken finds the token tok, unless it has expired; it records when
// it was last used (in memory; saved with the next change).
func (a *authState) checkToken(tok string) (TokenInfo, bool) {
	h := sha256Hex(tok)
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	for i, t := range a.data.Tokens {
		if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(h)) == 1 {
			if !t.Expires.IsZero() && !now.Before(t.Expires) {
				return TokenInfo{}, false
			}
			a.data.Tokens[i].LastUsed = now
			return a.data.Tokens[i].info(), true
		}
	}
	return TokenInfo{}, false
}

func valueOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
