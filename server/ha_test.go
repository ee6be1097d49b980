package server

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const haGood = "ha:\n  role: standby\n  peer: https://10.200.0.11:8443\n  peer_token_file: /etc/airgapd/ha-peer.token\n  vip: 10.200.0.10/24\n  interface: eth1\n  virtual_router_id: 51\n"

func TestHAConfigDiagnostics(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string // "line:col: substring", in line order
	}{
		{"good", haGood, nil},
		{"primary needs no token", strings.Replace(strings.Replace(haGood, "standby", "primary", 1), "  peer_token_file: /etc/airgapd/ha-peer.token\n", "", 1), nil},
		{"bad role", strings.Replace(haGood, "standby", "secondary", 1), []string{`2:9: ha.role: role is "secondary"`}},
		{"standby without token", strings.Replace(haGood, "  peer_token_file: /etc/airgapd/ha-peer.token\n", "", 1), []string{`ha.peer_token_file: a standby needs peer_token_file`}},
		{"relative token file", strings.Replace(haGood, "/etc/airgapd/ha-peer.token", "ha.token", 1), []string{`4:20: ha.peer_token_file: peer_token_file "ha.token" is relative`}},
		{"peer not a URL", strings.Replace(haGood, "https://10.200.0.11:8443", "10.200.0.11", 1), []string{`3:9: ha.peer: peer "10.200.0.11" is not an http(s) URL`}},
		{"vip without prefix", strings.Replace(haGood, "10.200.0.10/24", "10.200.0.10", 1), []string{`5:8: ha.vip: vip "10.200.0.10" is not an address in CIDR form`}},
		{"router id out of range", strings.Replace(haGood, "51", "300", 1), []string{`7:22: ha.virtual_router_id: virtual_router_id is 300`}},
		{"priority and interface", haGood + "  priority: 255\n", []string{`ha.priority: priority is 255`}},
		{"unknown key", haGood + "  vips: [a]\n", []string{`8:3: ha.vips: unknown key`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("f.yaml", []byte(tc.yaml))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !cfg.Enabled("ha") || cfg.HA.FollowEvery.D() == 0 {
					t.Fatalf("ha section not read with its defaults: %+v", cfg.HA)
				}
				return
			}
			var ce *CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *CheckError", err)
			}
			if len(ce.Diagnostics) != len(tc.want) {
				t.Fatalf("got %d diagnostics, want %d:\n%v", len(ce.Diagnostics), len(tc.want), err)
			}
			for i, want := range tc.want {
				if got := ce.Diagnostics[i].String(); !strings.Contains(got, want) {
					t.Errorf("diagnostic %d = %q\nwant it to contain %q", i, got, want)
				}
			}
		})
	}
}

