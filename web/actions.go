package web

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/humanize"
)

// The service pages' actions: set the NTP time, sync a mirror repo, run
// the registry's garbage collection. Each form runs the same code as its
// API route (ntpSetTime, mirrorSync, registryGC), is audited, and shows
// its result on the page it was posted from.

// ntpSetTime is the API's and the form's `chronyc settime`.
func (s *Server) ntpSetTime(r *http.Request, to time.Time, force bool) (time.Duration, error) {
	if s.deps.NTPClock == nil {
		return 0, errNoNTP
	}
	detail := to.Format(time.RFC3339)
	if force {
		detail += " (forced)"
	}
	setAudit(r, "ntp time set", detail)
	step, err := s.deps.NTPClock.SetNTPTime(to, force)
	if err != nil {
		setAuditResult(r, "failed: "+err.Error())
		return 0, err
	}
	setAuditResult(r, "ok: stepped "+formatStep(step))
	s.log.Info("NTP served time set", "time", to, "step", step, "by", auditWho(r))
	return step, nil
}

var (
	errNoNTP      = errors.New("no NTP service here")
	errNoMirror   = errors.New("no mirror here")
	errNoRegistry = errors.New("no registry here")
)

// mirrorSync is the API's and the form's mirror sync: the named repos
// (every mirrored one when names is empty), a local repo named is indexed.
func (s *Server) mirrorSync(r *http.Request, names []string, progress func(api.Progress)) ([]api.SyncResult, error) {
	ms := s.deps.MirrorSyncer
	if ms == nil {
		return nil, errNoMirror
	}
	what := "every mirrored repo"
	if len(names) > 0 {
		what = strings.Join(names, ", ")
	}
	setAudit(r, "mirror sync", what)
	res, err := ms.SyncMirror(r.Context(), names, progress)
	if err != nil {
		setAuditResult(r, "failed: "+err.Error())
	}
	s.log.Info("mirror sync through the API or UI", "repos", names, "err", err, "by", auditWho(r))
	return res, err
}

// registryGC is the API's and the form's `airgapd registry gc [--dry-run]`.
func (s *Server) registryGC(r *http.Request, dry bool) (api.GCResult, error) {
	if s.deps.RegistryAdmin == nil {
		return api.GCResult{}, errNoRegistry
	}
	action := "registry gc"
	if dry {
		action = "registry gc dry run"
	}
	setAudit(r, action, "")
	res, err := s.deps.RegistryAdmin.RegistryGC(r.Context(), dry)
	if err != nil {
		setAuditResult(r, "failed: "+err.Error())
		return res, err
	}
	v := res
	verb := "removed"
	if dry {
		verb = "would remove"
	}
	setAuditResult(r, fmt.Sprintf("ok: %s %s, %s", verb, humanize.Count(len(v.Blobs), "blob"), humanize.Bytes(v.Bytes)))
	return res, nil
}

// registryDeleteTag is the API's and the form's tag deletion.
func (s *Server) registryDeleteTag(r *http.Request, repo, tag string) error {
	if s.deps.RegistryAdmin == nil {
		return errNoRegistry
	}
	setAudit(r, "registry tag deleted", repo+":"+tag)
	if err := s.deps.RegistryAdmin.RegistryDeleteTag(r.Context(), repo, tag); err != nil {
		setAuditResult(r, "failed: "+err.Error())
		return err
	}
	setAuditResult(r, "ok")
	s.log.Info("registry tag deleted through the API or UI", "repo", repo, "tag", tag, "by", auditWho(r))
	return nil
}

func (s *Server) formRegistryDeleteTag(w http.ResponseWriter, r *http.Request) {
	repo, tag := r.PostFormValue("repo"), r.PostFormValue("tag")
	if err := s.registryDeleteTag(r, repo, tag); err != nil {
		s.renderService(w, r, "registry", actionErrorCode(err), "", err.Error(), nil)
		return
	}
	s.renderService(w, r, "registry", http.StatusOK, fmt.Sprintf("Tag %s:%s deleted; its manifest and layers stay until garbage collection finds nothing else uses them.", repo, tag), "", nil)
}

