package dnsd

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airgapd/airgapd/internal/conf"
)

// zoneCheckCases are zones (after a fixed SOA, NS and the NS's address)
// that named-checkzone refuses, loads with data dropped, or loads whole.
// Targets of NS and MX stay inside the zone: named-checkzone would look
// outside ones up.
var zoneCheckCases = []struct {
	name    string
	records []string
	refuse  bool   // what airgapd says; the test checks named-checkzone agrees
	msg     string // part of airgapd's message when it refuses
}{
	{name: "plain names and an alias", records: []string{"admin 300 A 192.168.10.10", "k8s-node1 300 A 192.168.10.11", "registry CNAME admin"}},
	{name: "CNAME beside an A", records: []string{"k8s-node1 300 A 192.168.10.11", "k8s-node1 300 CNAME admin"}, refuse: true, msg: "CNAME and other data"},
	{name: "A beside a CNAME", records: []string{"k8s-node1 300 CNAME admin", "K8S-Node1 300 A 192.168.10.11"}, refuse: true, msg: "CNAME and other data"},
	{name: "CNAME beside a TXT", records: []string{"al CNAME ns", `al TXT "x"`}, refuse: true, msg: "CNAME and other data"},
	{name: "CNAME beside a DS", records: []string{"al CNAME ns", "al DS 1 8 2 " + strings.Repeat("00", 32)}, refuse: true, msg: "CNAME and other data"},
	{name: "CNAME beside a DNAME", records: []string{"al CNAME ns", "al DNAME example.test."}, refuse: true, msg: "CNAME and other data"},
	{name: "CNAME on a wildcard beside an A", records: []string{"*.apps CNAME ns", "*.apps A 192.168.10.20"}, refuse: true, msg: "CNAME and other data"},
	{name: "CNAME with its RRSIG and NSEC", records: []string{"al CNAME ns", "al RRSIG CNAME 8 3 300 20300101000000 20200101000000 1 lab.internal. AAAA", "al NSEC ns.lab.internal. CNAME RRSIG NSEC"}},
	{name: "CNAME with a KEY", records: []string{"al CNAME ns", "al KEY 256 3 8 AwEAAcg="}},
	{name: "two CNAMEs at one name", records: []string{"al CNAME ns", "al CNAME admin"}, refuse: true, msg: "singleton"},
	{name: "CNAME at the apex", records: []string{"@ CNAME ns"}, refuse: true, msg: "apex"},
	{name: "second SOA", records: []string{"@ SOA ns hostmaster 2 3600 600 86400 300"}, refuse: true, msg: "more than one SOA"},
	{name: "exact duplicate", records: []string{"k8s-node1 300 A 192.168.10.11", "k8s-node1 300 A 192.168.10.11"}, refuse: true, msg: "duplicate"},
	{name: "duplicate but for TTL and case", records: []string{"k8s-node1 300 A 192.168.10.11", "K8S-NODE1 600 A 192.168.10.11"}, refuse: true, msg: "duplicate"},
	{name: "duplicate MX", records: []string{"@ MX 10 ns", "@ MX 10 NS"}, refuse: true, msg: "duplicate"},
	{name: "TXT differing in case only", records: []string{`al TXT "a"`, `al TXT "A"`}},
	{name: "two addresses at one name", records: []string{"k8s-node1 A 192.168.10.11", "k8s-node1 A 192.168.10.12"}},
	{name: "name outside the zone", records: []string{"foo.example. A 192.0.2.1"}, refuse: true, msg: "outside the zone"},
	{name: "name in a zone with a longer label", records: []string{"x.notlab.internal. A 192.0.2.1"}, refuse: true, msg: "outside the zone"},
	{name: "apex NS that is a CNAME", records: []string{"al CNAME ns", "@ NS al"}, refuse: true, msg: "is a CNAME"},
	{name: "apex NS without an address", records: []string{"@ NS nothere"}, refuse: true, msg: "no address records"},
	{name: "apex NS found through a wildcard", records: []string{"@ NS x", "* A 192.168.10.30"}},
	{name: "apex NS that a wildcard makes a CNAME", records: []string{"@ NS x", "* CNAME ns"}, refuse: true, msg: "is a CNAME"},
	{name: "apex NS with glue below a delegation", records: []string{"@ NS ns.sub", "sub NS ns.sub", "ns.sub A 192.168.10.31"}},
	{name: "delegation NS that is a CNAME (a warning)", records: []string{"al CNAME ns", "sub NS al"}},
	{name: "MX that is a CNAME (a warning)", records: []string{"al CNAME ns", "@ MX 10 al"}},
	{name: "SRV that is a CNAME (a warning)", records: []string{"al CNAME ns", "_x._tcp SRV 0 0 1 al"}},
}

var zoneCheckHeader = []string{"@ 300 SOA ns hostmaster 1 3600 600 86400 300", "@ 300 NS ns", "ns 300 A 192.168.10.10"}

