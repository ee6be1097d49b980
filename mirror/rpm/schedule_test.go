package rpm

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airgapd/airgapd/internal/conf"
)

func TestScheduleNext(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	started := at("2026-11-20 12:00")
	tests := []struct {
		name  string
		sched schedule
		last  time.Time
		want  time.Time
	}{
		{"never", schedule{}, at("2026-11-20 11:00"), time.Time{}},
		{"every: never synced is due at start", schedule{every: 6 * time.Hour}, time.Time{}, started},
		{"every: after the last sync began", schedule{every: 6 * time.Hour}, at("2026-11-20 11:00"), at("2026-11-20 17:00")},
		{"every: long ago is due at once", schedule{every: time.Hour}, at("2026-11-01 00:00"), at("2026-11-01 01:00")},
		{"daily: later the same day", schedule{daily: true, hour: 23, minute: 30}, at("2026-11-20 02:00"), at("2026-11-20 23:30")},
		{"daily: the next day", schedule{daily: true, hour: 2, minute: 30}, at("2026-11-20 02:30"), at("2026-11-21 02:30")},
		{"daily: a missed night is made up", schedule{daily: true, hour: 2, minute: 30}, at("2026-11-18 03:00"), at("2026-11-19 02:30")},
		{"daily: never synced waits for the time", schedule{daily: true, hour: 2, minute: 30}, time.Time{}, at("2026-11-21 02:30")},
	}
	for _, tt := range tests {
		if got := tt.sched.next(tt.last, started); !got.Equal(tt.want) {
			t.Errorf("%s: next = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestScheduleOfAndValidate(t *testing.T) {
	d := func(s string) *conf.Duration {
		v, _ := time.ParseDuration(s)
		c := conf.Duration(v)
		return &c
	}
	const remote, local = "https://dl.example.org/el9/", "http://127.0.0.1:8080/el9/"
	tests := []struct {
		name      string
		every, at string // mirror level
		repo      Repo
		want      string // the repo's schedule
		wantErr   string
	}{
		{"none", "", "", Repo{BaseURL: remote}, "", ""},
		{"mirror every", "6h", "", Repo{BaseURL: remote}, "every 6h0m0s", ""},
		{"mirror daily", "", "02:30", Repo{BaseURL: remote}, "daily at 02:30", ""},
		{"repo overrides", "6h", "", Repo{BaseURL: remote, SyncAt: "23:05"}, "daily at 23:05", ""},
		{"repo turns it off", "6h", "", Repo{BaseURL: remote, SyncEvery: d("0s")}, "", ""},
		{"loopback may be fast", "", "", Repo{BaseURL: local, SyncEvery: d("1s")}, "every 1s", ""},
		{"remote may not", "", "", Repo{BaseURL: remote, SyncEvery: d("10s")}, "", "repos[0].sync_every: repo \"r\" would sync every 10s"},
		{"mirror level, remote", "30s", "", Repo{BaseURL: remote}, "", "sync_every: repo \"r\" would sync every 30s"},
		{"both", "6h", "02:00", Repo{BaseURL: remote}, "", "both sync_every and sync_at"},
		{"bad time", "", "2:30", Repo{BaseURL: remote}, "", `sync_at: "2:30" is not a time of day`},
		{"bad time 2", "", "", Repo{BaseURL: remote, SyncAt: "24:00"}, "", `repos[0].sync_at: "24:00" is not a time of day`},
		{"negative", "-1h", "", Repo{BaseURL: remote}, "", "sync_every is negative"},
		{"keep", "", "", Repo{BaseURL: remote, Keep: 2}, "", ""},
		{"keep negative", "", "", Repo{BaseURL: remote, Keep: -1}, "", "keep is -1"},
		{"gpgcheck without key", "", "", Repo{BaseURL: remote, GPGCheck: true}, "", "gpgcheck: true without gpgkey"},
		{"gpgkey without gpgcheck", "", "", Repo{BaseURL: remote, GPGKey: "RPM-GPG-KEY"}, "", "gpgkey is set but gpgcheck is not"},
		{"gpgkey URL", "", "", Repo{BaseURL: remote, GPGCheck: true, GPGKey: "RPM-GPG-KEY https://keys.example.org/k.asc"}, "", ""},
		{"gpgkey relative, mirrorlist", "", "", Repo{Mirrorlist: "https://mirrors.example.org/list?repo=el9", GPGCheck: true, GPGKey: "RPM-GPG-KEY"}, "", ""},
		{"gpgkey missing file", "", "", Repo{BaseURL: remote, GPGCheck: true, GPGKey: "/nonexistent/KEY"}, "", "repos[0].gpgkey"},
		{"gpgkey ftp", "", "", Repo{BaseURL: remote, GPGCheck: true, GPGKey: "ftp://x/KEY"}, "", "neither a key file nor an http(s) URL"},
		{"local repo", "", "", Repo{Path: "/srv/rpms", Keep: 1}, "", "apply to mirrored repos"},
	}
	for _, tt := range tests {
		cfg := DefaultConfig()
		cfg.SyncAt = tt.at
		if tt.every != "" {
			cfg.SyncEvery = *d(tt.every)
		}
		tt.repo.Name = "r"
		cfg.Repos = []Repo{tt.repo}
		err := cfg.Validate()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.wantErr)
		}
		if tt.wantErr == "" {
			if got := cfg.scheduleOf(tt.repo).String(); got != tt.want {
				t.Errorf("%s: schedule %q, want %q", tt.name, got, tt.want)
			}
		}
	}
}

// testClock is the mirror's clock in a schedule test: the test moves it
// on instead of waiting for the schedule's time to come.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestScheduleLoop runs the mirror's Run with sync_every 1s against a
// loopback upstream: it syncs without being asked, shows the next sync in
// Status, and picks up a new package on a later tick (the clock moved on a
// second, not waited for).
func TestScheduleLoop(t *testing.T) {
	up := httptest.NewServer(newFakeRepo(map[string][]byte{"a": []byte("aaaa")}, ""))
	defer up.Close()
	m := newTestMirror(t, up.URL+"/")
	clock := &testClock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.Local)}
	m.deps.Now = clock.now
	cfg := m.Config()
	cfg.Repos[0].SyncEvery = func() *conf.Duration { d := conf.Duration(time.Second); return &d }()
	if err := m.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitFor := func(what string, ok func(RepoStatus) bool) RepoStatus {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			st := m.Status().Repos[0]
			if ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 15s; status %+v", what, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	st := waitFor("first scheduled sync", func(s RepoStatus) bool { return s.LastResult == "ok" && s.Packages == 1 })
	if st.Schedule != "every 1s" || st.NextSync.IsZero() || st.NextSync.Sub(st.LastSync) != time.Second {
		t.Errorf("status schedule %q, next %v, last %v", st.Schedule, st.NextSync, st.LastSync)
	}
	up.Config.Handler = newFakeRepo(map[string][]byte{"a": []byte("aaaa"), "b": []byte("bbbb")}, "")
	clock.advance(time.Second)
	m.sched.poke() // the loop sleeps on the real clock: tell it the time moved
	waitFor("the new package on a later tick", func(s RepoStatus) bool { return s.Packages == 2 })
}
