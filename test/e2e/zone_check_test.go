package e2e

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestZoneRecordChecks: a record named-checkzone would refuse (CNAME and
// other data) or drop (a duplicate, a name outside the zone) is refused by
// the DNS page and the API with check's message, nothing written; and
// `airgapd check` places a zone file's problem at its line.
func TestZoneRecordChecks(t *testing.T) {
	ws := startWebServer(t)
	c := ws.login(t)
	code, body, _ := ws.do(t, c, "POST", "/dns/records", "zone=lab.internal&record="+url.QueryEscape("k8s-node1 300 A 192.168.10.11"), nil)
	if code != 200 || !strings.Contains(body, "Record added") {
		t.Fatalf("add k8s-node1 A: %d\n%s", code, body)
	}
	before, _ := os.ReadFile(ws.config)
	refused := []struct {
		name, method, path, body, want string
	}{
		{"CNAME beside an A (form)", "POST", "/dns/records", "zone=lab.internal&record=" + url.QueryEscape("k8s-node1 300 CNAME admin"), "CNAME and other data"},
		{"A beside a CNAME (API)", "POST", "/api/v1/dns/records", `{"zone":"lab.internal","record":"registry 300 A 127.0.0.2"}`, "CNAME and other data"},
		{"duplicate (API)", "POST", "/api/v1/dns/records", `{"zone":"lab.internal","record":"admin 300 A 127.0.0.1"}`, "duplicate record"},
		{"out of the zone (form)", "POST", "/dns/records", "zone=lab.internal&record=" + url.QueryEscape("www.example.test. A 192.0.2.1"), "outside the zone"},
		{"edit into a clash (form)", "POST", "/dns/records/edit", "zone=lab.internal&old=" + url.QueryEscape("k8s-node1 300 A 192.168.10.11") + "&record=" + url.QueryEscape("registry 300 A 192.168.10.11"), "CNAME and other data"},
		{"edit into a duplicate (API)", "PUT", "/api/v1/dns/records", `{"zone":"lab.internal","old":"k8s-node1 300 A 192.168.10.11","record":"admin 300 A 127.0.0.1"}`, "duplicate record"},
	}
	for _, tc := range refused {
		code, body, _ := ws.do(t, c, tc.method, tc.path, tc.body, nil)
		if code != 422 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d, want 422 saying %q:\n%s", tc.name, code, tc.want, body)
		}
		if now, _ := os.ReadFile(ws.config); string(now) != string(before) {
			t.Errorf("%s: the config file changed", tc.name)
		}
	}
	if got := digShort(t, ws.dns, "k8s-node1.lab.internal"); got != "192.168.10.11" {
		t.Errorf("dig k8s-node1.lab.internal = %q, want 192.168.10.11", got)
	}

	dir := t.TempDir()
	zone := filepath.Join(dir, "lab.internal.zone")
	writeFile(t, zone, "$TTL 300\n; the lab\nk8s-node1 A 192.168.10.11\n\nk8s-node1 CNAME admin\n")
	config := filepath.Join(dir, "airgapd.yaml")
	writeFile(t, config, "dns:\n  zones:\n    - name: lab.internal\n      file: "+zone+"\n      records: [\"admin A 192.168.10.10\", \"admin A 192.168.10.10\"]\n")
	out, err := exec.Command(airgapdBin, "check", "--config", config).Output()
	if err == nil {
		t.Fatalf("check accepted the zone:\n%s", out)
	}
	want := []string{
		config + ":5:42: dns.zones[0].records[1]: duplicate record: admin.lab.internal. A is already in the zone at records[0] (\"admin A 192.168.10.10\")",
		zone + ":5:1: dns.zones[0].file: CNAME and other data: k8s-node1.lab.internal.",
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want) {
		t.Fatalf("check printed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("check line %d = %q\nwant it to start with %q", i+1, lines[i], w)
		}
	}
}
