package adopt

import (
	"fmt"
	"io"
	"strings"
)

// Outcome says how one source line landed in airgapd.yaml.
type Outcome int

// The three outcomes of the report, plus Skipped for lines that carry
// nothing to import (a default written out, a disabled repo), still listed
// so that nothing is dropped silently.
const (
	Mapped Outcome = iota
	Approximate
	NoEquivalent
)

func (o Outcome) String() string {
	switch o {
	case Mapped:
		return "mapped"
	case Approximate:
		return "approximately mapped"
	default:
		return "no equivalent"
	}
}

// Pos is a place in a source file.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Item is one source statement and what became of it.
type Item struct {
	Pos     Pos
	Text    string // the statement as written, shortened
	Outcome Outcome
	Note    string // where it went, or why not
}

// Report lists every imported statement.
type Report struct {
	Items []Item
}

func (r *Report) add(p Pos, text string, o Outcome, format string, args ...any) {
	r.Items = append(r.Items, Item{Pos: p, Text: shorten(text), Outcome: o, Note: strings.TrimSpace(fmt.Sprintf(format, args...))})
}

// Count returns how many items have outcome o.
func (r *Report) Count(o Outcome) int {
	n := 0
	for _, it := range r.Items {
		if it.Outcome == o {
			n++
		}
	}
	return n
}

// WriteTo prints the report grouped by outcome, each line as
// FILE:LINE: TEXT → NOTE.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	for _, o := range []Outcome{Mapped, Approximate, NoEquivalent} {
		fmt.Fprintf(&b, "%s (%d):\n", o, r.Count(o))
		for _, it := range r.Items {
			if it.Outcome == o {
				fmt.Fprintf(&b, "  %s: %s\n      → %s\n", it.Pos, it.Text, it.Note)
			}
		}
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}
