package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Logging in and out, and the one-time setup link that sets the first
// admin password.

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

type loginPage struct {
	Next       string
	NoPassword bool
}

func (s *Server) pageLogin(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, http.StatusOK, "")
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	s.render(w, r, "login", code, pageData{Title: "Sign in", Error: msg, Node: s.nodeLine(r),
		Data: loginPage{Next: safeNext(r.FormValue("next")), NoPassword: s.passwordHash() == ""}})
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	addr := clientAddr(r)
	setAuditWho(r, "admin")
	setAudit(r, "login", "")
	if ok, wait := s.auth.loginAllowed(addr); !ok {
		setAuditResult(r, "refused: rate limited")
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		s.renderLogin(w, r, http.StatusTooManyRequests, fmt.Sprintf("Too many failed attempts from %s; try again in %s.", addr, wait.Round(time.Second)))
		return
	}
	hash := s.passwordHash()
	if hash == "" {
		setAuditResult(r, "refused: no password set")
		s.renderLogin(w, r, http.StatusUnauthorized, "No admin password is set yet.")
		return
	}
	if !checkPassword(hash, r.PostFormValue("password")) {
		s.auth.loginFailed(addr)
		setAuditResult(r, "refused: wrong password")
		s.renderLogin(w, r, http.StatusUnauthorized, "Wrong password.")
		return
	}
	s.auth.loginSucceeded(addr)
	id, err := s.auth.newSession("admin")
	if err != nil {
		s.renderLogin(w, r, http.StatusInternalServerError, "cannot store the session: "+err.Error())
		return
	}
	http.SetCookie(w, s.sessionCookie(id, int(sessionTTL.Seconds())))
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (s *Server) sessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: sessionCookie, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: s.deps.UITLS != nil, SameSite: http.SameSiteStrictMode}
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.auth.endSession(c.Value)
	}
	setAudit(r, "logout", "")
	http.SetCookie(w, s.sessionCookie("", -1))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// The one-time setup link: with no password set, the first start logs
// /setup?token=T; that page sets the password (into the config file, or
// for this run only under the built-in defaults) and the link dies.

func (s *Server) setupValid(tok string) bool {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	return s.auth.setupToken != "" && len(tok) == len(s.auth.setupToken) && subtleEq(tok, s.auth.setupToken)
}

// claimSetup uses the setup link up if tok is it and no one has yet.
func (s *Server) claimSetup(tok string) bool {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	if s.auth.setupToken == "" || len(tok) != len(s.auth.setupToken) || !subtleEq(tok, s.auth.setupToken) {
		return false
	}
	s.auth.setupToken = ""
	s.auth.claimedSetup = tok
	return true
}

// unclaimSetup gives the link back when saving the password failed, so
// the operator can try again.
func (s *Server) unclaimSetup(tok string) {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	if s.auth.setupToken == "" && s.auth.claimedSetup == tok {
		s.auth.setupToken, s.auth.claimedSetup = tok, ""
	}
}

func (s *Server) pageSetup(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if !s.setupValid(tok) || s.passwordHash() != "" {
		s.render(w, r, "setup", http.StatusNotFound, pageData{Title: "Set the admin password", Error: "This setup link is not valid (used already, or airgapd restarted: each start logs a new one while no password is set). Or run `airgapd passwd --config FILE`."})
		return
	}
	s.render(w, r, "setup", http.StatusOK, pageData{Title: "Set the admin password", Data: tok})
}

func (s *Server) handleSetup(w http.ResponseWriter, r *http.Request) {
	tok := r.PostFormValue("token")
	setAuditWho(r, "setup link")
	setAudit(r, "admin password set", "")
	refuse := func() {
		setAuditResult(r, "refused: invalid setup link")
		s.render(w, r, "setup", http.StatusNotFound, pageData{Title: "Set the admin password", Error: "This setup link is not valid any more."})
	}
	if !s.setupValid(tok) || s.passwordHash() != "" {
		refuse()
		return
	}
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("confirm") {
		s.render(w, r, "setup", http.StatusUnprocessableEntity, pageData{Title: "Set the admin password", Error: "The two passwords differ.", Data: tok})
		return
	}
	hash, err := HashPassword(pw)
	if err != nil {
		s.render(w, r, "setup", http.StatusUnprocessableEntity, pageData{Title: "Set the admin password", Error: err.Error(), Data: tok})
		return
	}
	// The link is used up here, atomically: of two forms sent at once,
	// one sets the password and the other is refused, never both in turn.
	if !s.claimSetup(tok) {
		refuse()
		return
	}
	_, data, err := s.configFile()
	switch {
	case err == nil:
		next, err := SetPasswordHash(data, hash)
		if err == nil {
			err = s.apply(r, next)
		}
		if err != nil {
			s.unclaimSetup(tok)
			setAuditResult(r, "failed: "+err.Error())
			s.render(w, r, "setup", http.StatusConflict, pageData{Title: "Set the admin password", Error: err.Error(), Data: tok})
			return
		}
	default: // built-in defaults: for this run only
		setAudit(r, "admin password set", "for this run only: no config file")
	}
	s.auth.mu.Lock()
	s.auth.runtimeHash = hash
	s.auth.mu.Unlock()
	http.Redirect(w, r, "/login?done=password-set", http.StatusSeeOther)
}
