package charts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"reflect"
	"strings"
	"testing"
)

// makeChart packs files (paths inside the archive) as a chart .tgz.
func makeChart(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestReadArchive(t *testing.T) {
	sub := makeChart(t, map[string]string{
		"lib/Chart.yaml":  "apiVersion: v2\nname: lib\nversion: 0.2.0\nappVersion: \"3.1\"\n",
		"lib/values.yaml": "image:\n  repository: lab/lib\n",
	})
	tests := []struct {
		name    string
		files   map[string]string
		want    Metadata
		wantErr string
	}{
		{name: "plain", files: map[string]string{
			"web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.2.3\nappVersion: \"1.25\"\ndependencies:\n- name: lib\n  version: ~0.2.0\n  repository: http://127.0.0.1/charts\n",
		}, want: Metadata{APIVersion: "v2", Name: "web", Version: "1.2.3", AppVersion: "1.25",
			Dependencies: []Dependency{{Name: "lib", Version: "~0.2.0", Repository: "http://127.0.0.1/charts"}}}},
		{name: "no Chart.yaml", files: map[string]string{"web/values.yaml": "a: 1\n"}, wantErr: "no Chart.yaml"},
		{name: "two tops", files: map[string]string{"a/Chart.yaml": "name: a\nversion: 1.0.0\n", "b/x": ""}, wantErr: "two top folders"},
		{name: "bad version", files: map[string]string{"a/Chart.yaml": "name: a\nversion: one\n"}, wantErr: "not semver"},
		{name: "bad name", files: map[string]string{"a/Chart.yaml": "name: A/B\nversion: 1.0.0\n"}, wantErr: "not a chart name"},
		{name: "subchart", files: map[string]string{"web/Chart.yaml": "name: web\nversion: 1.0.0\n", "web/charts/lib-0.2.0.tgz": string(sub)},
			want: Metadata{Name: "web", Version: "1.0.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ReadArchive(makeChart(t, tt.files))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a.Metadata, tt.want) {
				t.Errorf("metadata = %+v, want %+v", a.Metadata, tt.want)
			}
		})
	}
}

func TestImages(t *testing.T) {
	sub := makeChart(t, map[string]string{
		"lib/Chart.yaml":  "name: lib\nversion: 0.2.0\nappVersion: \"3.1\"\n",
		"lib/values.yaml": "image:\n  repository: lab/lib\n",
	})
	tgz := makeChart(t, map[string]string{
		"web/Chart.yaml": "name: web\nversion: 1.0.0\nappVersion: \"1.25\"\n",
		"web/values.yaml": `image:
  registry: registry.lab.internal
  repository: nginx
  tag: "1.25.3"
sidecar:
  image: busybox:1.36
init:
  image:
    repository: lab/init
    digest: sha256:` + strings.Repeat("ab", 32) + `
other:
  repository: https://example.invalid/not-an-image
defaults:
  image:
    repository: lab/app
`,
		"web/templates/job.yaml":          "spec:\n  containers:\n  - name: x\n    image: \"lab/job:2\"\n  - name: y\n    image: {{ .Values.image.repository }}\n",
		"web/charts/lib-0.2.0.tgz":        string(sub),
		"web/charts/unpacked/Chart.yaml":  "name: unpacked\nversion: 0.1.0\nappVersion: \"7\"\n",
		"web/charts/unpacked/values.yaml": "image:\n  repository: lab/unpacked\n  tag: \"\"\n",
	})
	got, err := Images(tgz)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"busybox:1.36", "lab/app:1.25", "lab/init@sha256:" + strings.Repeat("ab", 32), "lab/job:2", "lab/lib:3.1", "lab/unpacked:7", "registry.lab.internal/nginx:1.25.3"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Images = %q\nwant %q", got, want)
	}
}

func TestPick(t *testing.T) {
	b, err := os.ReadFile("testdata/index.yaml")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := ParseIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		spec string
		want []string
	}{
		{"web", []string{"1.2.0"}}, // newest that is no pre-release
		{"web@1.0.0", []string{"1.0.0"}},
		{"web@^1.0", []string{"1.2.0", "1.0.0"}},
		{"web@>=1.1.0-0", []string{"1.3.0-rc.1", "1.2.0"}},
		{"web@2", nil},
		{"nosuch", nil},
	}
	for _, tt := range tests {
		w, err := ParseWanted(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, cv := range idx.pick(w) {
			got = append(got, cv.Version)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("pick(%s) = %v, want %v", tt.spec, got, tt.want)
		}
	}
}

