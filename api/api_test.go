package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestImportsOnlyTheStandardLibrary: the contract is a leaf every side
// imports, so it imports no airgapd package (nor anything outside the
// standard library).
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s: package api may import only the standard library", f, path)
			}
		}
	}
}

// TestServiceDetailRoundTrip: each service's typed detail goes out as
// "detail" and comes back into the field of the service's name; a
// disabled service has no detail; an unknown service's detail is kept.
func TestServiceDetailRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 21, 16, 30, 5, 0, time.UTC)
	cases := []struct {
		name string
		st   ServiceStatus
		want string // the detail as JSON; "" for none
	}{
		{"dns", ServiceStatus{Name: "dns", State: "up", DNS: &DNSStatus{State: "up", QPS: 2.5, Cache: DNSCacheStatus{Hits: 3}}}, `"qps":2.5`},
		{"ntp", ServiceStatus{Name: "ntp", NTP: &NTPStatus{Stratum: 3, LastUpdate: &at}}, `"last_update":"2026-11-21T16:30:05Z"`},
		{"gateway", ServiceStatus{Name: "gateway", Gateway: &GatewayStatus{Mode: "plan"}}, `"mode":"plan"`},
		{"mirror", ServiceStatus{Name: "mirror", Mirror: &MirrorStatus{Repos: []RepoStatus{{Name: "up", Progress: &Progress{Phase: "packages"}}}}}, `"progress":{"repo":"","phase":"packages"`},
		{"registry", ServiceStatus{Name: "registry", Registry: &RegistryStatus{Pushes: 2, LastGC: &GCResult{Bytes: 9}}}, `"pushes":2`},
		{"web", ServiceStatus{Name: "web", Web: &WebStatus{Listeners: []string{"registry https://a:5000"}}}, `"listeners":["registry https://a:5000"]`},
		{"disabled", ServiceStatus{Name: "ntp", State: "disabled"}, ""},
		{"pypi", ServiceStatus{Name: "pypi", PyPI: &PyPIStatus{Trees: []PyPITreeStatus{{Name: "index", Projects: 2}}}}, `"projects":2`},
		{"unknown", ServiceStatus{Name: "someday", Other: json.RawMessage(`{"x":1}`)}, `{"x":1}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.st)
			if err != nil {
				t.Fatal(err)
			}
			var wire map[string]json.RawMessage
			json.Unmarshal(b, &wire)
			detail, has := wire["detail"]
			if c.want == "" {
				if has {
					t.Errorf("detail %s, want none", detail)
				}
			} else if !bytes.Contains(detail, []byte(c.want)) {
				t.Errorf("detail %s, want it to hold %s", detail, c.want)
			}
			for _, k := range []string{"name", "enabled", "state", "summary"} {
				if _, ok := wire[k]; !ok {
					t.Errorf("%s lacks %q", b, k)
				}
			}
			var back ServiceStatus
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, c.st) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, c.st)
			}
		})
	}
}

// TestDetailIsTheServiceStatusAsIs: the detail is the service's status
// struct encoded as it is, so /api/v1/status keeps the shape each service
// has always given it.
func TestDetailIsTheServiceStatusAsIs(t *testing.T) {
	d := &DNSStatus{State: "up", Listen: []string{"udp/127.0.0.1:53"}, Sources: map[string]int64{"cache": 1}}
	b, _ := json.Marshal(ServiceStatus{Name: "dns", DNS: d})
	var wire struct {
		Detail json.RawMessage `json:"detail"`
	}
	json.Unmarshal(b, &wire)
	want, _ := json.Marshal(d)
	if !bytes.Equal(wire.Detail, want) {
		t.Errorf("detail %s, want %s", wire.Detail, want)
	}
}

// TestStreams: each stream's lines, as the server has always written them
// (maps, sorted keys), decode into Event; what StreamWriter writes for the
// same events decodes to the same JSON values.
func TestStreams(t *testing.T) {
	cases := []struct {
		name          string
		lines         []any // as the server wrote them before Event
		events        func(w *bytes.Buffer)
		wantProgress  int
		wantResult    string
		wantErr       string
		decodeAndTell func(r *bytes.Buffer) (progress int, result, errMsg string, err error)
	}{
		{
			name: "mirror sync",
			lines: []any{
				map[string]any{"progress": Progress{Repo: "up", Phase: "packages", ToFetch: 2}},
				map[string]any{"done": true, "results": []SyncResult{{Repo: "up", OK: true}}, "error": "other: failed"},
			},
			events: func(w *bytes.Buffer) {
				s := NewStreamWriter[Progress, SyncResult](w, nil, nil)
				s.Send(SyncEvent{Progress: &Progress{Repo: "up", Phase: "packages", ToFetch: 2}})
				s.Send(SyncEvent{Done: true, Results: []SyncResult{{Repo: "up", OK: true}}, Error: "other: failed"})
			},
			wantProgress: 1, wantResult: "up", wantErr: "other: failed",
			decodeAndTell: func(r *bytes.Buffer) (int, string, string, error) {
				n := 0
				last, err := DecodeStream(r, func(ev SyncEvent) { n++ })
				res := ""
				if len(last.Results) == 1 {
					res = last.Results[0].Repo
				}
				return n, res, last.Error, err
			},
		},
		{
			name: "bundle import",
			lines: []any{
				map[string]any{"progress": ImportProgress{Phase: "verify", Bytes: 20, BytesDone: 10}},
				map[string]any{"progress": ImportProgress{Phase: "publish", Item: "repo up"}},
				map[string]any{"done": true, "result": BundleImportResult{ID: "sha256:abc"}},
			},
			events: func(w *bytes.Buffer) {
				s := NewStreamWriter[ImportProgress, BundleImportResult](w, nil, nil)
				s.Send(BundleImportEvent{Progress: &ImportProgress{Phase: "verify", Bytes: 20, BytesDone: 10}})
				s.Send(BundleImportEvent{Progress: &ImportProgress{Phase: "publish", Item: "repo up"}})
				s.Send(BundleImportEvent{Done: true, Result: &BundleImportResult{ID: "sha256:abc"}})
			},
			wantProgress: 2, wantResult: "sha256:abc",
			decodeAndTell: func(r *bytes.Buffer) (int, string, string, error) {
				n := 0
				last, err := DecodeStream(r, func(ev BundleImportEvent) { n++ })
				res := ""
				if last.Result != nil {
					res = last.Result.ID
				}
				return n, res, last.Error, err
			},
		},
		{
			name: "registry import failed",
			lines: []any{
				map[string]any{"complete": 5, "total": 10},
				map[string]any{"complete": 10, "total": 10},
				map[string]any{"error": "no image in the file"},
			},
			events: func(w *bytes.Buffer) {
				s := NewStreamWriter[struct{}, RegistryImportResult](w, nil, nil)
				s.Send(RegistryImportEvent{Complete: 5, Total: 10})
				s.Send(RegistryImportEvent{Complete: 10, Total: 10})
				s.Send(RegistryImportEvent{Error: "no image in the file"})
			},
			wantProgress: 2, wantErr: "no image in the file",
			decodeAndTell: func(r *bytes.Buffer) (int, string, string, error) {
				n := 0
				last, err := DecodeStream(r, func(ev RegistryImportEvent) { n++ })
				return n, "", last.Error, err
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var old, now bytes.Buffer
			enc := json.NewEncoder(&old)
			for _, l := range c.lines {
				enc.Encode(l)
			}
			c.events(&now)
			if a, b := jsonValues(t, old.String()), jsonValues(t, now.String()); !reflect.DeepEqual(a, b) {
				t.Errorf("wire changed:\n was %s\n now %s", old.String(), now.String())
			}
			n, res, msg, err := c.decodeAndTell(&old)
			if err != nil || n != c.wantProgress || res != c.wantResult || msg != c.wantErr {
				t.Errorf("decoded %d progress, result %q, error %q, %v; want %d, %q, %q", n, res, msg, err, c.wantProgress, c.wantResult, c.wantErr)
			}
		})
	}
}

func jsonValues(t *testing.T, lines string) []any {
	t.Helper()
	var out []any
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		var v any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		out = append(out, v)
	}
	return out
}

// TestStreamEndedEarly: a stream cut before its last line says so.
func TestStreamEndedEarly(t *testing.T) {
	_, err := DecodeStream[Progress, SyncResult](strings.NewReader(`{"progress":{"repo":"up"}}`+"\n"), nil)
	if !errors.Is(err, ErrStreamEnded) {
		t.Errorf("err = %v, want ErrStreamEnded", err)
	}
}

func TestConfigProblemString(t *testing.T) {
	cases := []struct {
		p    ConfigProblem
		want string
	}{
		{ConfigProblem{File: "a.yaml", Line: 3, Col: 5, Path: "dns.listen", Msg: "bad", Hint: "fix"}, "a.yaml:3:5: dns.listen: bad (hint: fix)"},
		{ConfigProblem{File: "a.yaml", Msg: "bad"}, "a.yaml: bad"},
		{ConfigProblem{Line: 3, Col: 5, Path: "dns.listen", Msg: "bad"}, "line 3: dns.listen: bad"},
		{ConfigProblem{Msg: "bad"}, "bad"},
	}
	for _, c := range cases {
		if got := c.p.String(); got != c.want {
			t.Errorf("%+v = %q, want %q", c.p, got, c.want)
		}
	}
}
