package gateway

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeTables is a Tables made of function fields; a call to a field left
// nil fails the test (the code under test did something it should not).
type fakeTables struct {
	t           *testing.T
	backend     func() (string, error)
	listChains  func(table string) ([]string, error)
	list        func(table, chain string) ([]string, error)
	newChain    func(table, chain string) error
	clearChain  func(table, chain string) error
	deleteChain func(table, chain string) error
	insert      func(table, chain string, pos int, spec []string) error
	append      func(table, chain string, spec []string) error
	delete      func(table, chain string, spec []string) error
	deleteAt    func(table, chain string, pos int) error
}

var _ Tables = (*fakeTables)(nil)

var errUnexpected = errors.New("unexpected call")

func (f *fakeTables) unexpected(name string, args ...any) error {
	f.t.Helper()
	f.t.Errorf("unexpected call: Tables.%s%v", name, args)
	return errUnexpected
}

func (f *fakeTables) Backend() (string, error) {
	if f.backend == nil {
		return "", f.unexpected("Backend")
	}
	return f.backend()
}

func (f *fakeTables) ListChains(table string) ([]string, error) {
	if f.listChains == nil {
		return nil, f.unexpected("ListChains", table)
	}
	return f.listChains(table)
}

func (f *fakeTables) List(table, chain string) ([]string, error) {
	if f.list == nil {
		return nil, f.unexpected("List", table, chain)
	}
	return f.list(table, chain)
}

func (f *fakeTables) NewChain(table, chain string) error {
	if f.newChain == nil {
		return f.unexpected("NewChain", table, chain)
	}
	return f.newChain(table, chain)
}

func (f *fakeTables) ClearChain(table, chain string) error {
	if f.clearChain == nil {
		return f.unexpected("ClearChain", table, chain)
	}
	return f.clearChain(table, chain)
}

func (f *fakeTables) DeleteChain(table, chain string) error {
	if f.deleteChain == nil {
		return f.unexpected("DeleteChain", table, chain)
	}
	return f.deleteChain(table, chain)
}

func (f *fakeTables) Insert(table, chain string, pos int, spec []string) error {
	if f.insert == nil {
		return f.unexpected("Insert", table, chain, pos, spec)
	}
	return f.insert(table, chain, pos, spec)
}

func (f *fakeTables) Append(table, chain string, spec []string) error {
	if f.append == nil {
		return f.unexpected("Append", table, chain, spec)
	}
	return f.append(table, chain, spec)
}

func (f *fakeTables) Delete(table, chain string, spec []string) error {
	if f.delete == nil {
		return f.unexpected("Delete", table, chain, spec)
	}
	return f.delete(table, chain, spec)
}

func (f *fakeTables) DeleteAt(table, chain string, pos int) error {
	if f.deleteAt == nil {
		return f.unexpected("DeleteAt", table, chain, pos)
	}
	return f.deleteAt(table, chain, pos)
}

// fakeKernel is a Kernel made of function fields, failing on unexpected
// calls like fakeTables.
type fakeKernel struct {
	t            *testing.T
	readSysctl   func(path string) (string, error)
	writeSysctl  func(path, value string) error
	routes       func() ([]KernelRoute, error)
	replaceRoute func(KernelRoute) error
	deleteRoute  func(KernelRoute) error
	readDropin   func() ([]byte, error)
	writeDropin  func([]byte) error
	removeDropin func() error
	firewalld    func() Firewalld
}

var _ Kernel = (*fakeKernel)(nil)

func (f *fakeKernel) unexpected(name string, args ...any) error {
	f.t.Helper()
	f.t.Errorf("unexpected call: Kernel.%s%v", name, args)
	return errUnexpected
}

func (f *fakeKernel) ReadSysctl(path string) (string, error) {
	if f.readSysctl == nil {
		return "", f.unexpected("ReadSysctl", path)
	}
	return f.readSysctl(path)
}

func (f *fakeKernel) WriteSysctl(path, value string) error {
	if f.writeSysctl == nil {
		return f.unexpected("WriteSysctl", path, value)
	}
	return f.writeSysctl(path, value)
}

func (f *fakeKernel) Routes() ([]KernelRoute, error) {
	if f.routes == nil {
		return nil, f.unexpected("Routes")
	}
	return f.routes()
}

func (f *fakeKernel) ReplaceRoute(r KernelRoute) error {
	if f.replaceRoute == nil {
		return f.unexpected("ReplaceRoute", r)
	}
	return f.replaceRoute(r)
}

func (f *fakeKernel) DeleteRoute(r KernelRoute) error {
	if f.deleteRoute == nil {
		return f.unexpected("DeleteRoute", r)
	}
	return f.deleteRoute(r)
}

func (f *fakeKernel) ReadDropin() ([]byte, error) {
	if f.readDropin == nil {
		return nil, f.unexpected("ReadDropin")
	}
	return f.readDropin()
}