func TestParseWanted(t *testing.T) {
	for _, s := range []string{"", "Web", "web@", "web@>=>1", "-web", "a/b"} {
		if _, err := ParseWanted(s); err == nil {
			t.Errorf("ParseWanted(%q) accepted it", s)
		}
	}
}

func TestResolveURL(t *testing.T) {
	tests := []struct{ base, u, want string }{
		{"http://127.0.0.1:8080/charts", "web-1.0.0.tgz", "http://127.0.0.1:8080/charts/web-1.0.0.tgz"},
		{"http://127.0.0.1:8080/charts/", "../x/web-1.0.0.tgz", "http://127.0.0.1:8080/x/web-1.0.0.tgz"},
		{"http://127.0.0.1:8080/charts", "http://127.0.0.2/web.tgz", "http://127.0.0.2/web.tgz"},
	}
	for _, tt := range tests {
		if got, err := resolveURL(tt.base, tt.u); err != nil || got != tt.want {
			t.Errorf("resolveURL(%s, %s) = %s, %v; want %s", tt.base, tt.u, got, err, tt.want)
		}
	}
	if _, err := resolveURL("http://127.0.0.1/", "file:///etc/passwd"); err == nil {
		t.Error("a file: url was accepted")
	}
}

func FuzzParseIndex(f *testing.F) {
	if b, err := os.ReadFile("testdata/index.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("apiVersion: v1\nentries: {a: [null, {name: a, version: x}]}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := ParseIndex(b)
		if err == nil {
			idx.pick(Wanted{Name: "web"})
			idx.sortEntries()
		}
	})
}

func FuzzReadArchive(f *testing.F) {
	f.Add(makeChart(f, map[string]string{"a/Chart.yaml": "name: a\nversion: 1.0.0\n", "a/values.yaml": "image: x/y:1\n"}))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ReadArchive(b); err == nil {
			Images(b)
		}
	})
}

// TestPickVersions: OCI tags (and a bundle's --chart) pick as an index
// does; '_' in a tag is helm's '+'.
func TestPickVersions(t *testing.T) {
	tags := []string{"0.9.0", "1.0.0", "1.1.0_build.1", "1.2.0-rc.1", "latest", "2.0.0"}
	versions := make([]string, len(tags))
	for i, tg := range tags {
		versions[i] = VersionOfTag(tg)
	}
	tests := []struct {
		spec string
		want []string
	}{
		{"app", []string{"2.0.0"}},
		{"app@^1.0", []string{"1.0.0", "1.1.0_build.1"}},
		{"app@>=1.2.0-0", []string{"1.2.0-rc.1", "2.0.0"}},
		{"app@>=0.9, <1.1", []string{"0.9.0", "1.0.0"}},
		{"app@3", nil},
	}
	for _, tt := range tests {
		w, err := ParseWanted(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, i := range PickVersions(versions, w) {
			got = append(got, tags[i])
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("PickVersions(%s) = %v, want %v", tt.spec, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		repo Repo
		ok   bool
	}{
		{Repo{Name: "a", URL: "https://charts.example/a", Charts: []string{"x"}, Images: true}, true},
		{Repo{Name: "a", URL: "oci://127.0.0.1:5000/charts", PlainHTTP: true, Charts: []string{"x@^1"}}, true},
		{Repo{Name: "a", URL: "oci://reg.example", Charts: []string{"x"}}, true},
		{Repo{Name: "a", URL: "http://charts.example", PlainHTTP: true, Charts: []string{"x"}}, false},
		{Repo{Name: "a", URL: "ftp://charts.example", Charts: []string{"x"}}, false},
		{Repo{Name: "a", URL: "oci://", Charts: []string{"x"}}, false},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.Repos = []Repo{tt.repo}
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v, want ok %v", tt.repo, err, tt.ok)
		}
	}
}
