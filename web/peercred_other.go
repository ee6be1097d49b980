//go:build !linux

package web

import (
	"context"
	"errors"
	"net"
	"net/http"
)

// withPeerCred is Linux-only (SO_PEERCRED).
func withPeerCred(ctx context.Context, c net.Conn) context.Context { return ctx }

// requireRoot refuses everyone where the caller cannot be identified.
func requireRoot(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusForbidden, errors.ErrUnsupported.Error()+": the control socket needs Linux")
	})
}