// TestZoneChecksAgreeWithNamedCheckzone runs the real named-checkzone on
// each case's zone and holds airgapd's verdict to it: airgapd refuses
// what named-checkzone refuses, and what it loads only in part (exact
// duplicates merged, out-of-zone names ignored), and accepts the rest,
// both for a zone file and for the same records written inline.
func TestZoneChecksAgreeWithNamedCheckzone(t *testing.T) {
	checkzone, err := exec.LookPath("named-checkzone")
	if err != nil {
		t.Skip("named-checkzone (bind9) is not installed")
	}
	for _, tc := range zoneCheckCases {
		t.Run(tc.name, func(t *testing.T) {
			records := append(append([]string{}, zoneCheckHeader...), tc.records...)
			file := filepath.Join(t.TempDir(), "lab.internal.zone")
			if err := os.WriteFile(file, []byte("$TTL 300\n"+strings.Join(records, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(checkzone, "lab.internal", file).CombinedOutput()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatalf("named-checkzone: %v", err)
			}
			namedRefuses := err != nil
			dump, _ := exec.Command(checkzone, "-D", "-o", "-", "lab.internal", file).Output()
			kept := countRecords(dump)
			namedDrops := !namedRefuses && kept < len(records)
			if namedRefuses || namedDrops {
				if !tc.refuse {
					t.Fatalf("named-checkzone refuses or drops data (kept %d of %d records) but the case says accept:\n%s", kept, len(records), out)
				}
			} else if tc.refuse {
				t.Fatalf("named-checkzone loads the zone whole but the case says refuse:\n%s", out)
			}

			for _, form := range []struct {
				name string
				zone Zone
			}{
				{"zone file", Zone{Name: "lab.internal", File: file}},
				{"inline", Zone{Name: "lab.internal", Records: records}},
			} {
				err := zoneConfig(form.zone).Validate()
				switch {
				case tc.refuse && err == nil:
					t.Errorf("%s: accepted; named-checkzone says:\n%s", form.name, out)
				case tc.refuse && !strings.Contains(err.Error(), tc.msg):
					t.Errorf("%s: refused with %q, want it to say %q", form.name, err, tc.msg)
				case !tc.refuse && err != nil:
					t.Errorf("%s: refused: %v\nnamed-checkzone says:\n%s", form.name, err, out)
				}
				if _, perr := parseZone(form.zone, ""); (perr != nil) != tc.refuse {
					t.Errorf("%s: loading the zone gives %v, want refused=%v", form.name, perr, tc.refuse)
				}
			}
		})
	}
}

func zoneConfig(z Zone) Config {
	cfg := DefaultConfig()
	cfg.Zones = []Zone{z}
	return cfg
}

// countRecords counts the records in named-checkzone's dump of a zone.
func countRecords(dump []byte) int {
	n := 0
	for _, l := range bytes.Split(dump, []byte("\n")) {
		if s := bytes.TrimSpace(l); len(s) > 0 && s[0] != ';' {
			n++
		}
	}
	return n
}

// TestZoneProblemsArePlaced checks a problem points at the record: its
// list item when inline, its line (where the entry starts) in a zone file.
func TestZoneProblemsArePlaced(t *testing.T) {
	file := filepath.Join(t.TempDir(), "lab.internal.zone")
	text := "$TTL 300\n" +
		"@ SOA ns hostmaster (\n  1 3600 600\n  86400 300 )\n" + // lines 2-4
		"@ NS ns\n" + // 5
		"; a comment\n\n" + // 6, 7
		"ns A 192.168.10.10\n" + // 8
		"k8s-node1 A 192.168.10.11\n" + // 9
		"k8s-node1 CNAME admin\n" + // 10
		"ns A 192.168.10.10\n" + // 11
		"$GENERATE 1-3 node$ A 192.168.10.$\n" + // 12
		"node3 A 192.168.10.3" // 13, no final newline
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := zoneConfig(Zone{Name: "lab.internal", File: file, Records: []string{
		"admin 300 A 192.168.10.10",
		"k8s-node2 A 192.168.10.12",
		"k8s-node2 CNAME admin",
		"k8s-node1 A 192.168.10.11",
	}})
	var ps conf.Problems
	if !errors.As(cfg.Validate(), &ps) {
		t.Fatal("the zone was accepted")
	}
	type place struct {
		path, file string
		line       int
		msg        string
	}
	want := []place{
		{"zones[0].records[2]", "", 0, "CNAME and other data: k8s-node2.lab.internal. has both a CNAME and a record of type A (the other is at records[1] (\"k8s-node2 A 192.168.10.12\"))"},
		{"zones[0].file", file, 9, "duplicate record: k8s-node1.lab.internal. A is already in the zone at records[3] (\"k8s-node1 A 192.168.10.11\")"},
		{"zones[0].file", file, 10, "CNAME and other data"},
		{"zones[0].file", file, 11, "duplicate record: ns.lab.internal. A is already in the zone at " + file + ":8"},
		{"zones[0].file", file, 13, "duplicate record: node3.lab.internal. A is already in the zone at " + file + ":12"},
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(want), ps)
	}
	for i, w := range want {
		p := ps[i]
		if p.Path != w.path || p.File != w.file || p.Line != w.line || !strings.Contains(p.Msg, w.msg) {
			t.Errorf("problem %d = %+v\nwant %+v", i, p, w)
		}
	}
}

// TestZoneFileSyntaxErrorIsPlaced: a zone file line that does not parse is
// reported at that line of the zone file.
func TestZoneFileSyntaxErrorIsPlaced(t *testing.T) {
	file := filepath.Join(t.TempDir(), "lab.internal.zone")
	if err := os.WriteFile(file, []byte("$TTL 300\nadmin A 192.168.10.10\n\nk8s-node1 A 999.1.1.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var ps conf.Problems
	if !errors.As(zoneConfig(Zone{Name: "lab.internal", File: file}).Validate(), &ps) || len(ps) != 1 {
		t.Fatalf("want one problem, got %v", ps)
	}
	if p := ps[0]; p.Path != "zones[0].file" || p.File != file || p.Line != 4 || !strings.Contains(p.Msg, `bad A A: "999.1.1.1"`) {
		t.Errorf("problem = %+v, want %s line 4: bad A", p, file)
	}
}