// auditWho names the caller for the log.
func auditWho(r *http.Request) string {
	if p, ok := principalFrom(r.Context()); ok {
		return p.String()
	}
	return "local"
}

func formatStep(d time.Duration) string {
	sign := "+"
	if d < 0 {
		sign = "-"
		d = -d
	}
	return sign + d.Round(time.Millisecond).String()
}

// ntpTimeLayouts are what the set-time field takes: RFC 3339, or a local
// time as typed or as a datetime-local input sends it.
var ntpTimeLayouts = []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02T15:04"}

// parseSetTime reads the set-time field.
func parseSetTime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	for _, l := range ntpTimeLayouts {
		if t, err := time.ParseInLocation(l, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot read %q as a time: give RFC 3339 (2026-11-21T16:30:05+09:00) or this host's local time (2026-11-21 16:30:05)", v)
}

func (s *Server) formNTPSetTime(w http.ResponseWriter, r *http.Request) {
	to, err := parseSetTime(r.PostFormValue("time"))
	if err != nil {
		setAudit(r, "ntp time set", "refused")
		setAuditResult(r, "refused: "+err.Error())
		s.renderService(w, r, "ntp", http.StatusUnprocessableEntity, "", err.Error(), nil)
		return
	}
	step, err := s.ntpSetTime(r, to, r.PostFormValue("force") != "")
	if err != nil {
		s.renderService(w, r, "ntp", actionErrorCode(err), "", err.Error(), nil)
		return
	}
	flash := fmt.Sprintf("Served time set to %s; the served clock stepped %s.", to.Local().Format("2006-01-02 15:04:05 MST"), formatStep(step))
	s.renderService(w, r, "ntp", http.StatusOK, flash, "", nil)
}

// mirrorAction is the mirror page's result of a sync.
type mirrorAction struct {
	Results []api.SyncResult
}

// formMirrorSync starts the sync as a job and shows the mirror page,
// where the job is listed at the top with its progress until it ends;
// closing the page does not stop it.
func (s *Server) formMirrorSync(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	var names []string
	for _, n := range r.PostForm["repo"] {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if _, err := s.mirrorSyncJob(r, names); err != nil {
		s.renderService(w, r, "mirror", actionErrorCode(err), "", err.Error(), nil)
		return
	}
	http.Redirect(w, r, "/mirror?done=job-started", http.StatusSeeOther)
}

// registryAction is the registry page's result of a collection.
type registryAction struct {
	GC api.GCResult
}

func (s *Server) formRegistryGC(w http.ResponseWriter, r *http.Request) {
	dry := r.PostFormValue("dry_run") != ""
	res, err := s.registryGC(r, dry)
	if err != nil {
		s.renderService(w, r, "registry", actionErrorCode(err), "", err.Error(), nil)
		return
	}
	act := registryAction{GC: res}
	verb := "Garbage collection removed"
	if dry {
		verb = "Dry run: garbage collection would remove"
	}
	flash := fmt.Sprintf("%s %s (%s) and %s.", verb, humanize.Count(len(act.GC.Blobs), "blob"), humanize.Bytes(act.GC.Bytes), humanize.Count(act.GC.LayerLinks, "layer link"))
	s.renderService(w, r, "registry", http.StatusOK, flash, "", act)
}

// actionErrorCode is 404 for a service that is not here, 409 otherwise,
// as the API answers.
func actionErrorCode(err error) int {
	if errors.Is(err, errNoNTP) || errors.Is(err, errNoMirror) || errors.Is(err, errNoRegistry) || errors.Is(err, fs.ErrNotExist) {
		return http.StatusNotFound
	}
	return http.StatusConflict
}
