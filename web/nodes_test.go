package web

import (
	"strings"
	"testing"
)

func TestParseChecklist(t *testing.T) {
	cases := []struct {
		body  string
		lines int
		fails int
		ok    bool
	}{
		{"PASS  chrony selected the admin host\nFAIL  the default route goes via 10.0.0.1\n", 2, 1, true},
		{"PASS  a\r\n\r\nPASS  b\r\n", 2, 0, true},
		{"", 0, 0, false},
		{"PASS a\n", 0, 0, false},            // one space: not node.sh's
		{"OK  a\n", 0, 0, false},             // not PASS/FAIL
		{"PASS  \x1b[31mred\n", 0, 0, false}, // control characters
		{strings.Repeat("PASS  x\n", 65), 0, 0, false},
	}
	for _, tc := range cases {
		lines, fails, err := parseChecklist(strings.NewReader(tc.body))
		if (err == nil) != tc.ok || len(lines) != tc.lines || fails != tc.fails {
			t.Errorf("parseChecklist(%q) = %d lines, %d fails, %v", tc.body, len(lines), fails, err)
		}
	}
}

// FuzzParseChecklist: whatever a node sends, the parser keeps at most 64
// printable PASS/FAIL lines and never panics.
func FuzzParseChecklist(f *testing.F) {
	for _, s := range []string{"PASS  a\nFAIL  b\n", "", "PASS  \xff\n", strings.Repeat("FAIL  y\n", 70), "PASS  a\rFAIL  b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		lines, fails, err := parseChecklist(strings.NewReader(body))
		if err != nil {
			return
		}
		if len(lines) == 0 || len(lines) > 64 || fails > len(lines) {
			t.Fatalf("%d lines, %d fails", len(lines), fails)
		}
		for _, l := range lines {
			if !checkLine.MatchString(l) {
				t.Fatalf("kept %q", l)
			}
		}
	})
}
