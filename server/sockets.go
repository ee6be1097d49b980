package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// socketKey names one listening socket. Port-0 addresses (tests) are made
// unique by the config path that asked for them.
type socketKey struct {
	network string // tcp | udp | unix
	addr    string
	owner   string // config path, only for port 0
	v6only  bool   // an IPv6 wildcard beside an IPv4 one (listenAddr.v6only)
}

func (k socketKey) String() string { return k.network + " " + k.addr }

func keyFor(l listenAddr) socketKey {
	k := socketKey{network: l.network, addr: l.addr, v6only: l.v6only}
	if _, port, _ := net.SplitHostPort(l.addr); port == "0" {
		k.owner = l.path
	}
	return k
}

// socketSet holds every socket server opened. Each socket is kept as a file
// descriptor of server's own; a service instance gets a duplicate, so when
// an old instance closes its listener on stop, the socket stays open and the
// next instance keeps accepting on it (build, then swap, without a gap).
type socketSet struct {
	files map[socketKey]heldSocket
	bound map[socketKey]string // actual address (port 0 resolved)
}

func newSocketSet() *socketSet {
	return &socketSet{files: map[socketKey]heldSocket{}, bound: map[socketKey]string{}}
}

// heldSocket is server's own descriptor of a socket, kept out of Go's
// poller on purpose. An *os.File of a non-blocking socket is registered in
// the runtime's epoll set, and the kernel then wakes that entry too for
// every datagram that arrives and every reply that leaves, though nothing
// ever reads it (docs/BENCHMARKS.md, "NTP per core, one poller entry per
// socket").
type heldSocket int

// heldFromConn duplicates the descriptor under c (a listener or conn that
// the caller closes after).
func heldFromConn(c syscall.Conn) (heldSocket, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var dupErr error
	if err := rc.Control(func(fd uintptr) { nfd, dupErr = dupCloexec(int(fd)) }); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, fmt.Errorf("duplicate socket: %w", dupErr)
	}
	return heldSocket(nfd), nil
}

// file is a new *os.File on a duplicate of h, for net.FileListener and
// net.FilePacketConn (which duplicate it once more); the caller closes it.
func (h heldSocket) file(name string) (*os.File, error) {
	nfd, err := dupCloexec(int(h))
	if err != nil {
		return nil, fmt.Errorf("duplicate socket %s: %w", name, err)
	}
	return os.NewFile(uintptr(nfd), name), nil
}

func (h heldSocket) Close() error { return unix.Close(int(h)) }

func dupCloexec(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }

// open opens every wanted socket not yet open. On failure it closes the
// ones it opened in this call and returns an error naming the address and,
// when it can tell, the process holding it.
func (s *socketSet) open(want []listenAddr) (opened []socketKey, err error) {
	defer func() {
		if err != nil {
			s.close(opened)
			opened = nil
		}
	}()
	for _, l := range want {
		k := keyFor(l)
		if _, ok := s.files[k]; ok {
			continue
		}
		addr := l.addr
		// DNS wants UDP and TCP on one port: when the TCP side (opened first,
		// see Config.listens) took a
		// random port, the UDP side takes the same one.
		if k.owner != "" && l.network == "udp" {
			if tcp, ok := s.bound[socketKey{"tcp", l.addr, k.owner, l.v6only}]; ok {
				host, _, _ := net.SplitHostPort(l.addr)
				_, port, _ := net.SplitHostPort(tcp)
				addr = net.JoinHostPort(host, port)
			}
		}
		network := socketNetwork(l)
		h, bound, err := listenFile(network, addr)
		if err != nil {
			if own, ok := s.ownOnPort(l.network, addr, opened); ok && errors.Is(err, syscall.EADDRINUSE) {
				// The holder is this airgapd: portHolders skips our own
				// process, so say it here; reload hands the socket over.
				return opened, &ownSocketError{path: l.path, want: l.network + " " + addr, held: own, err: err}
			}
			return opened, fmt.Errorf("%s (%s): %w", l.path, l.network, err)
		}
		s.files[k] = h
		s.bound[k] = bound
		opened = append(opened, k)
	}
	return opened, nil
}

// ownSocketError is a wanted socket that collides with one this airgapd
// serves on now: moving a listener between a wildcard and a specific
// address of one port (":8443" to "0.0.0.0:8443").
type ownSocketError struct {
	path, want string
	held       socketKey
	err        error
}

func (e *ownSocketError) Error() string {
	return fmt.Sprintf("%s: %s overlaps %s, a socket this airgapd still serves on: %v", e.path, e.want, e.held, e.err)
}

func (e *ownSocketError) Unwrap() error { return e.err }

// ownOnPort finds a socket already open here (not one this open call
// made) on network and addr's port.
func (s *socketSet) ownOnPort(network, addr string, opened []socketKey) (socketKey, bool) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return socketKey{}, false
	}
	for k, b := range s.bound {
		if k.network != network || slices.Contains(opened, k) {
			continue
		}
		if _, p, err := net.SplitHostPort(b); err == nil && p == port {
			return k, true
		}
	}
	return socketKey{}, false
}

// socketNetwork is the network Go must be asked for: "0.0.0.0" means IPv4
// only, as in named, nginx and Unbound (Go alone would open a dual-stack
// [::] socket for it), and a v6only "[::]" IPv6 only.
func socketNetwork(l listenAddr) string {
	host, _, err := net.SplitHostPort(l.addr)
	switch {
	case err != nil || (l.network != "tcp" && l.network != "udp"):
		return l.network
	case host == "0.0.0.0":
		return l.network + "4"
	case l.v6only:
		return l.network + "6"
	}
	return l.network
}