func TestHAMerge(t *testing.T) {
	primary := `# the primary's
data_dir: /srv/a
advertise: { name: admin1.lab.internal, addresses: [10.200.0.11] }
ha: { role: primary, peer: "https://10.200.0.12:8443", vip: 10.200.0.10/24, interface: eth1, virtual_router_id: 51 }
dns:
  listen: ["10.200.0.11:53"]
  zones:
    - name: lab.internal
      records: ["admin 300 A 10.200.0.10"]   # the VIP
gateway: { mode: apply, masquerade: [{ source: 10.200.0.0/24, out_interface: wan1 }] }
mirror:
  listen: ":8081"
  repos:
    - { name: local, path: /srv/rpms }
    - { name: el9, baseurl: "http://up/el9/", gpgcheck: true, gpgkey: /etc/k.asc }
web: { listen: ":8443", admin: { password_hash: "$2a$10$x" } }
`
	local := `data_dir: /srv/b
advertise: { name: admin2.lab.internal, addresses: [10.200.0.12] }
ha: { role: standby, peer: "https://10.200.0.11:8443", vip: 10.200.0.10/24, interface: eth1, virtual_router_id: 51 }
dns: { listen: ["10.200.0.12:53"] }
gateway: { mode: apply, masquerade: [{ source: 10.200.0.0/24, out_interface: wan2 }] }
mirror: { listen: "10.200.0.12:8081" }
`
	out, err := haMerge([]byte(primary), []byte(local), "http://10.200.0.11:8081", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		DataDir   string         `yaml:"data_dir"`
		Advertise map[string]any `yaml:"advertise"`
		HA        map[string]any `yaml:"ha"`
		DNS       struct {
			Listen []string         `yaml:"listen"`
			Zones  []map[string]any `yaml:"zones"`
		} `yaml:"dns"`
		Gateway map[string]any `yaml:"gateway"`
		Mirror  struct {
			Listen string              `yaml:"listen"`
			Repos  []map[string]string `yaml:"repos"`
		} `yaml:"mirror"`
		Web map[string]any `yaml:"web"`
	}
	if err := yaml.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"data_dir stays local", got.DataDir, "/srv/b"},
		{"advertise stays local", got.Advertise["name"], "admin2.lab.internal"},
		{"ha stays local", got.HA["role"], "standby"},
		{"dns.listen stays local", got.DNS.Listen[0], "10.200.0.12:53"},
		{"zones come from the primary", len(got.DNS.Zones), 1},
		{"gateway stays local", got.Gateway["masquerade"].([]any)[0].(map[string]any)["out_interface"], "wan2"},
		{"mirror.listen stays local", got.Mirror.Listen, "10.200.0.12:8081"},
		{"local repo follows the primary", got.Mirror.Repos[0]["baseurl"], "http://10.200.0.11:8081/repos/local/"},
		{"local repo has no path", got.Mirror.Repos[0]["path"], ""},
		{"mirrored repo follows the primary", got.Mirror.Repos[1]["baseurl"], "http://10.200.0.11:8081/repos/el9/"},
		{"no gpgkey file of the primary's", got.Mirror.Repos[1]["gpgkey"], ""},
		{"web.listen absent here: the default", got.Web["listen"], nil},
		{"password hash from the primary", got.Web["admin"].(map[string]any)["password_hash"], "$2a$10$x"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v\n%s", c.what, c.got, c.want, out)
		}
	}
	if !strings.Contains(string(out), "# the VIP") {
		t.Errorf("the primary's comments are lost:\n%s", out)
	}
	again, err := haMerge([]byte(primary), out, "http://10.200.0.11:8081", nil)
	if err != nil || string(again) != string(out) {
		t.Errorf("merging twice changes the file (the follower would rewrite it every round):\n%s\n---\n%s", out, again)
	}
}

func TestSetHARole(t *testing.T) {
	cases := []struct{ in, want string }{
		{"ha:\n  role: standby # this host\n  vip: x\n", "ha:\n  role: primary # this host\n  vip: x\n"},
		{"dns: {}\nha: { role: \"standby\", vip: x }\n", "dns: {}\nha: { role: primary, vip: x }\n"},
		{"ha:\n  role: 'standby'\n", "ha:\n  role: primary\n"},
	}
	for _, c := range cases {
		got, err := setHARole([]byte(c.in), "primary")
		if err != nil || string(got) != c.want {
			t.Errorf("setHARole(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := setHARole([]byte("dns: {}\n"), "primary"); err == nil {
		t.Error("no ha.role: want an error")
	}
}

func TestHAWriteGuard(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(haGood))
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: cfg}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	h := s.haWriteGuard(inner)
	for _, tc := range []struct {
		method string
		want   int
	}{{"GET", 202}, {"HEAD", 202}, {"PUT", 403}, {"POST", 403}, {"PATCH", 403}, {"DELETE", 403}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, "/v2/app/blobs/uploads/", nil))
		if rec.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.method, rec.Code, tc.want)
		}
		if tc.want == 403 && (!strings.Contains(rec.Body.String(), `"DENIED"`) || !strings.Contains(rec.Body.String(), "https://10.200.0.11:8443")) {
			t.Errorf("%s: body %s, want DENIED naming the primary", tc.method, rec.Body)
		}
	}
	if err := s.standbyError(); !errors.Is(err, ErrStandby) {
		t.Errorf("standbyError = %v", err)
	}
	cfg.HA.Role = rolePrimary
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("PUT", "/v2/app/manifests/v1", nil))
	if rec.Code != 202 {
		t.Errorf("primary: PUT %d, want 202", rec.Code)
	}
}

