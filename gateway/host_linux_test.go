package gateway

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseRoutes(t *testing.T) {
	js := `[{"dst":"default","gateway":"10.200.30.3","dev":"d0","flags":[]},{"dst":"10.98.0.5","dev":"d0","scope":"link","flags":[]},{"dst":"10.99.0.0/16","gateway":"10.200.30.2","dev":"d0","flags":[]}]`
	got, err := parseRoutes([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	want := []KernelRoute{
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.200.30.3"), Dev: "d0"},
		{Dst: netip.MustParsePrefix("10.98.0.5/32"), Dev: "d0"},
		{Dst: netip.MustParsePrefix("10.99.0.0/16"), Via: netip.MustParseAddr("10.200.30.2"), Dev: "d0"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if got[2].String() != "10.99.0.0/16 via 10.200.30.2 dev d0 proto 147" {
		t.Errorf("args %q", got[2])
	}
	if rs, err := parseRoutes([]byte("[]\n")); err != nil || len(rs) != 0 {
		t.Errorf("empty list: %v %v", rs, err)
	}
}

func TestParseBackend(t *testing.T) {
	for in, want := range map[string]string{
		"iptables v1.8.9 (nf_tables)\n": "nf_tables",
		"iptables v1.8.9 (legacy)\n":    "legacy",
		"iptables v1.4.21\n":            "legacy",
	} {
		if got := parseBackend(in); got != want {
			t.Errorf("parseBackend(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHasFirewalldTable(t *testing.T) {
	if !hasFirewalldTable("table ip filter\ntable inet firewalld\n") {
		t.Error("firewalld table not found")
	}
	if hasFirewalldTable("table ip nat\ntable inet firewalld_policy_x\n") {
		t.Error("found a firewalld table that is not there")
	}
}

// With no iptables on PATH the error says what to install.
func TestNoIPTablesBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := NewTables().Backend()
	if !errors.Is(err, errNoIPTables) {
		t.Fatalf("err = %v, want errNoIPTables", err)
	}
	t.Log(err)
}

// The drop-in is written atomically into the folder given, read back and
// removed; an absent file reads as nil.
func TestDropinFile(t *testing.T) {
	dir := t.TempDir()
	k := NewKernel(dir)
	if b, err := k.ReadDropin(); b != nil || err != nil {
		t.Fatalf("absent drop-in read as %q, %v", b, err)
	}
	want := []byte("net.ipv4.ip_forward = 1\n")
	if err := k.WriteDropin(want); err != nil {
		t.Fatal(err)
	}
	if b, err := k.ReadDropin(); string(b) != string(want) || err != nil {
		t.Fatalf("read back %q, %v", b, err)
	}
	if k.DropinPath() != filepath.Join(dir, "90-airgapd.conf") {
		t.Errorf("path %s", k.DropinPath())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
	if err := k.RemoveDropin(); err != nil {
		t.Fatal(err)
	}
	if err := k.RemoveDropin(); err != nil {
		t.Errorf("removing an absent drop-in: %v", err)
	}
}