// listenFile opens a socket and returns server's descriptor for it. TCP and
// UDP sockets may bind an address the host does not have yet (a keepalived
// VIP, an address that comes up later): IP_FREEBIND / IPV6_FREEBIND, as
// Unbound's ip-freebind.
func listenFile(network, addr string) (heldSocket, string, error) {
	lc := net.ListenConfig{Control: freebind}
	ctx := context.Background()
	switch network {
	case "udp", "udp4", "udp6":
		pc, err := lc.ListenPacket(ctx, network, addr)
		if err != nil {
			return -1, "", explainListenError(network, addr, err)
		}
		defer pc.Close() // the held descriptor is a duplicate that stays open
		h, err := heldFromConn(pc.(*net.UDPConn))
		return h, pc.LocalAddr().String(), err
	case "tcp", "tcp4", "tcp6", "unix":
		if network == "unix" {
			lc.Control = nil
		}
		ln, err := lc.Listen(ctx, network, addr)
		if err != nil {
			return -1, "", explainListenError(network, addr, err)
		}
		if ul, ok := ln.(*net.UnixListener); ok {
			// server removes the socket file itself, at stop.
			ul.SetUnlinkOnClose(false)
		}
		defer ln.Close()
		h, err := heldFromConn(ln.(syscall.Conn))
		return h, ln.Addr().String(), err
	}
	return -1, "", fmt.Errorf("unknown network %q", network)
}

// explainListenError names the process that holds a taken port when
// /proc tells, and says what to do.
func explainListenError(network, addr string, err error) error {
	if !errors.Is(err, syscall.EADDRINUSE) {
		if errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("cannot listen on %s %s: %w (ports below 1024 need root or CAP_NET_BIND_SERVICE)", network, addr, err)
		}
		return fmt.Errorf("cannot listen on %s %s: %w", network, addr, err)
	}
	_, port, _ := net.SplitHostPort(addr)
	if holders := portHolders(network, port); len(holders) > 0 {
		return fmt.Errorf("%s %s is already in use by %s; stop it (e.g. systemctl disable --now %s) or change the listen address: %w",
			network, addr, holders[0], holders[0].Name, err)
	}
	return fmt.Errorf("%s %s is already in use; find the holder with `ss -lnp sport = :%s` and stop it, or change the listen address: %w",
		network, addr, port, err)
}

func (s *socketSet) listener(k socketKey) (net.Listener, error) {
	f, err := s.tempFile(k)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return net.FileListener(f) // duplicates the descriptor
}

func (s *socketSet) packetConn(k socketKey) (net.PacketConn, error) {
	f, err := s.tempFile(k)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return net.FilePacketConn(f) // duplicates the descriptor
}

// tempFile is a short-lived *os.File for handing k to a service.
func (s *socketSet) tempFile(k socketKey) (*os.File, error) {
	h, ok := s.files[k]
	if !ok {
		return nil, fmt.Errorf("socket %s is not open (a bug)", k)
	}
	return h.file(k.String())
}

// boundAddr is the address a socket really got (port 0 resolved).
func (s *socketSet) boundAddr(k socketKey) string { return s.bound[k] }

// close closes server's descriptors for keys; a unix socket's file is
// removed too.
func (s *socketSet) close(keys []socketKey) {
	for _, k := range keys {
		if h, ok := s.files[k]; ok {
			h.Close()
			delete(s.files, k)
			delete(s.bound, k)
			if k.network == "unix" {
				os.Remove(k.addr)
			}
		}
	}
}

// keep closes every socket not in want.
func (s *socketSet) keepOnly(want map[socketKey]bool) {
	var drop []socketKey
	for k := range s.files {
		if !want[k] {
			drop = append(drop, k)
		}
	}
	s.close(drop)
}

func (s *socketSet) closeAll() {
	var all []socketKey
	for k := range s.files {
		all = append(all, k)
	}
	s.close(all)
}

// openControlSocket opens runtime_dir/api.sock for root only. A socket file
// left behind by a killed instance is removed; a live one means another
// airgapd uses this runtime_dir.
func (s *socketSet) openControlSocket(runtimeDir string) (socketKey, error) {
	path := filepath.Join(runtimeDir, "api.sock")
	k := socketKey{network: "unix", addr: path}
	if _, ok := s.files[k]; ok {
		return k, nil
	}
	if err := os.MkdirAll(runtimeDir, 0o755); err != nil {
		return k, fmt.Errorf("create runtime_dir: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return k, fmt.Errorf("another airgapd is running with runtime_dir %s (its control socket %s answers); stop it or give this one its own runtime_dir", runtimeDir, path)
	}
	os.Remove(path) // stale, from an instance that was killed
	h, bound, err := listenFile("unix", path)
	if err != nil {
		return k, fmt.Errorf("control socket: %w", err)
	}
	// SO_PEERCRED checks every caller too; the mode keeps others from even
	// connecting.
	if err := os.Chmod(path, 0o600); err != nil {
		h.Close()
		return k, fmt.Errorf("control socket: %w", err)
	}
	s.files[k] = h
	s.bound[k] = bound
	return k, nil
}
