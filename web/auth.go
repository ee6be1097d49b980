package web

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/airgapd/airgapd/internal/atomicfile"
	"github.com/airgapd/airgapd/internal/lockout"
	"golang.org/x/crypto/bcrypt"
)

// One local administrator signs in with the password whose bcrypt hash is
// web.admin.password_hash; scripts use API tokens. Sessions and tokens are
// kept only as SHA-256 hashes, in data_dir/web/auth.json (0600), so they
// survive a restart and the rebuild of web on a reload; the audit log is
// data_dir/web/audit.log, one JSON object per line.

const (
	sessionCookie = "airgapd_session"
	sessionTTL    = 12 * time.Hour
	// loginFailures failed logins from one address within loginWindow
	// lock that address out until the window has passed.
	loginFailures = 5
	loginWindow   = 5 * time.Minute
	auditKeep     = 500 // entries kept in memory for the UI
)

// principal is who makes a request.
type principal struct {
	Name     string // admin, token:NAME, root
	Via      string // session, token, control socket
	ReadOnly bool   // a token of scope read
}

func (p principal) String() string { return p.Name + " (" + p.Via + ")" }

type principalKey struct{}

func principalFrom(ctx context.Context) (principal, bool) {
	p, ok := ctx.Value(principalKey{}).(principal)
	return p, ok
}

