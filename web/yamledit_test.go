package web

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const editSample = `# airgapd.yaml, written by hand
data_dir: /var/lib/airgapd   # state
web:
  listen: ":8443"
  tls: auto
dns:
  # local zones
  zones:
    - name: lab.internal
      records: ["admin 300 A 192.168.10.10", 'registry CNAME admin']   # flow
    - name: b.test.
      records:
        - "x 60 A 10.0.0.1"   # one
        - y 60 A 10.0.0.2
      ptr: true
# trailing comment
`

// changedLines reports the lines of b that differ from a, assuming only
// lines were replaced, added or removed at one place.
func lineDiff(a, b string) (removed, added []string) {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	i := 0
	for i < len(al) && i < len(bl) && al[i] == bl[i] {
		i++
	}
	j, k := len(al), len(bl)
	for j > i && k > i && al[j-1] == bl[k-1] {
		j--
		k--
	}
	return al[i:j], bl[i:k]
}

func TestZoneRecordEdits(t *testing.T) {
	cases := []struct {
		name          string
		edit          func([]byte) ([]byte, error)
		removed, adds []string
	}{
		{"add to flow list", func(b []byte) ([]byte, error) { return AddZoneRecord(b, "lab.internal.", "node1 300 A 192.168.10.21") },
			[]string{`      records: ["admin 300 A 192.168.10.10", 'registry CNAME admin']   # flow`},
			[]string{`      records: ["admin 300 A 192.168.10.10", 'registry CNAME admin', "node1 300 A 192.168.10.21"]   # flow`}},
		{"add to block list", func(b []byte) ([]byte, error) { return AddZoneRecord(b, "b.test", `z 60 TXT "hi there"`) },
			nil, []string{`        - "z 60 TXT \"hi there\""`}},
		{"delete first of flow list", func(b []byte) ([]byte, error) {
			return DeleteZoneRecord(b, "lab.internal", "admin 300 A 192.168.10.10")
		},
			[]string{`      records: ["admin 300 A 192.168.10.10", 'registry CNAME admin']   # flow`},
			[]string{`      records: ['registry CNAME admin']   # flow`}},
		{"delete last of flow list", func(b []byte) ([]byte, error) { return DeleteZoneRecord(b, "lab.internal", "registry CNAME admin") },
			[]string{`      records: ["admin 300 A 192.168.10.10", 'registry CNAME admin']   # flow`},
			[]string{`      records: ["admin 300 A 192.168.10.10"]   # flow`}},
		{"delete from block list", func(b []byte) ([]byte, error) { return DeleteZoneRecord(b, "b.test", "x 60 A 10.0.0.1") },
			[]string{`        - "x 60 A 10.0.0.1"   # one`}, nil},
		{"password into a section without admin", func(b []byte) ([]byte, error) { return SetPasswordHash(b, "$2a$10$abc") },
			nil, []string{`  admin: { password_hash: "$2a$10$abc" }`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.edit([]byte(editSample))
			if err != nil {
				t.Fatal(err)
			}
			var n yaml.Node
			if err := yaml.Unmarshal(out, &n); err != nil {
				t.Fatalf("result is not YAML: %v\n%s", err, out)
			}
			removed, added := lineDiff(editSample, string(out))
			if strings.Join(removed, "\n") != strings.Join(tc.removed, "\n") || strings.Join(added, "\n") != strings.Join(tc.adds, "\n") {
				t.Errorf("lines removed %q added %q; want removed %q added %q\n%s", removed, added, tc.removed, tc.adds, out)
			}
		})
	}
}

func TestSetPasswordHashReplacesOnlyTheValue(t *testing.T) {
	for _, in := range []string{
		"web:\n  admin: { password_hash: \"\" }  # keep\n",
		"web:\n  admin:\n    password_hash: ''   # keep\n",
		"web:\n  admin:\n    password_hash:\n",
		"web:\n  admin:\n    password_hash: \"$2a$10$old\"\n",
	} {
		out, err := SetPasswordHash([]byte(in), "$2a$10$new")
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		var c struct {
			Web Config `yaml:"web"`
		}
		if err := yaml.Unmarshal(out, &c); err != nil || c.Web.Admin.PasswordHash != "$2a$10$new" {
			t.Errorf("%q → %q: hash %q, %v", in, out, c.Web.Admin.PasswordHash, err)
		}
		if strings.Contains(in, "# keep") && !strings.Contains(string(out), "# keep") {
			t.Errorf("comment lost: %q", out)
		}
	}
	if _, err := SetPasswordHash([]byte("dns: {}\n"), "$2a$10$x"); err == nil || !strings.Contains(err.Error(), "no web: section") {
		t.Errorf("no web section: %v", err)
	}
}

