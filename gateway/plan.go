package gateway

import (
	"bytes"
	"fmt"
	"strings"
)

// Op is one kind of change.
type Op int

// The changes a plan is made of.
const (
	OpNewChain     Op = iota // iptables -N
	OpInsert                 // iptables -I CHAIN POS
	OpAppend                 // iptables -A
	OpDelete                 // iptables -D CHAIN SPEC
	OpDeleteAt               // iptables -D CHAIN POS (airgapd's own chains only)
	OpFlush                  // iptables -F
	OpDeleteChain            // iptables -X
	OpSysctl                 // write /proc/sys
	OpRouteReplace           // ip route replace
	OpRouteDelete            // ip route del
	OpDropinWrite            // write the sysctl.d drop-in
	OpDropinRemove           // remove it
)

// Step is one change to the kernel (or the drop-in file).
type Step struct {
	Op    Op
	Table string
	Chain string
	Pos   int    // OpInsert, OpDeleteAt: 1-based rule number
	Rule  string // rule spec (OpInsert, OpAppend, OpDelete); the rule removed (OpDeleteAt)
	Path  string // sysctl path under /proc/sys
	Value string // sysctl value
	Was   string // the sysctl's value before, for the plan
	Route KernelRoute
	File  string // drop-in path
	Data  []byte // drop-in content
}

func (s Step) iptables() bool { return s.Op <= OpDeleteChain }

// String is the step in iptables-save syntax (without the *table line), or
// as the sysctl / ip command that does the same.
func (s Step) String() string {
	switch s.Op {
	case OpNewChain:
		return ":" + s.Chain + " - [0:0]"
	case OpInsert:
		return fmt.Sprintf("-I %s %d %s", s.Chain, s.Pos, s.Rule)
	case OpAppend:
		return fmt.Sprintf("-A %s %s", s.Chain, s.Rule)
	case OpDelete:
		return fmt.Sprintf("-D %s %s", s.Chain, s.Rule)
	case OpDeleteAt:
		return fmt.Sprintf("-D %s %d", s.Chain, s.Pos)
	case OpFlush:
		return "-F " + s.Chain
	case OpDeleteChain:
		return "-X " + s.Chain
	case OpSysctl:
		line := fmt.Sprintf("sysctl -w %s=%s", sysctlName(s.Path), s.Value)
		if s.Was != "" {
			line += "   # from " + s.Was
		}
		return line
	case OpRouteReplace:
		return "ip route replace " + s.Route.String()
	case OpRouteDelete:
		return "ip route del " + s.Route.String()
	case OpDropinWrite:
		return "write " + s.File
	case OpDropinRemove:
		return "rm " + s.File
	}
	return fmt.Sprintf("op %d", s.Op)
}

// Plan is an ordered list of changes, with what was noticed on the way.
type Plan struct {
	Steps []Step `json:"-"`
	// Notes are things the operator should know that are not changes:
	// foreign rules in FORWARD, firewalld, values left alone.
	Notes []string `json:"notes,omitempty"`
}

// Empty reports whether nothing needs to change.
func (p Plan) Empty() bool { return len(p.Steps) == 0 }

// Lines is the plan as text: iptables steps grouped by table in
// iptables-save syntax (`*nat` … `COMMIT`, a comment naming each rule a
// numbered delete removes), then sysctl, route and file lines. The
// iptables part can be fed to `iptables-restore --noflush`.
func (p Plan) Lines() []string {
	var out []string
	table := ""
	for _, s := range p.Steps {
		if !s.iptables() {
			continue
		}
		if s.Table != table {
			if table != "" {
				out = append(out, "COMMIT")
			}
			table = s.Table
			out = append(out, "*"+table)
		}
		if s.Op == OpDeleteAt {
			out = append(out, fmt.Sprintf("# rule %d of %s is: %s", s.Pos, s.Chain, s.Rule))
		}
		out = append(out, s.String())
	}
	if table != "" {
		out = append(out, "COMMIT")
	}
	for _, s := range p.Steps {
		if !s.iptables() {
			out = append(out, s.String())
		}
	}
	return out
}

