package web

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airgapd/airgapd/api"
)

type fakeHA struct{}

func (fakeHA) HASnapshot() (api.HASnapshot, error) {
	return api.HASnapshot{Role: "primary", Config: []byte("dns: {}\n"), CAKey: []byte("KEY")}, nil
}
func (fakeHA) PromoteHA(context.Context) (string, error) { return "promoted", nil }
func (fakeHA) NotifyHA(state string) (string, error)     { return state, nil }

func haStatus(role string) map[string]any {
	return map[string]any{"services": []map[string]any{{
		"name": "ha", "enabled": true, "state": role,
		"detail": map[string]any{"role": role, "peer": "https://10.200.0.11:8443", "vip": "10.200.0.10/24"},
	}}}
}

func TestStandbyBanner(t *testing.T) {
	for _, tc := range []struct {
		role   string
		banner bool
	}{{"standby", true}, {"primary", false}} {
		st := haStatus(tc.role)
		s, err := New(DefaultConfig(), Deps{Instance: fakeInstance{status: func() any { return st }}, Control: listen(t, "unix", filepath.Join(t.TempDir(), "api.sock"))})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/dns", nil)
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, principal{Name: "admin", Via: "session"}))
		w := httptest.NewRecorder()
		s.renderService(w, r, "dns", 200, "", "", nil)
		body := w.Body.String()
		if got := strings.Contains(body, `id="ha-standby"`) && strings.Contains(body, "https://10.200.0.11:8443") && strings.Contains(body, `action="/ha/promote"`); got != tc.banner {
			t.Errorf("%s: banner shown = %v, want %v", tc.role, got, tc.banner)
		}
	}
}

func TestHASnapshotOnlyForThePeerToken(t *testing.T) {
	s, err := New(DefaultConfig(), Deps{Instance: fakeInstance{status: func() any { return haStatus("primary") }}, HA: fakeHA{},
		Control: listen(t, "unix", filepath.Join(t.TempDir(), "api.sock"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		who  principal
		want int
	}{
		{principal{Name: "token:prometheus", Via: "token"}, 403},
		{principal{Name: "admin", Via: "session"}, 403},
		{principal{Name: "token:" + HAPeerToken, Via: "token"}, 200},
		{principal{Name: "root", Via: "control socket, pid 1"}, 200},
	} {
		r := httptest.NewRequest("GET", "/api/v1/ha/snapshot", nil)
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, tc.who))
		w := httptest.NewRecorder()
		s.handleHASnapshot(w, r)
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.who, w.Code, tc.want, w.Body)
			continue
		}
		if tc.want == 200 {
			var snap api.HASnapshot
			if err := json.Unmarshal(w.Body.Bytes(), &snap); err != nil || string(snap.CAKey) != "KEY" || snap.Tokens == nil {
				t.Errorf("%s: snapshot %s (%v)", tc.who, w.Body, err)
			}
		}
	}
}

func TestTokensExportImport(t *testing.T) {
	a, err := newAuthState(t.TempDir(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	primary := &Server{auth: a}
	if _, _, err := a.newToken(HAPeerToken, "", 0); err != nil {
		t.Fatal(err)
	}
	_, tok, _ := a.newToken("ci", "", 0)
	data, err := primary.ExportTokens()
	if err != nil {
		t.Fatal(err)
	}
	b, err := newAuthState(t.TempDir(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	standby := &Server{auth: b}
	if err := standby.ImportTokens(data); err != nil {
		t.Fatal(err)
	}
	if info, ok := b.checkToken(tok); !ok || info.Name != "ci" {
		t.Errorf("the primary's token on the standby: %q %v", info.Name, ok)
	}
	if err := standby.ImportTokens([]byte("nope")); err == nil {
		t.Error("import of garbage: no error")
	}
}

func TestPromoteButton(t *testing.T) {
	s, err := New(DefaultConfig(), Deps{Instance: fakeInstance{status: func() any { return haStatus("standby") }}, HA: fakeHA{},
		Control: listen(t, "unix", filepath.Join(t.TempDir(), "api.sock"))})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s.formHAPromote(w, httptest.NewRequest("POST", "/ha/promote", nil))
	if w.Code != 303 || w.Header().Get("Location") != "/?done=promoted" {
		t.Errorf("promote button: %d %s", w.Code, w.Header().Get("Location"))
	}
}