func TestReplaceZoneRecord(t *testing.T) {
	for _, c := range []struct{ zone, old, rec, line string }{
		{"lab.internal", "registry CNAME admin", "registry 60 CNAME admin", `      records: ["admin 300 A 192.168.10.10", "registry 60 CNAME admin"]   # flow`},
		{"b.test", "x 60 A 10.0.0.1", "x 60 A 10.0.0.9", `        - "x 60 A 10.0.0.9"   # one`},
		{"b.test.", "y 60 A 10.0.0.2", "y 60 A 10.0.0.3", `        - "y 60 A 10.0.0.3"`},
	} {
		out, err := ReplaceZoneRecord([]byte(editSample), c.zone, c.old, c.rec)
		if err != nil {
			t.Fatalf("%s: %v", c.old, err)
		}
		removed, added := lineDiff(editSample, string(out))
		if len(removed) != 1 || len(added) != 1 || added[0] != c.line {
			t.Errorf("%s: removed %q added %q, want one line %q", c.old, removed, added, c.line)
		}
	}
	if _, err := ReplaceZoneRecord([]byte(editSample), "b.test", "nope", "z A 10.0.0.1"); err == nil {
		t.Error("replacing a missing record succeeded")
	}
	if _, err := ReplaceZoneRecord([]byte(editSample), "b.test", "y 60 A 10.0.0.2", "y 60 A 10.0.0.2"); err == nil {
		t.Error("an unchanged record was accepted")
	}
	if _, err := ReplaceZoneRecord([]byte(editSample), "b.test", "y 60 A 10.0.0.2", "a\nb"); err == nil {
		t.Error("a two-line record was accepted")
	}
}

// TestRecordTextOneLine: a record that yaml.v3 would read as more than one
// line, or that holds control characters, is refused before anything is
// written (issue 19 item 5).
func TestRecordTextOneLine(t *testing.T) {
	for _, rec := range []string{
		"x 60 TXT \"a\u0085b\"", // NEL: a line break to yaml.v3
		"x 60 TXT \"a\u2028b\"", // LS
		"x 60 TXT \"a\u2029b\"", // PS
		"x 60 TXT \"a\x01b\"",   // C0
		"x 60 TXT \"a\u009bb\"", // C1 (CSI)
		"x 60 TXT \"a\rb\"",
		"x 60 TXT \"a\xffb\"", // not UTF-8
	} {
		if _, err := AddZoneRecord([]byte(editSample), "b.test", rec); err == nil {
			t.Errorf("AddZoneRecord(%q) accepted", rec)
		}
		if _, err := ReplaceZoneRecord([]byte(editSample), "b.test", "y 60 A 10.0.0.2", rec); err == nil {
			t.Errorf("ReplaceZoneRecord(%q) accepted", rec)
		}
	}
	if _, err := AddZoneRecord([]byte(editSample), "b.test", "x 60 TXT \"tab\there\""); err != nil {
		t.Errorf("a tab in a record refused: %v", err)
	}
}

// TestEditsAfterAHandWrittenNEL: a file that already holds a NEL (yaml.v3
// counts it as a line break; a byte count of "\n" does not) still gets
// each edit on the record's own line.
func TestEditsAfterAHandWrittenNEL(t *testing.T) {
	src := strings.Replace(editSample, "data_dir: /var/lib/airgapd", "data_dir: \"/var/lib/air\u0085gapd\"", 1)
	if _, err := parseYAMLDoc([]byte(src)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		edit         func([]byte) ([]byte, error)
		removed, add []string
	}{
		{"delete", func(b []byte) ([]byte, error) { return DeleteZoneRecord(b, "b.test", "y 60 A 10.0.0.2") },
			[]string{"        - y 60 A 10.0.0.2"}, nil},
		{"replace", func(b []byte) ([]byte, error) {
			return ReplaceZoneRecord(b, "b.test", "y 60 A 10.0.0.2", "y 60 A 10.0.0.3")
		}, []string{"        - y 60 A 10.0.0.2"}, []string{`        - "y 60 A 10.0.0.3"`}},
		{"add", func(b []byte) ([]byte, error) { return AddZoneRecord(b, "b.test", "z 60 A 10.0.0.4") },
			nil, []string{`        - "z 60 A 10.0.0.4"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.edit([]byte(src))
			if err != nil {
				t.Fatal(err)
			}
			removed, added := lineDiff(src, string(out))
			if strings.Join(removed, "|") != strings.Join(tt.removed, "|") || strings.Join(added, "|") != strings.Join(tt.add, "|") {
				t.Errorf("removed %q added %q; want removed %q added %q", removed, added, tt.removed, tt.add)
			}
		})
	}
}