// String is Lines, one per line, or a sentence when nothing would change.
func (p Plan) String() string {
	if p.Empty() {
		return "# no changes: the kernel already matches the config\n"
	}
	var b bytes.Buffer
	for _, l := range p.Lines() {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// Changes are the steps as one-line strings, table-qualified, for logs and
// drift events.
func (p Plan) Changes() []string {
	out := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		if s.iptables() {
			out[i] = "-t " + s.Table + " " + s.String()
		} else {
			out[i] = s.String()
		}
	}
	return out
}

// diff compares the wanted state with the kernel's and returns the steps
// that make the kernel match, in the order they must run: for each table,
// missing chains and their rules before the jumps that reach them; then
// sysctls (forwarding goes on only once the rules are there), routes and
// the drop-in.
func diff(want desired, have observed, dropinPath string) Plan {
	var p Plan
	for _, oc := range ownedChains() {
		rules := want.Rules[oc.Chain]
		if !have.hasChain(oc.Table, oc.Chain) {
			p.Steps = append(p.Steps, Step{Op: OpNewChain, Table: oc.Table, Chain: oc.Chain})
			for _, r := range rules {
				p.Steps = append(p.Steps, Step{Op: OpAppend, Table: oc.Table, Chain: oc.Chain, Rule: r})
			}
		} else {
			var cur []string
			for _, r := range have.Listed[key(oc.Table, oc.Chain)].Rules {
				cur = append(cur, r.Spec)
			}
			p.Steps = append(p.Steps, diffChain(oc.Table, oc.Chain, cur, rules)...)
		}
		p.Steps = append(p.Steps, diffJump(oc, have.Listed[key(oc.Table, oc.Hook)])...)
	}
	// Keep the tables together so Lines prints one block per table.
	p.Steps = groupByTable(p.Steps)

	for _, s := range want.Sysctls {
		cur, ok := have.Sysctls[s.Path]
		if ok && cur == s.Value {
			continue
		}
		was := cur
		if err := have.SysctlErr[s.Path]; err != nil {
			was = "unreadable: " + err.Error()
		}
		p.Steps = append(p.Steps, Step{Op: OpSysctl, Path: s.Path, Value: s.Value, Was: was})
	}
	for _, r := range want.Routes {
		ok := false
		for _, k := range have.Routes {
			ok = ok || r.satisfiedBy(k)
		}
		if !ok {
			p.Steps = append(p.Steps, Step{Op: OpRouteReplace, Route: r})
		}
	}
	for _, k := range have.Routes {
		wanted := false
		for _, r := range want.Routes {
			wanted = wanted || r.Dst == k.Dst
		}
		if !wanted {
			p.Steps = append(p.Steps, Step{Op: OpRouteDelete, Route: k})
		}
	}
	switch {
	case want.Dropin != nil && !bytes.Equal(want.Dropin, have.Dropin):
		p.Steps = append(p.Steps, Step{Op: OpDropinWrite, File: dropinPath, Data: want.Dropin})
	case want.Dropin == nil && have.Dropin != nil:
		p.Steps = append(p.Steps, Step{Op: OpDropinRemove, File: dropinPath})
	}
	p.Notes = notes(have)
	return p
}

func groupByTable(steps []Step) []Step {
	var out []Step
	for _, t := range []string{"nat", "filter"} {
		for _, s := range steps {
			if s.Table == t {
				out = append(out, s)
			}
		}
	}
	return out
}

// diffJump makes sure the built-in chain's first rule is the one jump to
// airgapd's chain, and that there is no other. Rules in a shared chain are
// only ever deleted by their exact text, never by number, so a rule
// another tool inserted meanwhile cannot be hit.
func diffJump(oc ownedChain, hook listedChain) []Step {
	jump := jumpSpec(oc.Chain)
	n, first := 0, false
	for i, r := range hook.Rules {
		if r.Spec == jump {
			n++
			first = first || i == 0
		}
	}
	if n == 1 && first {
		return nil
	}
	var steps []Step
	for range n {
		steps = append(steps, Step{Op: OpDelete, Table: oc.Table, Chain: oc.Hook, Rule: jump})
	}
	return append(steps, Step{Op: OpInsert, Table: oc.Table, Chain: oc.Hook, Pos: 1, Rule: jump})
}

// diffChain edits one of airgapd's own chains from have into want, keeping
// the longest run of rules already in the right order (with their
// counters): missing rules are inserted first, then the rest deleted by
// number from the bottom up, so a rule that stays never disappears for a
// moment.
func diffChain(table, chain string, have, want []string) []Step {
	keepHave, keepWant := lcs(have, want)
	type entry struct {
		spec string
		keep bool
		want int // index in want, -1 for a rule that goes
	}
	cur := make([]*entry, len(have))
	for i, h := range have {
		cur[i] = &entry{spec: h, keep: keepHave[i] >= 0, want: keepHave[i]}
	}
	indexOf := func(e *entry) int {
		for i, c := range cur {
			if c == e {
				return i
			}
		}
		return -1
	}
	byWant := make([]*entry, len(want))
	for _, e := range cur {
		if e.keep {
			byWant[e.want] = e
		}
	}
	var steps []Step
	after := -1 // index in cur of the last wanted rule in place
	for wi, w := range want {
		if keepWant[wi] >= 0 {
			after = indexOf(byWant[wi])
			continue
		}
		e := &entry{spec: w, keep: true, want: wi}
		pos := after + 1
		cur = append(cur[:pos], append([]*entry{e}, cur[pos:]...)...)
		if pos == len(cur)-1 {
			steps = append(steps, Step{Op: OpAppend, Table: table, Chain: chain, Rule: w})
		} else {
			steps = append(steps, Step{Op: OpInsert, Table: table, Chain: chain, Pos: pos + 1, Rule: w})
		}
		after = pos
	}
	for i := len(cur) - 1; i >= 0; i-- {
		if !cur[i].keep {
			steps = append(steps, Step{Op: OpDeleteAt, Table: table, Chain: chain, Pos: i + 1, Rule: cur[i].spec})
		}
	}
	return steps
}

// lcs matches the longest common subsequence of a and b: ai[i] is the index
// in b that a[i] is matched with, or -1; bi likewise.
func lcs(a, b []string) (ai, bi []int) {
	n, m := len(a), len(b)
	l := make([][]int, n+1)
	for i := range l {
		l[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	ai, bi = make([]int, n), make([]int, m)
	for i := range ai {
		ai[i] = -1
	}
	for j := range bi {
		bi[j] = -1
	}
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case a[i] == b[j]:
			ai[i], bi[j] = j, i
			i++
			j++
		case l[i+1][j] >= l[i][j+1]:
			i++
		default:
			j++
		}
	}
	return ai, bi
}

// downPlan removes every jump to airgapd's chains, the chains, airgapd's
// routes and the drop-in. Sysctls stay as they are: other software (a
// container runtime, libvirt) may rely on forwarding too.
func downPlan(have observed, dropinPath string) Plan {
	var p Plan
	for _, oc := range ownedChains() {
		for _, r := range have.Listed[key(oc.Table, oc.Hook)].Rules {
			if strings.HasPrefix(r.target(), chainPrefix) {
				p.Steps = append(p.Steps, Step{Op: OpDelete, Table: oc.Table, Chain: oc.Hook, Rule: r.Spec})
			}
		}
	}
	for _, oc := range ownedChains() {
		if !have.hasChain(oc.Table, oc.Chain) {
			continue
		}
		if len(have.Listed[key(oc.Table, oc.Chain)].Rules) > 0 {
			p.Steps = append(p.Steps, Step{Op: OpFlush, Table: oc.Table, Chain: oc.Chain})
		}
		p.Steps = append(p.Steps, Step{Op: OpDeleteChain, Table: oc.Table, Chain: oc.Chain})
	}
	p.Steps = groupByTable(p.Steps)
	for _, r := range have.Routes {
		p.Steps = append(p.Steps, Step{Op: OpRouteDelete, Route: r})
	}
	if have.Dropin != nil {
		p.Steps = append(p.Steps, Step{Op: OpDropinRemove, File: dropinPath})
	}
	if v := have.Sysctls[ipForwardPath]; v == "1" {
		p.Notes = append(p.Notes, "net.ipv4.ip_forward stays 1 (other software may need it); turn it off with `sysctl -w net.ipv4.ip_forward=0` if nothing does")
	}
	return p
}

// notes says what the operator should know about the neighbours.
func notes(have observed) []string {
	var out []string
	fwd := have.Listed[key("filter", "FORWARD")]
	var foreign []string
	for _, r := range fwd.Rules {
		if r.Spec != jumpSpec(ChainForward) {
			foreign = append(foreign, r.Spec)
		}
	}
	if len(foreign) > 0 || fwd.Policy == "DROP" {
		n := fmt.Sprintf("FORWARD holds %d other rule(s) and policy %s; airgapd's jump goes first, so their REJECT/DROP rules do not shadow the nodes' traffic", len(foreign), fwd.Policy)
		if len(foreign) > 0 {
			n += " (first: " + foreign[0] + ")"
		}
		out = append(out, n)
	}
	if have.Firewalld.NFTables {
		out = append(out, "firewalld is active with its nftables backend: its drops win over iptables ACCEPTs, so it must allow the nodes' traffic too, e.g. `firewall-cmd --permanent --zone=external --add-masquerade` with the external interface in that zone and the internal one in a trusted zone (`firewall-cmd --permanent --zone=trusted --add-interface=IFACE`), then `firewall-cmd --reload`")
	} else if have.Firewalld.Running {
		out = append(out, "firewalld is running (iptables backend); a `firewall-cmd --reload` flushes airgapd's rules until the next reconcile")
	}
	return out
}
