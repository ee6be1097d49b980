package server

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckPlacesZoneProblems: a record that named-checkzone would refuse
// is reported at its list item when inline and at its line of the zone
// file when it comes from file:.
func TestCheckPlacesZoneProblems(t *testing.T) {
	zone := filepath.Join(t.TempDir(), "lab.internal.zone")
	if err := os.WriteFile(zone, []byte("$TTL 300\n; hosts\nk8s-node2 A 192.168.10.12\nk8s-node2 CNAME admin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := "dns:\n  zones:\n    - name: lab.internal\n      file: " + zone + "\n      records:\n" +
		"        - admin 300 A 192.168.10.10\n" +
		"        - k8s-node1 300 A 192.168.10.11\n" +
		"        - k8s-node1 300 CNAME admin\n" +
		"        - admin 300 A 192.168.10.10\n"
	_, err := Parse("f.yaml", []byte(yaml))
	var ce *CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *CheckError", err)
	}
	want := []string{
		`f.yaml:8:11: dns.zones[0].records[2]: CNAME and other data: k8s-node1.lab.internal. has both a CNAME and a record of type A (the other is at records[1] ("k8s-node1 300 A 192.168.10.11"))`,
		`f.yaml:9:11: dns.zones[0].records[3]: duplicate record: admin.lab.internal. A is already in the zone at records[0] ("admin 300 A 192.168.10.10")`,
		zone + `:4:1: dns.zones[0].file: CNAME and other data: k8s-node2.lab.internal. has both a CNAME and a record of type A (the other is at ` + zone + `:3)`,
	}
	if len(ce.Diagnostics) != len(want) {
		t.Fatalf("got %d diagnostics, want %d:\n%v", len(ce.Diagnostics), len(want), err)
	}
	for i, w := range want {
		if got := ce.Diagnostics[i].String(); !strings.HasPrefix(got, w) {
			t.Errorf("diagnostic %d = %q\nwant it to start with %q", i, got, w)
		}
	}
}