type sessionRec struct {
	User    string    `json:"user"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// tokenRec is one API token; the token itself is shown once at creation.
type tokenRec struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Hash     string    `json:"hash"` // sha256 of the token, hex
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
	Scope    string    `json:"scope,omitempty"`  // "" or admin: everything; read: GET and HEAD only
	Expires  time.Time `json:"expires,omitzero"` // zero: never
}

// TokenInfo is an API token as the API lists it (never the token).
type TokenInfo struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
	Scope    string    `json:"scope"` // admin or read
	Expires  time.Time `json:"expires,omitzero"`
}

// AuditEntry is one change made through the UI or the API.
type AuditEntry struct {
	Time   time.Time `json:"time"`
	Who    string    `json:"who"`
	From   string    `json:"from"` // client address
	Action string    `json:"action"`
	Detail string    `json:"detail,omitempty"`
	Result string    `json:"result"` // ok, or the error
	// explicit: the handler named the action (setAudit), so it is kept
	// even when refused with 401 or 404, unlike probes and typos.
	explicit bool
}

type authData struct {
	Sessions map[string]sessionRec `json:"sessions"` // sha256(id) hex → session
	Tokens   []tokenRec            `json:"tokens"`
}

// authState is one web instance's sessions, tokens, login limits and audit
// log, loaded from and saved to dir.
type authState struct {
	dir string // "" = memory only
	now func() time.Time

	mu         sync.Mutex
	data       authData
	setupToken string // one-time setup link's secret; "" when none
	// claimedSetup is the link a setup under way used up (given back if
	// saving the password fails).
	claimedSetup string
	runtimeHash  string           // a password set with no config file to hold it
	failures     *lockout.Lockout // failed logins per address
	audit        []AuditEntry
	auditRead    int64 // bytes of audit.log already in audit (catchUp)
}

func newAuthState(dir string, now func() time.Time) (*authState, error) {
	a := &authState{dir: dir, now: now, data: authData{Sessions: map[string]sessionRec{}}, failures: lockout.New(loginFailures, loginWindow, now)}
	if dir == "" {
		return a, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("web state folder: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "auth.json")); err == nil {
		if err := json.Unmarshal(b, &a.data); err != nil {
			return nil, fmt.Errorf("%s is damaged (move it aside to start with no sessions or tokens): %w", filepath.Join(dir, "auth.json"), err)
		}
		if a.data.Sessions == nil {
			a.data.Sessions = map[string]sessionRec{}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	a.catchUp()
	return a, nil
}

// save writes auth.json atomically. Call with mu held.
func (a *authState) save() error {
	if a.dir == "" {
		return nil
	}
	now := a.now()
	for k, s := range a.data.Sessions {
		if now.After(s.Expires) {
			delete(a.data.Sessions, k)
		}
	}
	b, err := json.MarshalIndent(a.data, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(a.dir, "auth.json"), b, 0o600)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// newSession stores a session and returns its id (the cookie value).
func (a *authState) newSession(user string) (string, error) {
	id := randomHex(32)
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.data.Sessions[sha256Hex(id)] = sessionRec{User: user, Created: now, Expires: now.Add(sessionTTL)}
	return id, a.save()
}

func (a *authState) session(id string) (sessionRec, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.data.Sessions[sha256Hex(id)]
	if !ok || a.now().After(s.Expires) {
		return sessionRec{}, false
	}
	return s, true
}

func (a *authState) endSession(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.data.Sessions, sha256Hex(id))
	a.save()
}

// endAllSessions signs everyone out (after a password change).
func (a *authState) endAllSessions() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.data.Sessions)
	a.save()
}

// loginAllowed reports whether addr may try a password now, and if not,
// when it may again.
func (a *authState) loginAllowed(addr string) (bool, time.Duration) {
	return a.failures.Allowed(addr)
}

func (a *authState) loginFailed(addr string) { a.failures.Failed(addr) }

func (a *authState) loginSucceeded(addr string) { a.failures.Succeeded(addr) }

// record appends to the audit log.
func (a *authState) record(e AuditEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.catchUp() // what others wrote comes first, in the file's order
	a.audit = append(a.audit, e)
	if len(a.audit) > auditKeep {
		a.audit = slices.Clone(a.audit[len(a.audit)-auditKeep:])
	}
	if a.dir == "" {
		return
	}
	if end, err := appendAudit(a.dir, e); err == nil {
		a.auditRead = end // up to and with this instance's own line
	}
}

// AppendAudit adds an entry to the audit log in dataDir for a change made
// outside web (a SIGHUP after a hand edit, a server-side job); the Audit
// page and GET /api/v1/audit show it with the rest.
func AppendAudit(dataDir string, e AuditEntry) error {
	dir := filepath.Join(dataDir, "web")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	_, err := appendAudit(dir, e)
	return err
}

// appendAudit writes one JSON line at the end of dir/audit.log and returns
// where the file ends after it.
func appendAudit(dir string, e AuditEntry) (int64, error) {
	f, err := os.OpenFile(filepath.Join(dir, "audit.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	b, _ := json.Marshal(e)
	if _, err := f.Write(append(b, '\n')); err != nil {
		return 0, fmt.Errorf("audit log: %w", err)
	}
	return f.Seek(0, io.SeekCurrent)
}

// catchUp reads the lines others appended to audit.log since this
// instance last looked: the web instance a reload replaced records its
// last request after the new one has started, and server records
// SIGHUP-applied changes. Call with mu held.
func (a *authState) catchUp() {
	if a.dir == "" {
		return
	}
	f, err := os.Open(filepath.Join(a.dir, "audit.log"))
	if err != nil {
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() <= a.auditRead {
		return
	}
	if _, err := f.Seek(a.auditRead, io.SeekStart); err != nil {
		return
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		a.auditRead += int64(len(sc.Bytes())) + 1
		var e AuditEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			a.audit = append(a.audit, e)
			if len(a.audit) > 2*auditKeep { // a long log: keep memory bounded
				a.audit = slices.Clone(a.audit[len(a.audit)-auditKeep:])
			}
		}
	}
	if len(a.audit) > auditKeep {
		a.audit = slices.Clone(a.audit[len(a.audit)-auditKeep:])
	}
}

// auditLog returns the latest entries, newest first.
func (a *authState) auditLog(n int) []AuditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.catchUp()
	out := slices.Clone(a.audit)
	slices.Reverse(out)
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// passwordHash is the admin's bcrypt hash: the config's, else one set
// through the setup link for this run only.
func (s *Server) passwordHash() string {
	if s.cfg.Admin.PasswordHash != "" {
		return s.cfg.Admin.PasswordHash
	}
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	return s.auth.runtimeHash
}

// clientAddr is the caller's IP, the unit of login rate limiting.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authenticate puts the caller's principal in the context when it shows a
// valid session cookie or API token.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
			if t, ok := s.auth.checkToken(strings.TrimPrefix(h, "Bearer ")); ok {
				if t.Scope == ScopeRead && r.Method != http.MethodGet && r.Method != http.MethodHead {
					writeJSONError(w, http.StatusForbidden, "token "+t.Name+" is read-only (scope read): it may GET, not change anything; create a token of scope admin for that")
					return
				}
				r = r.WithContext(context.WithValue(r.Context(), principalKey{}, principal{Name: "token:" + t.Name, Via: "token", ReadOnly: t.Scope == ScopeRead}))
			}
		} else if c, err := r.Cookie(sessionCookie); err == nil {
			if sess, ok := s.auth.session(c.Value); ok {
				r = r.WithContext(context.WithValue(r.Context(), principalKey{}, principal{Name: sess.User, Via: "session"}))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// requireAPIAuth answers 401 to API calls without a session or token.
func requireAPIAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := principalFrom(r.Context()); !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="airgapd"`)
			writeJSONError(w, http.StatusUnauthorized, "authentication required: over TCP the API needs a session or an API token (Authorization: Bearer T); on this host use `airgapd status` (control socket, as root)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requirePageAuth sends people without a session to the login page.
func requirePageAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := principalFrom(r.Context()); !ok {
			http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// controlPrincipal names control-socket callers by what the kernel says.
func controlPrincipal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pc, _ := r.Context().Value(peerCredKey{}).(peerCred)
		p := principal{Name: fmt.Sprintf("uid %d", pc.uid), Via: fmt.Sprintf("control socket, pid %d", pc.pid)}
		if pc.uid == 0 {
			p.Name = "root"
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// auditDetailKey carries a handler's description of what it changed.
type auditDetailKey struct{}

// setAudit lets a handler say what it did, for the audit log.
func setAudit(r *http.Request, action, detail string) {
	if p, ok := r.Context().Value(auditDetailKey{}).(*AuditEntry); ok {
		p.Action, p.Detail, p.explicit = action, detail, true
	}
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (sr *statusRecorder) WriteHeader(code int) {
	if sr.code == 0 {
		sr.code = code
	}
	sr.ResponseWriter.WriteHeader(code)
}

func (sr *statusRecorder) Write(b []byte) (int, error) {
	if sr.code == 0 {
		sr.code = http.StatusOK
	}
	return sr.ResponseWriter.Write(b)
}

func (sr *statusRecorder) Unwrap() http.ResponseWriter { return sr.ResponseWriter }

// audited records every state-changing request (who, when, what, result)
// after it ran. Handlers describe the change with setAudit.
func (s *Server) audited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		e := &AuditEntry{Time: s.now(), From: clientAddr(r), Action: r.Method + " " + r.URL.Path}
		if e.From == "" || e.From == "@" {
			e.From = "local"
		}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), auditDetailKey{}, e)))
		if p, ok := principalFrom(r.Context()); ok {
			e.Who = p.String()
		} else if e.Who == "" {
			e.Who = "anonymous"
		}
		switch {
		case e.Result != "":
		case rec.code >= 400:
			e.Result = fmt.Sprintf("refused (%d)", rec.code)
		default:
			e.Result = "ok"
		}
		if (rec.code == http.StatusUnauthorized || rec.code == http.StatusNotFound) && !e.explicit {
			return // noise: probes and typos change nothing
		}
		if e.explicit && rec.code == http.StatusUnauthorized {
			// A failed login is what an auditor looks for first; the
			// journal gets it too (fail2ban and friends read it there).
			s.log.Warn("refused", "action", e.Action, "who", e.Who, "from", e.From, "result", e.Result)
		}
		s.auth.record(*e)
	})
}

// setAuditResult overrides the result the audit log shows.
func setAuditResult(r *http.Request, result string) {
	if p, ok := r.Context().Value(auditDetailKey{}).(*AuditEntry); ok {
		p.Result = result
	}
}

// setAuditWho names the principal for requests that authenticate inside
// the handler (login).
func setAuditWho(r *http.Request, who string) {
	if p, ok := r.Context().Value(auditDetailKey{}).(*AuditEntry); ok {
		p.Who = who
	}
}

func checkPassword(hash, password string) bool {
	return hash != "" && bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// HashPassword returns the bcrypt hash `airgapd passwd` stores.
func HashPassword(password string) (string, error) {
	if err := passwordProblem(password); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

func passwordProblem(p string) error {
	switch {
	case len(p) < 8:
		return errors.New("the password is too short: use at least 8 characters")
	case len(p) > 72:
		return errors.New("the password is too long: bcrypt uses at most 72 bytes")
	}
	return nil
}
