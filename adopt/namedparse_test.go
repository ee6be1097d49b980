package adopt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseNamed(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // the statements' Text, one a line
		wantErr  string
	}{
		{name: "options block", in: `options { allow-query { 127.0.0.1; 10/8; }; };`,
			want: "options { allow-query { 127.0.0.1; 10/8; }; };"},
		{name: "three comment kinds", in: "// c++\n# shell\n/* c\n multi */ recursion /* inline */ no; # end",
			want: "recursion no;"},
		{name: "quoted strings keep spaces and braces", in: `zone "a b{;}" IN { file "x\"y"; };`,
			want: `zone a b{;} IN { file x"y; };`},
		{name: "empty block", in: `controls { };`, want: "controls {  };"},
		{name: "words after a block", in: `key k { algorithm hmac-sha256; } extra;`, want: "key k { algorithm hmac-sha256; } extra;"},
		{name: "stray semicolons", in: `;; recursion yes;;`, want: "recursion yes;"},
		{name: "comment markers inside strings", in: `file "/a//b#c";`, want: "file /a//b#c;"},
		{name: "missing semicolon before brace", in: `options { recursion yes };`, wantErr: "missing ';'"},
		{name: "unclosed block", in: `options { recursion yes;`, wantErr: "missing '}'"},
		{name: "unclosed comment", in: `/* forever`, wantErr: "comment not closed"},
		{name: "unclosed string", in: `file "x;`, wantErr: "string not closed"},
		{name: "stray close", in: `};`, wantErr: "unexpected '}'"},
		{name: "no final semicolon", in: `recursion yes`, wantErr: "not ended by ';'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stmts, err := parseNamed("t.conf", []byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range stmts {
				got = append(got, s.Text())
			}
			if g := strings.Join(got, "\n"); g != tc.want {
				t.Errorf("got %q, want %q", g, tc.want)
			}
		})
	}
}

func TestParseNamedLines(t *testing.T) {
	stmts, err := parseNamed("t.conf", []byte("/* one\ntwo */\noptions {\n\tdirectory \"/x\";\n};\nzone \"z\" { type master; };\n"))
	if err != nil {
		t.Fatal(err)
	}
	if stmts[0].Pos.Line != 3 || stmts[0].Block[0].Pos.Line != 4 || stmts[1].Pos.Line != 6 {
		t.Errorf("lines %d %d %d, want 3 4 6", stmts[0].Pos.Line, stmts[0].Block[0].Pos.Line, stmts[1].Pos.Line)
	}
}

func TestLoadNamedIncludes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("named.conf", "include \"opts.conf\";\nzone \"a\" { type master; file \"a.zone\"; };\n")
	write("opts.conf", "options { include \"inner.conf\"; };\n")
	write("inner.conf", "recursion no;\n")
	write("loop.conf", "include \"loop.conf\";\n")
	stmts, err := loadNamed(filepath.Join(dir, "named.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(stmts) != 2 || stmts[0].Keyword() != "options" || stmts[0].Block[0].Text() != "recursion no;" {
		t.Fatalf("includes not spliced in place: %v", stmts)
	}
	if p := stmts[0].Block[0].Pos; !strings.HasSuffix(p.File, "inner.conf") || p.Line != 1 {
		t.Errorf("included statement at %s, want inner.conf:1", p)
	}
	if _, err := loadNamed(filepath.Join(dir, "loop.conf")); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("include loop: %v", err)
	}
	write("missing.conf", "include \"nope.conf\";\n")
	if _, err := loadNamed(filepath.Join(dir, "missing.conf")); err == nil || !strings.Contains(err.Error(), "missing.conf:1") {
		t.Errorf("missing include: %v", err)
	}
}

func TestResolveList(t *testing.T) {
	acls := map[string]*Stmt{}
	stmts, err := parseNamed("t.conf", []byte(`acl inner { 10.0.0.0/8; }; acl outer { inner; 192.168.10.0/24; }; acl self { self; };
list { outer; 127.0.0.1; !10.1.0.0/16; key k; localhost; any; 172.16.0.1/12; self; nosuch; { ::1; }; };`))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts[:3] {
		acls[s.Arg(1)] = s
	}
	l := resolveList(stmts[3].Block, aclScope{acls: acls})
	want := "10.0.0.0/8 192.168.10.0/24 127.0.0.1 127.0.0.0/8 ::1 0.0.0.0/0 ::/0 172.16.0.0/12"
	if got := strings.Join(l.cidrs, " "); got != want {
		t.Errorf("cidrs %q, want %q", got, want)
	}
	if len(l.lost) != 4 || len(l.approx) != 2 {
		t.Errorf("lost %q approx %q: want negation, key, the self loop and nosuch lost; localhost and the host bits approximate", l.lost, l.approx)
	}
	// Importing on the host itself, localhost and localnets are its
	// interfaces, as BIND means them.
	host := &HostNets{Addresses: []string{"127.0.0.1", "192.168.10.10"}, Networks: []string{"127.0.0.0/8", "192.168.10.0/24"}}
	for _, tc := range []struct{ name, want string }{
		{"localhost", "127.0.0.1 192.168.10.10"},
		{"localnets", "127.0.0.0/8 192.168.10.0/24"},
	} {
		stmts, err := parseNamed("t.conf", []byte("list { "+tc.name+"; };"))
		if err != nil {
			t.Fatal(err)
		}
		l := resolveList(stmts[0].Block, aclScope{host: host})
		if got := strings.Join(l.cidrs, " "); got != tc.want || len(l.approx) != 1 || !strings.Contains(l.approx[0], "this host's interfaces") {
			t.Errorf("%s on the host = %q (%q), want %q", tc.name, got, l.approx, tc.want)
		}
	}
}

func FuzzParseNamed(f *testing.F) {
	for _, seed := range []string{
		`options { allow-query { 127.0.0.1; }; forwarders { 1.1.1.1 port 53; }; };`,
		"zone \"x\" IN { type master; file \"x.zone\"; };\n# c\n// c\n/* c */",
		`acl a { !1.2.3.4; key "k"; { 10/8; }; };`, `"unclosed`, `/* unclosed`, `{{{;}}}`, `a { } b { };`,
	} {
		f.Add([]byte(seed))
	}
	for _, name := range []string{"testdata/seed/named.conf", "testdata/view/named.conf", "testdata/debian/named.conf.options"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		stmts, err := parseNamed("fuzz.conf", data)
		if err != nil {
			return
		}
		// Every statement knows its line, for the report.
		var check func([]*Stmt)
		check = func(ss []*Stmt) {
			for _, s := range ss {
				if s.Pos.Line < 1 {
					t.Fatalf("statement %q has line %d", s.Text(), s.Pos.Line)
				}
				check(s.Block)
			}
		}
		check(stmts)
	})
}
