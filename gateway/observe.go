package gateway

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// listedRule is one rule from `iptables -v -S`.
type listedRule struct {
	Spec           string // arguments after "-A CHAIN", counters removed
	Packets, Bytes uint64
}

// target is the rule's -j argument.
func (r listedRule) target() string {
	args := splitSpec(r.Spec)
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-j" || args[i] == "-g" {
			return args[i+1]
		}
	}
	return ""
}

// listedChain is a chain as `iptables -v -S CHAIN` printed it.
type listedChain struct {
	Policy string // built-in chains only
	Rules  []listedRule
}

// parseListing reads the lines of `iptables -t T -v -S CHAIN`.
func parseListing(chain string, lines []string) (listedChain, error) {
	var lc listedChain
	for _, line := range lines {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || line == "-N "+chain:
		case strings.HasPrefix(line, "-P "+chain+" "):
			f := strings.Fields(line)
			lc.Policy = f[2]
		case strings.HasPrefix(line, "-A "+chain+" "):
			lc.Rules = append(lc.Rules, parseRule(strings.TrimPrefix(line, "-A "+chain+" ")))
		default:
			return lc, fmt.Errorf("chain %s: unexpected line %q", chain, line)
		}
	}
	return lc, nil
}

// parseRule takes the counters ("-c PACKETS BYTES", wherever iptables put
// them) out of a rule spec.
func parseRule(spec string) listedRule {
	args := splitSpec(spec)
	var r listedRule
	var keep []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-c" && i+2 < len(args) {
			p, err1 := strconv.ParseUint(args[i+1], 10, 64)
			b, err2 := strconv.ParseUint(args[i+2], 10, 64)
			if err1 == nil && err2 == nil {
				r.Packets, r.Bytes = p, b
				i += 2
				continue
			}
		}
		keep = append(keep, args[i])
	}
	r.Spec = joinSpec(keep)
	return r
}

// joinSpec is the inverse of splitSpec: arguments with spaces or quotes are
// quoted the way iptables -S quotes them.
func joinSpec(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \"\\") {
			a = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a) + `"`
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// observed is what the kernel holds that the gateway cares about.
type observed struct {
	Backend   string
	Chains    map[string][]string    // table → chains
	Listed    map[string]listedChain // "table/chain" → rules, for hooks and existing owned chains
	Sysctls   map[string]string      // path → value, for the wanted sysctls
	SysctlErr map[string]error
	Routes    []KernelRoute // airgapd's
	Dropin    []byte
	Firewalld Firewalld
}

func key(table, chain string) string { return table + "/" + chain }

func (o observed) hasChain(table, chain string) bool {
	return slices.Contains(o.Chains[table], chain)
}

// errIPTables marks errors from reading iptables, so plan mode can say
// what it could not see.
var errIPTables = errors.New("cannot read iptables")

// observe reads the kernel. Reading never changes anything.
func observe(t Tables, k Kernel, want desired) (observed, error) {
	o := observed{Chains: map[string][]string{}, Listed: map[string]listedChain{}, Sysctls: map[string]string{}, SysctlErr: map[string]error{}}
	var err error
	if o.Backend, err = t.Backend(); err != nil {
		return o, fmt.Errorf("%w: %w", errIPTables, err)
	}
	for _, table := range []string{"nat", "filter"} {
		if o.Chains[table], err = t.ListChains(table); err != nil {
			return o, fmt.Errorf("%w: list %s chains: %w", errIPTables, table, err)
		}
	}
	for _, oc := range ownedChains() {
		for _, ch := range []string{oc.Hook, oc.Chain} {
			if !o.hasChain(oc.Table, ch) {
				continue
			}
			lines, err := t.List(oc.Table, ch)
			if err != nil {
				return o, fmt.Errorf("%w: list %s %s: %w", errIPTables, oc.Table, ch, err)
			}
			lc, err := parseListing(ch, lines)
			if err != nil {
				return o, fmt.Errorf("%w: %w", errIPTables, err)
			}
			o.Listed[key(oc.Table, ch)] = lc
		}
	}
	var errs []error
	for _, s := range want.Sysctls {
		v, err := k.ReadSysctl(s.Path)
		if err != nil {
			o.SysctlErr[s.Path] = err
			continue
		}
		o.Sysctls[s.Path] = strings.TrimSpace(v)
	}
	if v, err := k.ReadSysctl(ipForwardPath); err == nil {
		o.Sysctls[ipForwardPath] = strings.TrimSpace(v)
	}
	if o.Routes, err = k.Routes(); err != nil {
		errs = append(errs, fmt.Errorf("list routes: %w", err))
	}
	if o.Dropin, err = k.ReadDropin(); err != nil {
		errs = append(errs, fmt.Errorf("read %s: %w", k.DropinPath(), err))
	}
	o.Firewalld = k.Firewalld()
	return o, errors.Join(errs...)
}
