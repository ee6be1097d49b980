package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/airgapd/airgapd/internal/atomicfile"
	"github.com/coreos/go-iptables/iptables"
)

// NewTables returns the host's iptables, through go-iptables (which runs
// the iptables binary, so the nf_tables and legacy backends both work). It
// looks for iptables on first use, not here.
func NewTables() Tables { return &hostTables{} }

type hostTables struct {
	mu      sync.Mutex
	ipt     *iptables.IPTables
	backend string
}

var _ Tables = (*hostTables)(nil)

// errNoIPTables is wrapped in the error when the binary is missing.
var errNoIPTables = errors.New("iptables is not installed: install it (Rocky/RHEL: dnf install iptables-nft; Debian: apt-get install iptables); the gateway needs it")

// get finds iptables and its backend; it tries again after a failure, so
// installing iptables needs no restart.
func (t *hostTables) get() (*iptables.IPTables, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ipt != nil {
		return t.ipt, nil
	}
	path, err := exec.LookPath("iptables")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoIPTables, err)
	}
	// Timeout bounds the wait for the xtables lock another tool holds.
	ipt, err := iptables.New(iptables.Path(path), iptables.Timeout(10))
	if err != nil {
		return nil, fmt.Errorf("iptables: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("iptables --version: %w", err)
	}
	t.ipt, t.backend = ipt, parseBackend(string(out))
	return ipt, nil
}

// parseBackend reads `iptables --version`: "iptables v1.8.9 (nf_tables)";
// versions that say nothing in parentheses are legacy.
func parseBackend(version string) string {
	m := regexp.MustCompile(`\((\w+)\)`).FindStringSubmatch(version)
	if m == nil {
		return "legacy"
	}
	return m[1]
}

func (t *hostTables) Backend() (string, error) {
	if _, err := t.get(); err != nil {
		return "", err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.backend, nil
}

func (t *hostTables) ListChains(table string) ([]string, error) {
	ipt, err := t.get()
	if err != nil {
		return nil, err
	}
	return ipt.ListChains(table)
}

func (t *hostTables) List(table, chain string) ([]string, error) {
	ipt, err := t.get()
	if err != nil {
		return nil, err
	}
	return ipt.ListWithCounters(table, chain)
}

func (t *hostTables) NewChain(table, chain string) error {
	ipt, err := t.get()
	if err != nil {
		return err
	}
	return ipt.NewChain(table, chain)
}

func (t *hostTables) ClearChain(table, chain string) error {
	ipt, err := t.get()
	if err != nil {
		return err
	}
	return ipt.ClearChain(table, chain)
}

func (t *hostTables) DeleteChain(table, chain string) error {
	ipt, err := t.get()
	if err != nil {
		return err
	}
	return ipt.DeleteChain(table, chain)
}

func (t *hostTables) Insert(table, chain string, pos int, spec []string) error {
	ipt, err := t.get()
	if err != nil {
		return err
	}
	return ipt.Insert(table, chain, pos, spec...)
}

func (t *hostTables) Append(table, chain string, spec []string) error {
	ipt, err := t.get()
	if err != nil {
		return err
	}
	return ipt.Append(table, chain, spec...)
}

func (t *hostTables) Delete(table, chain string, spec []string) error {
	ipt, err := t.get()
	if err != nil {
		return err
	}
	return ipt.Delete(table, chain, spec...)
}

func (t *hostTables) DeleteAt(table, chain string, pos int) error {
	ipt, err := t.get()
	if err != nil {
		return err
	}
	return ipt.DeleteById(table, chain, pos)
}

// NewKernel returns the host's sysctls, routes and firewalld state.
// dropinDir is where the sysctl drop-in goes; "" means /etc/sysctl.d.
func NewKernel(dropinDir string) Kernel {
	if dropinDir == "" {
		dropinDir = "/etc/sysctl.d"
	}
	return &hostKernel{dropin: filepath.Join(dropinDir, "90-airgapd.conf")}
}

type hostKernel struct {
	dropin string
}

var _ Kernel = (*hostKernel)(nil)

func (k *hostKernel) ReadSysctl(path string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/proc/sys", path))
	return strings.TrimSpace(string(b)), err
}

func (k *hostKernel) WriteSysctl(path, value string) error {
	f, err := os.OpenFile(filepath.Join("/proc/sys", path), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ip runs the ip command with a time limit.
func ip(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("the ip command (iproute2) is not installed: %w", err)
		}
		return nil, fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (k *hostKernel) Routes() ([]KernelRoute, error) {
	out, err := ip("-4", "-j", "route", "show", "table", "main", "proto", itoa(RouteProto))
	if err != nil {
		return nil, err
	}
	return parseRoutes(out)
}

// parseRoutes reads `ip -j route show`.
func parseRoutes(js []byte) ([]KernelRoute, error) {
	var rs []struct {
		Dst     string `json:"dst"`
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
	}
	if len(bytes.TrimSpace(js)) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(js, &rs); err != nil {
		return nil, fmt.Errorf("read ip -j route: %w", err)
	}
	var out []KernelRoute
	for _, r := range rs {
		kr := KernelRoute{Dev: r.Dev}
		switch {
		case r.Dst == "default":
			kr.Dst = netip.MustParsePrefix("0.0.0.0/0")
		case strings.Contains(r.Dst, "/"):
			p, err := netip.ParsePrefix(r.Dst)
			if err != nil {
				return nil, fmt.Errorf("route %q: %w", r.Dst, err)
			}
			kr.Dst = p
		default:
			a, err := netip.ParseAddr(r.Dst)
			if err != nil {
				return nil, fmt.Errorf("route %q: %w", r.Dst, err)
			}
			kr.Dst = netip.PrefixFrom(a, a.BitLen())
		}
		if r.Gateway != "" {
			kr.Via, _ = netip.ParseAddr(r.Gateway)
		}
		out = append(out, kr)
	}
	return out, nil
}

func (k *hostKernel) ReplaceRoute(r KernelRoute) error {
	_, err := ip(append([]string{"route", "replace"}, r.Args()...)...)
	return err
}

func (k *hostKernel) DeleteRoute(r KernelRoute) error {
	_, err := ip(append([]string{"route", "del"}, r.Args()...)...)
	return err
}

func (k *hostKernel) DropinPath() string { return k.dropin }

func (k *hostKernel) ReadDropin() ([]byte, error) {
	b, err := os.ReadFile(k.dropin)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if b == nil && err == nil {
		b = []byte{}
	}
	return b, err
}

// WriteDropin writes atomically: a temp file, fsync, rename.
func (k *hostKernel) WriteDropin(b []byte) error {
	return atomicfile.WriteFile(k.dropin, b, 0o644)
}

func (k *hostKernel) RemoveDropin() error {
	err := os.Remove(k.dropin)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Firewalld looks for a firewalld process and for firewalld's nftables
// table in this network namespace. Both are reads.
func (k *hostKernel) Firewalld() Firewalld {
	var f Firewalld
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, c := range comms {
		if b, err := os.ReadFile(c); err == nil && strings.TrimSpace(string(b)) == "firewalld" {
			f.Running = true
			break
		}
	}
	if _, err := exec.LookPath("nft"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "nft", "list", "tables").Output()
		f.NFTables = err == nil && hasFirewalldTable(string(out))
	}
	return f
}

// hasFirewalldTable reads `nft list tables`.
func hasFirewalldTable(list string) bool {
	for _, l := range strings.Split(list, "\n") {
		if strings.TrimSpace(l) == "table inet firewalld" {
			return true
		}
	}
	return false
}
