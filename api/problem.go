package api

import (
	"fmt"
	"strings"
)

// ConfigProblem is one problem found in a config, at its place: what
// `airgapd check` prints, what the settings page marks and what the API's
// config endpoints answer with.
type ConfigProblem struct {
	// File names the config; empty when the problem is about a text being
	// edited (the settings page), where only the line matters.
	File string `json:"file,omitempty"`
	Line int    `json:"line"` // 0 when unknown
	Col  int    `json:"col"`
	Path string `json:"path,omitempty"` // dotted key path, e.g. dns.allow_query[1]
	Msg  string `json:"msg"`
	Hint string `json:"hint,omitempty"`
	// Warning: worth knowing, not wrong (an address not on this host yet);
	// `airgapd check` still exits 0 on warnings alone.
	Warning bool `json:"warning,omitempty"`
}

// String is FILE:LINE:COL: PATH: MSG (hint: HINT) as named-checkconf
// prints it, or "line LINE: PATH: MSG (hint: HINT)" without a file.
func (p ConfigProblem) String() string {
	var b strings.Builder
	switch {
	case p.File != "":
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", p.Line, p.Col)
		}
		b.WriteString(": ")
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Warning {
		b.WriteString("warning: ")
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	if p.Hint != "" {
		b.WriteString(" (hint: " + p.Hint + ")")
	}
	return b.String()
}
