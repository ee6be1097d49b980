package mirror

import (
	"net/http/httptest"
	"testing"
)

func TestAdvertisedBaseURL(t *testing.T) {
	for _, tt := range []struct {
		name    string
		adv     Advertised
		reqHost string
		want    string
	}{
		{"name and listen port", Advertised{Name: "admin.corp", Listen: "0.0.0.0:8081"}, "10.0.0.5:8081", "http://admin.corp:8081"},
		{"first address", Advertised{Addresses: []string{"192.0.2.1", "192.0.2.2"}, Listen: "127.0.0.1:8081"}, "x", "http://192.0.2.1:8081"},
		{"client's host and port when listen said 0", Advertised{Listen: "127.0.0.1:0"}, "127.0.0.1:40123", "http://127.0.0.1:40123"},
		{"port 80 left out", Advertised{Name: "admin", Listen: "[::]:80"}, "admin", "http://admin"},
		{"IPv6 bracketed with port", Advertised{Addresses: []string{"fd00::10"}, Listen: "[::]:8081"}, "x", "http://[fd00::10]:8081"},
		{"IPv6 bracketed without port", Advertised{Addresses: []string{"fd00::10"}, Listen: ":80"}, "x", "http://[fd00::10]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Host = tt.reqHost
			if got := tt.adv.BaseURL(r); got != tt.want {
				t.Errorf("BaseURL = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBookState(t *testing.T) {
	dir := t.TempDir()
	store := func(name string) Store { return FormatStore(dir, "test", name) }
	type state struct{ Packages int }
	if err := store("a").WriteState(state{Packages: 3}); err != nil {
		t.Fatal(err)
	}
	b := NewBook[int, state](1, store)
	if got := b.State("a").Packages; got != 3 {
		t.Fatalf("State read from state.json = %d, want 3", got)
	}
	b.SetState("a", state{Packages: 5})
	if got := b.State("a").Packages; got != 5 {
		t.Fatalf("State after SetState = %d, want 5", got)
	}
	if b.ServiceState() != "down" {
		t.Fatal("a book whose Run has not started must say down")
	}
	b.SetRunning(true)
	b.SetProgress("a", &Progress{Repo: "a", Phase: "fetch"})
	p := b.Progress("a")
	p.Phase = "changed by the caller"
	if b.Progress("a").Phase != "fetch" || b.ServiceState() != "up" {
		t.Fatalf("Progress must be a copy and the service up: %+v", b.Progress("a"))
	}
	b.SetProgress("a", nil)
	if b.Progress("a") != nil || RunSummary(0, 0) != "" || RunSummary(2, 1) != ", 2 syncing, 1 last sync failed" {
		t.Fatal("progress not cleared or summary wrong")
	}
}
