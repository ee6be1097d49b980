package web

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Long work started from the UI or the API (a mirror sync or index, a
// bundle import) runs as a job: on a context of the server, not of the
// request, so closing the browser tab or dropping the HTTP connection does
// not stop it. Its page lists the jobs at the top with their progress and
// a cancel button; GET /api/v1/jobs lists them for scripts.

// Job is one job as the pages and GET /api/v1/jobs show it.
type Job struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"` // "mirror sync" | "bundle import"
	What    string    `json:"what"` // the repos, the bundle's path
	By      string    `json:"by"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	// State is running, ok, failed or canceled.
	State string `json:"state"`
	// Progress is the latest snapshot: per repo (api.Progress) for a sync,
	// the importer's for a bundle.
	Progress any `json:"progress,omitempty"`
	// Summary is one line of the outcome; Result the whole of it.
	Summary string `json:"summary,omitempty"`
	Result  any    `json:"result,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Running reports whether the job has not ended.
func (j Job) Running() bool { return j.State == "running" }

// Jobs is the job table. One table may serve several web instances in
// turn (NewJobs with the server's context), so that a reload that
// rebuilds web leaves running jobs alone; a web instance without one
// makes its own, whose jobs end with its Run.
type Jobs struct {
	mu     sync.Mutex
	ctx    context.Context
	seq    int
	jobs   []*jobRec
	wg     sync.WaitGroup
	onDone func(Job) // the audit entry at the end
}

type jobRec struct {
	Job
	cancel context.CancelFunc
}

// jobsKept bounds the table: the running jobs and the last finished ones.
const jobsKept = 20

// NewJobs returns a job table whose jobs run until ctx ends (or each is
// cancelled). A nil ctx: jobs wait for bind (web's Run).
func NewJobs(ctx context.Context) *Jobs { return &Jobs{ctx: ctx} }

func (t *Jobs) bind(ctx context.Context) {
	t.mu.Lock()
	t.ctx = ctx
	t.mu.Unlock()
}

var errNotServing = errors.New("the server is not serving yet (or is stopping): try again in a moment")

// start runs fn as a job of kind on what and returns its id at once.
// fn gets the job's context and a progress func that replaces the job's
// snapshot; it returns the result, a one-line summary and an error.
func (t *Jobs) start(kind, what, by string, now time.Time, fn func(ctx context.Context, progress func(any)) (any, string, error)) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx == nil || t.ctx.Err() != nil {
		return "", errNotServing
	}
	t.seq++
	ctx, cancel := context.WithCancel(t.ctx)
	j := &jobRec{Job: Job{ID: strconv.Itoa(t.seq), Kind: kind, What: what, By: by, Started: now, State: "running"}, cancel: cancel}
	t.jobs = append(t.jobs, j)
	t.trim()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer cancel()
		res, summary, err := fn(ctx, func(p any) {
			t.mu.Lock()
			j.Progress = p
			t.mu.Unlock()
		})
		t.mu.Lock()
		j.Ended, j.Result, j.Summary = time.Now(), res, summary
		switch {
		case err != nil && ctx.Err() != nil:
			j.State, j.Error = "canceled", err.Error()
		case err != nil:
			j.State, j.Error = "failed", err.Error()
		default:
			j.State = "ok"
		}
		done, onDone := j.Job, t.onDone
		t.mu.Unlock()
		if onDone != nil {
			onDone(done)
		}
	}()
	return j.ID, nil
}

// trim drops the oldest finished jobs past jobsKept.
func (t *Jobs) trim() {
	for len(t.jobs) > jobsKept {
		i := slices.IndexFunc(t.jobs, func(j *jobRec) bool { return !j.Running() })
		if i < 0 {
			return
		}
		t.jobs = slices.Delete(t.jobs, i, i+1)
	}
}

// list returns the jobs of kind ("" = every kind), newest first.
func (t *Jobs) list(kind string) []Job {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Job
	for i := len(t.jobs) - 1; i >= 0; i-- {
		if kind == "" || t.jobs[i].Kind == kind {
			out = append(out, t.jobs[i].Job)
		}
	}
	return out
}

func (t *Jobs) get(id string) (Job, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, j := range t.jobs {
		if j.ID == id {
			return j.Job, true
		}
	}
	return Job{}, false
}

// cancel stops a running job; false when there is no such job running.
func (t *Jobs) cancel(id string) (Job, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, j := range t.jobs {
		if j.ID == id && j.Running() {
			j.cancel()
			return j.Job, true
		}
	}
	return Job{}, false
}

// wait waits for every job to end, at most d.
func (t *Jobs) wait(d time.Duration) {
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// jobAudit writes a job's end to the audit log beside the request that
// started it.
func (s *Server) jobAudit(j Job) {
	res := "ok"
	if j.Summary != "" {
		res += ": " + j.Summary
	}
	if j.State != "ok" {
		res = j.State + ": " + j.Error
	}
	s.auth.record(AuditEntry{Time: s.now(), Who: j.By, From: "job " + j.ID, Action: j.Kind + " finished", Detail: j.What, Result: res})
	s.log.Info("job finished", "job", j.ID, "kind", j.Kind, "what", j.What, "state", j.State, "summary", j.Summary, "err", j.Error,
		"took", fmt.Sprint(j.Ended.Sub(j.Started).Round(time.Millisecond)))
}
