package rpm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/airgapd/airgapd/internal/conf"
	"github.com/airgapd/airgapd/mirror"
)

// schedule is when the server syncs a mirrored repo on its own: every
// `every` after the last sync began, or daily at hour:minute local time.
// The zero schedule never syncs.
type schedule struct {
	every        time.Duration
	daily        bool
	hour, minute int
}

func (s schedule) String() string {
	switch {
	case s.daily:
		return fmt.Sprintf("daily at %02d:%02d", s.hour, s.minute)
	case s.every > 0:
		return "every " + s.every.String()
	}
	return ""
}

// minSyncEvery is the shortest sync_every for an upstream that is not on
// this host: a public mirror is asked for repomd.xml at most once a minute.
// Loopback upstreams (a staging repo on the admin host, tests) may go down
// to a second.
const minSyncEvery = time.Minute

// parseSyncAt reads "HH:MM" (24-hour, local time).
func parseSyncAt(s string) (hour, minute int, err error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, 0, fmt.Errorf("%q is not a time of day", s)
	}
	return t.Hour(), t.Minute(), nil
}

// scheduleOf is repo r's schedule: its own sync_every / sync_at when it
// sets either, else the mirror's. The config is valid.
func (c Config) scheduleOf(r Repo) schedule {
	if !r.Mirrored() {
		return schedule{}
	}
	every, at := c.SyncEvery.D(), c.SyncAt
	if r.SyncEvery != nil || r.SyncAt != "" {
		every, at = 0, r.SyncAt
		if r.SyncEvery != nil {
			every = r.SyncEvery.D()
		}
	}
	if at != "" {
		h, m, err := parseSyncAt(at)
		if err != nil {
			return schedule{}
		}
		return schedule{daily: true, hour: h, minute: m}
	}
	return schedule{every: max(every, 0)}
}

// next is when the next sync is due, given when the last one began (zero:
// never) and when the schedule started (the server's start). With every,
// a repo never synced is due at once, and a failed sync is retried every
// later; daily, the first HH:MM after the last sync (or after the start),
// so a night missed while the server was down is made up when it returns.
// The zero time means never.
func (s schedule) next(last, started time.Time) time.Time {
	switch {
	case s.daily:
		ref := last
		if ref.IsZero() {
			ref = started
		}
		ref = ref.Local()
		t := time.Date(ref.Year(), ref.Month(), ref.Day(), s.hour, s.minute, 0, 0, time.Local)
		for !t.After(ref) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, s.hour, s.minute, 0, 0, time.Local)
		}
		return t
	case s.every > 0:
		if last.IsZero() {
			return started
		}
		return last.Add(s.every)
	}
	return time.Time{}
}

// checkSchedule validates the mirror-level sync_every and sync_at.
func (c Config) checkSchedule(ps *conf.Problems) {
	checkScheduleKeys(ps, "", c.SyncEvery, c.SyncAt)
}

func checkScheduleKeys(ps *conf.Problems, p string, every conf.Duration, at string) {
	if every < 0 {
		ps.Add(conf.Join(p, "sync_every"), "use a duration like 6h, or 0 to sync only when asked", "sync_every is negative")
	}
	if at != "" {
		if _, _, err := parseSyncAt(at); err != nil {
			ps.Add(conf.Join(p, "sync_at"), `write a local time of day like "02:30" (quoted)`, "%v", err)
		}
		if every > 0 {
			ps.Add(p, "keep one: sync_at for a daily sync at that time, or sync_every for an interval", "both sync_every and sync_at are set")
		}
	}
}

// checkRepoPolicy validates a repo's keep, gpgcheck, gpgkey, sync_every
// and sync_at.
func (c Config) checkRepoPolicy(ps *conf.Problems, p string, r Repo) {
	if !r.Mirrored() && (r.Keep != 0 || r.GPGCheck || r.GPGKey != "" || r.SyncEvery != nil || r.SyncAt != "") {
		ps.Add(p, "keep, gpgcheck, gpgkey, sync_every and sync_at apply to mirrored repos (baseurl:) only", "repo %q is a local folder", r.Name)
		return
	}
	if r.Keep < 0 {
		ps.Add(conf.Join(p, "keep"), "use 1 for the newest version of each package only (reposync --newest-only), N for N versions, 0 for all", "keep is %d", r.Keep)
	}
	switch {
	case r.GPGCheck && strings.TrimSpace(r.GPGKey) == "":
		ps.Add(conf.Join(p, "gpgkey"), "give the armored public key the packages are signed with: a file or a URL (relative to baseurl, or absolute)", "gpgcheck: true without gpgkey")
	case !r.GPGCheck && r.GPGKey != "":
		ps.Add(conf.Join(p, "gpgcheck"), "set gpgcheck: true to verify packages against gpgkey (or drop gpgkey)", "gpgkey is set but gpgcheck is not")
	}
	base := r.BaseURL
	if base == "" {
		base = "http://upstream.invalid/" // mirrorlist or metalink: the base is known at sync time
	}
	for _, spec := range strings.Fields(r.GPGKey) {
		file, _, err := keySource(spec, base)
		switch {
		case err != nil:
			ps.Add(conf.Join(p, "gpgkey"), "write /path/to/KEY, file:///path/to/KEY or a URL", "%v", err)
		case file != "":
			conf.CheckFile(ps, conf.Join(p, "gpgkey"), file)
		}
	}
	var every conf.Duration
	if r.SyncEvery != nil {
		every = *r.SyncEvery
	}
	checkScheduleKeys(ps, p, every, r.SyncAt)
	if s := c.scheduleOf(r); s.every > 0 && s.every < minSyncEvery && !loopbackURL(r.BaseURL) {
		path := conf.Join(p, "sync_every")
		if r.SyncEvery == nil {
			path = "sync_every"
		}
		ps.Add(path, "use 1m or more: public mirrors ask not to be polled more often (only a loopback upstream may be synced every few seconds)", "repo %q would sync every %s", r.Name, s.every)
	}
}

