package registry

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/airgapd/airgapd/internal/conf"
)

// Realm is the Basic realm in WWW-Authenticate.
const Realm = "airgapd registry"

// challenge is the WWW-Authenticate value for every 401: Basic, as
// distribution's htpasswd access controller sends it.
const challenge = `Basic realm="` + Realm + `"`

// action is what a request needs permission for.
type action int

const (
	actionPull action = iota
	actionPush
	actionDelete
)

// authorizer decides who may do what: users (bcrypt) may do everything;
// anyone inside pull_from may pull without credentials.
type authorizer struct {
	users    map[string][]byte // name → bcrypt hash
	pullFrom []netip.Prefix

	// verified remembers the last password that matched each user's hash
	// (as a SHA-256), so a push of many blobs pays for bcrypt once, not per
	// request. Keyed by user; a new hash (reload) means a new authorizer.
	mu       sync.Mutex
	verified map[string][32]byte
}

func newAuthorizer(cfg Config) (*authorizer, error) {
	a := &authorizer{users: map[string][]byte{}, verified: map[string][32]byte{}}
	for _, u := range cfg.Users {
		a.users[u.Name] = []byte(u.PasswordHash)
	}
	for _, s := range cfg.PullFrom {
		p, err := conf.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		a.pullFrom = append(a.pullFrom, p)
	}
	return a, nil
}

// checkPassword reports whether name and password match a user.
func (a *authorizer) checkPassword(name, password string) bool {
	hash, ok := a.users[name]
	if !ok {
		// Spend the same time as for a real user, so timing does not tell
		// which names exist.
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false
	}
	sum := sha256.Sum256([]byte(password))
	a.mu.Lock()
	prev, seen := a.verified[name]
	a.mu.Unlock()
	if seen && subtle.ConstantTimeCompare(prev[:], sum[:]) == 1 {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	a.mu.Lock()
	a.verified[name] = sum
	a.mu.Unlock()
	return true
}

// dummyHash is a bcrypt hash at the default cost of a password nobody
// uses, compared against for unknown user names.
var dummyHash = []byte("$2a$10$babvWRmjNMW.CDgNFviGEeD5rcPdX8T4MhspNJKI.PgiZVFDyYzT2")

func (a *authorizer) inPullFrom(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range a.pullFrom {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// authorize puts the authorizer in front of next. Credentials, when sent,
// must be right, whatever the request: a wrong password is a 401 even for
// a pull that would be allowed anonymously. Without credentials (or with
// empty ones, which skopeo sends when it has none), pulls are allowed from
// pull_from; everything else gets 401 and the Basic challenge.
//
// The /v2/ ping answers 200 to an anonymous client inside pull_from, and
// carries the challenge anyway (RFC 9110 allows WWW-Authenticate on any
// response): skopeo decides from the ping alone whether to send
// credentials later, so without it a push from inside pull_from would go
// out without them.
func (r *Registry) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		a := r.auth.Load()
		rt := parseRoute(req.URL.Path)
		client, _ := netip.ParseAddrPort(req.RemoteAddr)
		if user, pass, ok := req.BasicAuth(); ok && (user != "" || pass != "") {
			who := client.Addr().String()
			if ok, wait := r.guesses.Allowed(who); !ok {
				r.stats.authFailed(reasonWrongCredentials)
				w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
				writeAPIError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS",
					fmt.Sprintf("too many wrong passwords from %s; try again in %s", who, wait.Round(time.Second)))
				return
			}
			if !a.checkPassword(user, pass) {
				r.guesses.Failed(who)
				r.stats.authFailed(reasonWrongCredentials)
				r.log.Warn("registry: wrong credentials", "user", user, "client", req.RemoteAddr, "method", req.Method, "path", req.URL.Path)
				unauthorized(w, "wrong user name or password")
				return
			}
			r.guesses.Succeeded(who)
			next.ServeHTTP(w, req)
			return
		}
		inside := a.inPullFrom(client.Addr())
		act := rt.action(req.Method)
		switch {
		case inside && rt.kind == routeBase:
			w.Header().Set("WWW-Authenticate", challenge)
			next.ServeHTTP(w, req)
			return
		case inside && act == actionPull:
			next.ServeHTTP(w, req)
			return
		case act == actionPull:
			r.stats.authFailed(reasonOutsidePullFrom)
			unauthorized(w, "anonymous pulls are allowed only from registry.pull_from; log in with a registry user")
		default:
			r.stats.authFailed(reasonNoCredentials)
			unauthorized(w, "authentication required: pushing and deleting need a user from registry.users")
		}
	})
}

// authFailures wrong passwords within authWindow lock a client out, the
// web login's numbers.
const (
	authFailures = 5
	authWindow   = 5 * time.Minute
)

// unauthorized writes distribution's 401: the challenge and an error body
// in the registry API's format.
func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", challenge)
	writeAPIError(w, http.StatusUnauthorized, "UNAUTHORIZED", msg)
}

// writeAPIError writes an error in the OCI distribution format.
func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	type apiErr struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Errors []apiErr `json:"errors"`
	}{[]apiErr{{code, msg}}})
}