func (f *fakeKernel) WriteDropin(b []byte) error {
	if f.writeDropin == nil {
		return f.unexpected("WriteDropin")
	}
	return f.writeDropin(b)
}

func (f *fakeKernel) RemoveDropin() error {
	if f.removeDropin == nil {
		return f.unexpected("RemoveDropin")
	}
	return f.removeDropin()
}

func (f *fakeKernel) DropinPath() string { return "/etc/sysctl.d/90-airgapd.conf" }

func (f *fakeKernel) Firewalld() Firewalld {
	if f.firewalld == nil {
		f.unexpected("Firewalld")
		return Firewalld{}
	}
	return f.firewalld()
}

// memNet is an in-memory network namespace: iptables chains with rules and
// counters, sysctls, routes and the drop-in. Its fakes() wire every
// function field to it; a test then nils the ones that must not be called.
type memNet struct {
	mu       sync.Mutex
	chains   map[string][]string   // table → chains, built-ins first
	rules    map[string][]*memRule // "table/chain" → rules
	policy   map[string]string     // "table/chain" → policy of a built-in chain
	sysctl   map[string]string
	routes   []KernelRoute
	dropin   []byte
	fw       Firewalld
	mutating int // calls that changed something
}

type memRule struct {
	spec           string
	packets, bytes uint64
}

func newMemNet() *memNet {
	m := &memNet{
		chains: map[string][]string{
			"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
			"filter": {"INPUT", "FORWARD", "OUTPUT"},
		},
		rules:  map[string][]*memRule{},
		policy: map[string]string{},
		sysctl: map[string]string{ipForwardPath: "0"},
	}
	for table, cs := range m.chains {
		for _, c := range cs {
			m.policy[key(table, c)] = "ACCEPT"
		}
	}
	return m
}

// add appends a rule directly, as another tool would.
func (m *memNet) add(table, chain, spec string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.chains[table], chain) {
		m.chains[table] = append(m.chains[table], chain)
	}
	m.rules[key(table, chain)] = append(m.rules[key(table, chain)], &memRule{spec: spec, packets: 7, bytes: 420})
}

// dump is the whole state as text, for before/after comparisons.
func (m *memNet) dump() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, table := range []string{"filter", "nat"} {
		fmt.Fprintf(&b, "*%s\n", table)
		for _, c := range m.chains[table] {
			fmt.Fprintf(&b, ":%s %s\n", c, m.policy[key(table, c)])
			for _, r := range m.rules[key(table, c)] {
				fmt.Fprintf(&b, "-A %s %s\n", c, r.spec)
			}
		}
	}
	for _, k := range sortedKeys(m.sysctl) {
		fmt.Fprintf(&b, "sysctl %s=%s\n", k, m.sysctl[k])
	}
	for _, r := range m.routes {
		fmt.Fprintf(&b, "route %s\n", r)
	}
	fmt.Fprintf(&b, "dropin %q\n", m.dropin)
	return b.String()
}

// chainRules returns the specs of one chain.
func (m *memNet) chainRules(table, chain string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.rules[key(table, chain)] {
		out = append(out, r.spec)
	}
	return out
}