// loopbackURL reports whether u's host is this host's loopback.
func loopbackURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	h := p.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// scheduler runs the scheduled syncs: one goroutine (scheduleLoop) decides,
// one goroutine per due repo syncs it.
type scheduler struct {
	mu       sync.Mutex
	started  time.Time            // when the loop began; zero when not running
	attempts map[string]time.Time // the loop's last start of each repo's sync
	wake     chan struct{}        // a reload: read the schedule again
}

func newScheduler() *scheduler {
	return &scheduler{attempts: map[string]time.Time{}, wake: make(chan struct{}, 1)}
}

// poke makes the loop read the config again (after a reload).
func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// nextSync is when repo r is next synced on schedule; zero when it is not
// scheduled, or when the server's loop is not running.
func (m *Mirror) nextSync(cfg Config, r Repo) time.Time {
	s := cfg.scheduleOf(r)
	m.sched.mu.Lock()
	started, attempt := m.sched.started, m.sched.attempts[r.Name]
	m.sched.mu.Unlock()
	if started.IsZero() {
		return time.Time{}
	}
	last := m.book.State(r.Name).LastSync
	if attempt.After(last) {
		last = attempt // a sync under way, or one that could not start
	}
	return s.next(last, started)
}

// scheduleLoop syncs each mirrored repo when its schedule says, until ctx
// ends; the syncs it started end with ctx too. A sync already under way
// (`airgapd mirror sync`, the UI) holds the repo's lock: the scheduled one
// is skipped, not doubled. A failed sync is logged, counted in
// airgapd_mirror_scheduled_syncs_total{result="failed"} and tried again at
// the next due time.
func (m *Mirror) scheduleLoop(ctx context.Context) {
	m.sched.mu.Lock()
	m.sched.started = m.now()
	m.sched.mu.Unlock()
	defer func() {
		m.sched.mu.Lock()
		m.sched.started = time.Time{}
		m.sched.mu.Unlock()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	running := map[string]bool{}
	done := make(chan string)
	for {
		cfg := m.Config()
		now := m.now()
		wake := now.Add(time.Hour)
		for _, r := range cfg.Repos {
			next := m.nextSync(cfg, r)
			if next.IsZero() || running[r.Name] {
				continue
			}
			if next.After(now) {
				if next.Before(wake) {
					wake = next
				}
				continue
			}
			running[r.Name] = true
			m.sched.mu.Lock()
			m.sched.attempts[r.Name] = now
			m.sched.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.scheduledSync(ctx, cfg, r)
				select {
				case done <- r.Name:
				case <-ctx.Done():
				}
			}()
		}
		t := time.NewTimer(wake.Sub(m.now()))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case name := <-done:
			delete(running, name)
		case <-m.sched.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (m *Mirror) scheduledSync(ctx context.Context, cfg Config, r Repo) {
	m.log.Debug("scheduled sync", "repo", r.Name, "schedule", cfg.scheduleOf(r).String())
	results, err := m.runRepos(ctx, cfg, []Repo{r}, nil)
	switch {
	case errors.Is(err, mirror.ErrBusy):
		m.log.Info("scheduled sync skipped: a sync of this repo is under way", "repo", r.Name)
		m.m.scheduled(r.Name, "skipped")
	case err != nil && ctx.Err() != nil:
		// Stopping.
	case err != nil:
		m.log.Error("scheduled sync failed; tried again at the next due time", "repo", r.Name, "err", err, "next", m.nextSync(m.Config(), r))
		m.m.scheduled(r.Name, "failed")
	default:
		res := Result{}
		if len(results) > 0 {
			res = results[0]
		}
		if res.UpToDate {
			m.log.Info("scheduled sync: up to date", "repo", r.Name, "revision", res.Revision)
			m.m.scheduled(r.Name, "up_to_date")
		} else {
			m.log.Info("scheduled sync published", "repo", r.Name, "revision", res.Revision, "packages", res.Packages, "fetched", res.Fetched)
			m.m.scheduled(r.Name, "ok")
		}
	}
}