func TestKeepalivedConf(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(haGood))
	if err != nil {
		t.Fatal(err)
	}
	out, err := KeepalivedConf(cfg, "/usr/bin/airgapd", "/etc/airgapd/airgapd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`script "/usr/bin/airgapd ha check --config /etc/airgapd/airgapd.yaml"`,
		"state BACKUP", "interface eth1", "virtual_router_id 51", "priority 100",
		"10.200.0.10/24 dev eth1", "track_script {\n        airgapd_check\n    }",
		`notify_master "/usr/bin/airgapd ha notify master --config /etc/airgapd/airgapd.yaml"`,
		`notify_backup "/usr/bin/airgapd ha notify backup`, `notify_fault "/usr/bin/airgapd ha notify fault`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("keepalived.conf lacks %q:\n%s", want, out)
		}
	}
}

// FuzzHAMerge: the primary's config is outside input to the standby; no
// file may make the merge panic, and a result must be YAML again.
func FuzzHAMerge(f *testing.F) {
	f.Add([]byte(haGood), []byte("data_dir: /x\n"))
	f.Add([]byte("mirror:\n  repos:\n    - { name: a, path: /p }\n    - x\n    - { path: /q }\n"), []byte("mirror: [1]\n"))
	f.Add([]byte("web: 1\ndns: [a]\nha: {}\n"), []byte(""))
	f.Add([]byte("- a\n"), []byte("a: b\n"))
	f.Fuzz(func(t *testing.T, primary, local []byte) {
		out, err := haMerge(primary, local, "http://10.200.0.11:8081", nil)
		if err != nil {
			return
		}
		var n yaml.Node
		if err := yaml.Unmarshal(out, &n); err != nil {
			t.Fatalf("merge output is not YAML: %v\n%s", err, out)
		}
	})
}

func TestHAZoneFilesAndRestoreRepos(t *testing.T) {
	primary := `dns:
  zones:
    - { name: lab.internal, file: /etc/airgapd/lab.zone }
    - { name: other.internal, file: /etc/airgapd/other.zone }
    - { name: inline.internal, records: ["a 300 A 10.0.0.1"] }
mirror:
  repos:
    - { name: local, path: /srv/rpms }
    - { name: el9, baseurl: "http://up/el9/", gpgcheck: true, sync_every: 6h }
`
	local := "data_dir: /srv/b\nmirror: { listen: \":8081\" }\n"
	merged, err := haMerge([]byte(primary), []byte(local), "http://10.200.0.11:8081", map[string]string{"lab.internal": "/srv/b/ha/zones/lab.internal.zone"})
	if err != nil {
		t.Fatal(err)
	}
	restored, names, kept, err := haRestoreRepos(merged, []byte(primary))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		DNS struct {
			Zones []map[string]any `yaml:"zones"`
		} `yaml:"dns"`
		Mirror struct {
			Repos []map[string]any `yaml:"repos"`
		} `yaml:"mirror"`
	}
	for _, doc := range []struct {
		name string
		data []byte
	}{{"merged", merged}, {"restored", restored}} {
		if err := yaml.Unmarshal(doc.data, &got); err != nil {
			t.Fatalf("%s: %v\n%s", doc.name, err, doc.data)
		}
		checks := []struct {
			what      string
			got, want any
		}{
			{"a zone file the primary sent is read from the copy", got.DNS.Zones[0]["file"], "/srv/b/ha/zones/lab.internal.zone"},
			{"a zone file it could not send keeps its path", got.DNS.Zones[1]["file"], "/etc/airgapd/other.zone"},
			{"a folder repo follows the primary's copy", got.Mirror.Repos[0]["baseurl"], "http://10.200.0.11:8081/repos/local/"},
		}
		if doc.name == "merged" {
			checks = append(checks, struct {
				what      string
				got, want any
			}{"a mirrored repo follows the primary", got.Mirror.Repos[1]["baseurl"], "http://10.200.0.11:8081/repos/el9/"})
		} else {
			checks = append(checks, []struct {
				what      string
				got, want any
			}{
				{"promote: the mirrored repo's own upstream", got.Mirror.Repos[1]["baseurl"], "http://up/el9/"},
				{"promote: its schedule", got.Mirror.Repos[1]["sync_every"], "6h"},
				{"promote: data_dir stays", strings.Contains(string(restored), "data_dir: /srv/b"), true},
			}...)
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s: %s: got %v, want %v\n%s", doc.name, c.what, c.got, c.want, doc.data)
			}
		}
	}
	if strings.Join(names, ",") != "el9" || strings.Join(kept, ",") != "local" {
		t.Errorf("restored %v, kept %v; want [el9], [local]", names, kept)
	}
}
