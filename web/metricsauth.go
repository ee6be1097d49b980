package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/airgapd/airgapd/internal/conf"
)

// metricsGuard restricts /metrics on web.listen to web.metrics.allow (403
// from elsewhere) and, with web.metrics.token set, to scrapers that send
// `Authorization: Bearer TOKEN` (401 otherwise). With neither set it is
// open, as node_exporter is.
func (s *Server) metricsGuard(next http.Handler) http.Handler {
	mc := s.cfg.Metrics
	if len(mc.Allow) == 0 && mc.Token == "" {
		return next
	}
	var allow []netip.Prefix
	for _, a := range mc.Allow {
		if p, err := conf.ParsePrefix(a); err == nil { // Validate checked them
			allow = append(allow, p)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(allow) > 0 && !addrAllowed(r.RemoteAddr, allow) {
			http.Error(w, "forbidden: this address is not in web.metrics.allow", http.StatusForbidden)
			return
		}
		if mc.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || !subtleEq(got, mc.Token) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="airgapd metrics"`)
				http.Error(w, "unauthorized: /metrics needs Authorization: Bearer TOKEN (web.metrics.token)", http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// addrAllowed reports whether the host of hostport is in one of allow.
func addrAllowed(hostport string, allow []netip.Prefix) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