func (m *memNet) fakes(t *testing.T) (*fakeTables, *fakeKernel) {
	builtin := func(table, chain string) bool { _, ok := m.policy[key(table, chain)]; return ok }
	has := func(table, chain string) bool { return slices.Contains(m.chains[table], chain) }
	notExist := func(table, chain string) error {
		return fmt.Errorf("iptables: chain %s/%s does not exist", table, chain)
	}
	ft := &fakeTables{t: t,
		backend: func() (string, error) { return "nf_tables", nil },
		listChains: func(table string) ([]string, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			return slices.Clone(m.chains[table]), nil
		},
		list: func(table, chain string) ([]string, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if !has(table, chain) {
				return nil, notExist(table, chain)
			}
			var out []string
			if builtin(table, chain) {
				out = append(out, fmt.Sprintf("-P %s %s -c 0 0", chain, m.policy[key(table, chain)]))
			} else {
				out = append(out, "-N "+chain)
			}
			for _, r := range m.rules[key(table, chain)] {
				// iptables 1.8 puts the counters before -j.
				spec := r.spec
				c := fmt.Sprintf("-c %d %d", r.packets, r.bytes)
				if i := strings.Index(spec, "-j "); i >= 0 {
					spec = spec[:i] + c + " " + spec[i:]
				} else {
					spec += " " + c
				}
				out = append(out, "-A "+chain+" "+spec)
			}
			return out, nil
		},
		newChain: func(table, chain string) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.mutating++
			if has(table, chain) {
				return fmt.Errorf("iptables: chain %s already exists", chain)
			}
			m.chains[table] = append(m.chains[table], chain)
			return nil
		},
		clearChain: func(table, chain string) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.mutating++
			if !has(table, chain) {
				m.chains[table] = append(m.chains[table], chain)
			}
			m.rules[key(table, chain)] = nil
			return nil
		},
		deleteChain: func(table, chain string) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.mutating++
			if !has(table, chain) {
				return notExist(table, chain)
			}
			if len(m.rules[key(table, chain)]) > 0 {
				return fmt.Errorf("iptables: chain %s is not empty", chain)
			}
			for _, c := range m.chains[table] {
				for _, r := range m.rules[key(table, c)] {
					if (listedRule{Spec: r.spec}).target() == chain {
						return fmt.Errorf("iptables: chain %s is still referenced", chain)
					}
				}
			}
			m.chains[table] = slices.DeleteFunc(m.chains[table], func(c string) bool { return c == chain })
			return nil
		},
		insert: func(table, chain string, pos int, spec []string) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.mutating++
			rs := m.rules[key(table, chain)]
			if !has(table, chain) || pos < 1 || pos > len(rs)+1 {
				return fmt.Errorf("iptables: bad insert %s %d", chain, pos)
			}
			if err := m.checkTarget(table, spec); err != nil {
				return err
			}
			m.rules[key(table, chain)] = slices.Insert(rs, pos-1, &memRule{spec: joinSpec(spec)})
			return nil
		},
		append: func(table, chain string, spec []string) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.mutating++
			if !has(table, chain) {
				return notExist(table, chain)
			}
			if err := m.checkTarget(table, spec); err != nil {
				return err
			}
			m.rules[key(table, chain)] = append(m.rules[key(table, chain)], &memRule{spec: joinSpec(spec)})
			return nil
		},
		delete: func(table, chain string, spec []string) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.mutating++
			rs := m.rules[key(table, chain)]
			for i, r := range rs {
				if r.spec == joinSpec(spec) {
					m.rules[key(table, chain)] = slices.Delete(rs, i, i+1)
					return nil
				}
			}
			return fmt.Errorf("iptables: bad rule (does a matching rule exist in that chain?)")
		},
		deleteAt: func(table, chain string, pos int) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.mutating++
			rs := m.rules[key(table, chain)]
			if pos < 1 || pos > len(rs) {
				return fmt.Errorf("iptables: index of deletion too big")
			}
			m.rules[key(table, chain)] = slices.Delete(rs, pos-1, pos)
			return nil
		},
	}
	fk := &fakeKernel{t: t,
		readSysctl: func(path string) (string, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			v, ok := m.sysctl[path]
			if !ok {
				return "", fmt.Errorf("open /proc/sys/%s: no such file or directory", path)
			}
			return v, nil
		},
		writeSysctl: func(path, value string) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.mutating++
			if _, ok := m.sysctl[path]; !ok {
				return fmt.Errorf("open /proc/sys/%s: no such file or directory", path)
			}
			m.sysctl[path] = value
			return nil
		},
		routes: func() ([]KernelRoute, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			return slices.Clone(m.routes), nil
		},
		replaceRoute: func(r KernelRoute) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.mutating++
			m.routes = slices.DeleteFunc(m.routes, func(k KernelRoute) bool { return k.Dst == r.Dst })
			m.routes = append(m.routes, r)
			return nil
		},
		deleteRoute: func(r KernelRoute) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.mutating++
			n := len(m.routes)
			m.routes = slices.DeleteFunc(m.routes, func(k KernelRoute) bool { return k.Dst == r.Dst })
			if len(m.routes) == n {
				return errors.New("RTNETLINK answers: No such process")
			}
			return nil
		},
		readDropin: func() ([]byte, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			return slices.Clone(m.dropin), nil
		},
		writeDropin: func(b []byte) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.mutating++
			m.dropin = slices.Clone(b)
			return nil
		},
		removeDropin: func() error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.mutating++
			m.dropin = nil
			return nil
		},
		firewalld: func() Firewalld {
			m.mu.Lock()
			defer m.mu.Unlock()
			return m.fw
		},
	}
	return ft, fk
}

// checkTarget refuses a jump to a chain that does not exist, as iptables
// does.
func (m *memNet) checkTarget(table string, spec []string) error {
	t := (listedRule{Spec: joinSpec(spec)}).target()
	if strings.HasPrefix(t, chainPrefix) && !slices.Contains(m.chains[table], t) {
		return fmt.Errorf("iptables: chain %s does not exist", t)
	}
	return nil
}

// readOnly removes every mutating function, so any change fails the test.
func readOnly(ft *fakeTables, fk *fakeKernel) {
	ft.newChain, ft.clearChain, ft.deleteChain = nil, nil, nil
	ft.insert, ft.append, ft.delete, ft.deleteAt = nil, nil, nil, nil
	fk.writeSysctl, fk.replaceRoute, fk.deleteRoute = nil, nil, nil
	fk.writeDropin, fk.removeDropin = nil, nil
}
