package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"syscall"
)

type peerCredKey struct{}

var errNotUnix = errors.New("not a unix socket connection")

// peerCred is what the kernel says about the process at the other end of a
// control-socket connection (SO_PEERCRED).
type peerCred struct {
	uid uint32
	pid int32
	err error
}

// withPeerCred records the caller's credentials when a control-socket
// connection is accepted.
func withPeerCred(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return context.WithValue(ctx, peerCredKey{}, peerCred{err: errNotUnix})
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return context.WithValue(ctx, peerCredKey{}, peerCred{err: err})
	}
	var cred *syscall.Ucred
	var credErr error
	err = raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if err == nil {
		err = credErr
	}
	if err != nil {
		return context.WithValue(ctx, peerCredKey{}, peerCred{err: err})
	}
	return context.WithValue(ctx, peerCredKey{}, peerCred{uid: cred.Uid, pid: cred.Pid})
}

// requireRoot refuses control-socket callers that are neither uid 0 nor
// the uid airgapd itself runs as (a developer's `make run`), even if the
// socket's mode was loosened by hand. The same uid could read airgapd's
// data and signal it anyway, so letting it in grants nothing new.
func requireRoot(next http.Handler) http.Handler {
	self := uint32(os.Getuid())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pc, _ := r.Context().Value(peerCredKey{}).(peerCred)
		switch {
		case pc.err != nil:
			writeJSONError(w, http.StatusForbidden, "cannot tell who is calling: "+pc.err.Error())
		case pc.uid != 0 && pc.uid != self:
			writeJSONError(w, http.StatusForbidden, "the control socket is for root only; run as root, or use --api URL --token T")
		default:
			next.ServeHTTP(w, r)
		}
	})
}
