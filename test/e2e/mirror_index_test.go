package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/rpmpack"

	"github.com/airgapd/airgapd/api"
)

// testRPM is one package for the index tests.
type testRPM struct {
	name, version, release string
	epoch                  uint32
	requires, provides     []string
	files                  []string
}

func (p testRPM) file() string {
	return fmt.Sprintf("%s-%s-%s.noarch.rpm", p.name, p.version, p.release)
}

// writeRPM builds p with rpmpack into dir/sub.
func writeRPM(t *testing.T, dir, sub string, p testRPM) string {
	t.Helper()
	md := rpmpack.RPMMetaData{Name: p.name, Version: p.version, Release: p.release, Epoch: p.epoch, Arch: "noarch",
		Summary: "airgapd index test " + p.name, Description: "test package <" + p.name + "> & friends\nsecond line", Licence: "MIT",
		BuildTime: time.Unix(1700000000, 0), Packager: "airgapd tests", URL: "https://example.invalid/" + p.name}
	for _, r := range p.requires {
		if err := md.Requires.Set(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range p.provides {
		if err := md.Provides.Set(r); err != nil {
			t.Fatal(err)
		}
	}
	r, err := rpmpack.NewRPM(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range p.files {
		r.AddFile(rpmpack.RPMFile{Name: f, Body: []byte(p.name + " " + f + "\n"), Mode: 0o755, MTime: 1700000000})
	}
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	rel := filepath.Join(sub, p.file())
	os.MkdirAll(filepath.Join(dir, sub), 0o755)
	if err := os.WriteFile(filepath.Join(dir, rel), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return rel
}

// indexTestRPMs: several names, two versions of one, an epoch, a
// dependency on a versioned package, a file dependency and a virtual
// provide.
var indexTestRPMs = []testRPM{
	{name: "alpha", version: "1.0", release: "1", files: []string{"/usr/bin/alpha"}},
	{name: "alpha", version: "2.0", release: "1", files: []string{"/usr/bin/alpha", "/usr/share/alpha/README"}},
	{name: "bravo", version: "1.5", release: "2", epoch: 3, provides: []string{"bravo-tools = 1.5"}, files: []string{"/etc/bravo.conf"}},
	{name: "charlie", version: "0.9", release: "1", requires: []string{"alpha >= 2.0", "bravo-tools", "/usr/bin/alpha"}, files: []string{"/opt/charlie/run"}},
	{name: "delta", version: "4.2", release: "7.el9", requires: []string{"charlie = 0.9-1"}},
}

// indexFolder writes the test RPMs into a new folder.
func indexFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for i, p := range indexTestRPMs {
		sub := "Packages"
		if i%2 == 1 {
			sub = "more/nested" // locations in subfolders too
		}
		writeRPM(t, dir, sub, p)
	}
	return dir
}

// repoquery runs dnf repoquery against the repo at url (no .repo file) and
// returns its lines, sorted.
func (d *dnfRoot) repoquery(id, url string, args ...string) []string {
	d.t.Helper()
	base := []string{"--refresh", "--repofrompath=" + id + "," + url, "--repo=" + id, "--nogpgcheck", "repoquery"}
	out, err := d.run(append(base, args...)...)
	if err != nil {
		d.t.Fatalf("dnf repoquery %v on %s: %v\n%s", args, url, err, out)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines
}

func indexConfig(path string, extra string) string {
	return fmt.Sprintf(`
advertise: { addresses: [127.0.0.1] }
mirror:
  listen: 127.0.0.1:0
  index_every: 1h
  repos:
    - { name: local, path: %s%s }
`, path, extra)
}

func mirrorIndex(t *testing.T, in *instance, names ...string) (string, error) {
	t.Helper()
	return run(t, 90*time.Second, airgapdBin, append([]string{"mirror", "index", "--config", in.config}, names...)...)
}

// primaryChecksums maps each package location to its checksum in the
// served primary.xml.
func primaryChecksums(t *testing.T, mirrorURL string) map[string]string {
	t.Helper()
	code, md, _ := mirrorGet(t, mirrorURL+"/repos/local/repodata/repomd.xml", nil)
	if code != http.StatusOK {
		t.Fatalf("repomd.xml: %d", code)
	}
	href := regexp.MustCompile(`href="(repodata/[0-9a-f]+-primary\.xml\.gz)"`).FindSubmatch(md)
	if href == nil {
		t.Fatalf("no primary in repomd.xml:\n%s", md)
	}
	code, gz, _ := mirrorGet(t, mirrorURL+"/repos/local/"+string(href[1]), nil)
	if code != http.StatusOK {
		t.Fatalf("%s: %d", href[1], code)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	var doc struct {
		Packages []struct {
			Checksum string `xml:"checksum"`
			Location struct {
				Href string `xml:"href,attr"`
			} `xml:"location"`
		} `xml:"package"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range doc.Packages {
		out[p.Location.Href] = p.Checksum
	}
	return out
}

// TestMirrorIndexLikeCreaterepo: one folder indexed by createrepo_c and by
// airgapd gives dnf the same answers; dnf resolves a dependency from
// airgapd's index; adding one RPM re-reads one header and leaves the other
// entries as they were.
func TestMirrorIndexLikeCreaterepo(t *testing.T) {
	need(t, "createrepo_c")
	dnf := newDNFRoot(t)
	pkgs := indexFolder(t)
	ref := t.TempDir()
	copyTree(t, pkgs, ref)
	if out, err := run(t, 60*time.Second, "createrepo_c", "--quiet", ref); err != nil {
		t.Fatalf("createrepo_c: %v\n%s", err, out)
	}
	refSrv := httptest.NewServer(http.FileServer(http.Dir(ref)))
	t.Cleanup(refSrv.Close)

	dir := t.TempDir()
	in := start(t, dir, indexConfig(pkgs, ""))
	mirrorURL := in.status().listener("mirror")
	out, err := mirrorIndex(t, in, "local")
	if err != nil || !strings.Contains(out, "local: ") {
		t.Fatalf("mirror index: %v\n%s", err, out)
	}
	// The server indexed the folder at start; the command finds it current.
	if !strings.Contains(out, "index up to date") && !strings.Contains(out, "5 packages") {
		t.Errorf("mirror index: %s", out)
	}
	ours := mirrorURL + "/repos/local/"

	for _, q := range [][]string{
		{"--qf", "%{name}-%{epoch}:%{version}-%{release}.%{arch}"},
		{"--qf", "%{name}|%{location}|%{sourcerpm}|%{license}|%{summary}|%{buildtime}|%{size}|%{installsize}"},
		{"--requires", "charlie"},
		{"--requires", "delta"},
		{"--provides", "bravo"},
		{"--whatrequires", "alpha"},
		{"--whatprovides", "/usr/bin/alpha"},
		{"--whatprovides", "bravo-tools"},
		{"-l", "alpha-2.0-1.noarch"},
	} {
		want := dnf.repoquery("ref", refSrv.URL+"/", q...)
		got := dnf.repoquery("ours", ours, q...)
		if len(want) == 0 {
			t.Errorf("repoquery %v: createrepo_c's index gives nothing", q)
		}
		if !slices.Equal(got, want) {
			t.Errorf("repoquery %v:\nairgapd:      %q\ncreaterepo_c: %q", q, got, want)
		}
	}

	// dnf resolves delta → charlie → alpha 2.0 + bravo from our index.
	dl := filepath.Join(dnf.dir, "dl")
	if out, err := dnf.run("--refresh", "--repofrompath=ours,"+ours, "--repo=ours", "--nogpgcheck", "download", "--resolve", "--destdir", dl, "delta"); err != nil {
		t.Fatalf("dnf download --resolve: %v\n%s", err, out)
	}
	var got []string
	ents, _ := os.ReadDir(dl)
	for _, e := range ents {
		got = append(got, e.Name())
	}
	want := []string{"alpha-2.0-1.noarch.rpm", "bravo-1.5-2.noarch.rpm", "charlie-0.9-1.noarch.rpm", "delta-4.2-7.el9.noarch.rpm"}
	if !slices.Equal(got, want) {
		t.Errorf("dnf download --resolve delta: %v, want %v", got, want)
	}

	// Incremental: add one RPM; only its header is read, the other entries
	// keep their checksums.
	before := primaryChecksums(t, mirrorURL)
	writeRPM(t, pkgs, "Packages", testRPM{name: "echo", version: "1.0", release: "1", requires: []string{"delta"}})
	out, err = mirrorIndex(t, in, "local")
	if err != nil || !strings.Contains(out, "6 packages, 1 headers read, 5 reused") {
		t.Fatalf("mirror index after adding one: %v\n%s", err, out)
	}
	after := primaryChecksums(t, mirrorURL)
	if len(after) != 6 || after["Packages/echo-1.0-1.noarch.rpm"] == "" {
		t.Errorf("after adding echo: %v", after)
	}
	for href, sum := range before {
		if after[href] != sum {
			t.Errorf("%s: checksum %s, was %s", href, after[href], sum)
		}
	}
	var st api.MirrorStatus
	in.status().detail(t, "mirror", &st)
	if len(st.Repos) != 1 || st.Repos[0].Packages != 6 || st.Repos[0].HeadersRead != 1 || st.Repos[0].LastResult != "ok" {
		t.Errorf("status after the incremental index: %+v", st.Repos)
	}
	if got := dnf.repoquery("ours", ours, "--qf", "%{name}-%{version}"); !slices.Contains(got, "echo-1.0") {
		t.Errorf("dnf after the re-index: %v", got)
	}
}

// TestMirrorIndexSigned: dnf with repo_gpgcheck=1 and the key airgapd
// serves accepts the signed index, and refuses it once repomd.xml is
// tampered with.
func TestMirrorIndexSigned(t *testing.T) {
	dnf := newDNFRoot(t)
	pkgs := t.TempDir()
	writeRPM(t, pkgs, "", testRPM{name: "alpha", version: "1.0", release: "1", files: []string{"/usr/bin/alpha"}})
	dir := t.TempDir()
	in := start(t, dir, indexConfig(pkgs, ", sign: true"))
	mirrorURL := in.status().listener("mirror")
	if out, err := mirrorIndex(t, in); err != nil {
		t.Fatalf("mirror index: %v\n%s", err, out)
	}
	for _, f := range []string{"repomd.xml.asc", "repomd.xml.key"} {
		if code, body, _ := mirrorGet(t, mirrorURL+"/repos/local/repodata/"+f, nil); code != http.StatusOK || !bytes.Contains(body, []byte("-----BEGIN PGP")) {
			t.Fatalf("%s: %d %.100s", f, code, body)
		}
	}
	repo := dnf.useRepo(mirrorURL, "local")
	if !strings.Contains(repo, "repo_gpgcheck=1") || !strings.Contains(repo, "gpgkey="+mirrorURL+"/repos/local/repodata/repomd.xml.key") {
		t.Fatalf(".repo file:\n%s", repo)
	}
	// The first run imports the key (-y), as a node's first dnf does.
	if out, err := dnf.run("makecache"); err != nil || !strings.Contains(out, "repomd.xml.key") {
		t.Fatalf("dnf makecache with repo_gpgcheck=1: %v\n%s", err, out)
	}
	if got := dnf.packages("local"); !slices.Equal(got, []string{"alpha"}) {
		t.Fatalf("dnf with repo_gpgcheck=1: %v", got)
	}

	// Tamper with the published repomd.xml (a revision changed in place).
	md := filepath.Join(dir, "data", "mirror", "repos", "local", "current", "repodata", "repomd.xml")
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(md, bytes.Replace(b, []byte("<revision>"), []byte("<revision>1"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := dnf.run("--refresh", "makecache")
	if err == nil {
		t.Fatalf("dnf accepted a tampered repomd.xml:\n%s", out)
	}
	if !strings.Contains(strings.ToLower(out), "gpg") && !strings.Contains(strings.ToLower(out), "signature") {
		t.Errorf("dnf refused the tampered index, but not for its signature:\n%s", out)
	}
}

// TestMirrorIndexGroupsAndModules: a folder's comps.xml and modules.yaml
// go into the index, and dnf reads both.
func TestMirrorIndexGroupsAndModules(t *testing.T) {
	dnf := newDNFRoot(t)
	pkgs := t.TempDir()
	writeRPM(t, pkgs, "", testRPM{name: "alpha", version: "1.0", release: "1", files: []string{"/usr/bin/alpha"}})
	writeFile(t, filepath.Join(pkgs, "comps.xml"), `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">
<comps>
  <group>
    <id>k8s-tools</id>
    <name>Kubernetes tools</name>
    <description>What every node needs</description>
    <default>false</default>
    <uservisible>true</uservisible>
    <packagelist>
      <packagereq type="mandatory">alpha</packagereq>
    </packagelist>
  </group>
</comps>
`)
	writeFile(t, filepath.Join(pkgs, "modules.yaml"), `---
document: modulemd
version: 2
data:
  name: alphamod
  stream: "1"
  version: 20261121
  context: 00000000
  arch: noarch
  summary: the alpha module
  description: A module holding alpha.
  license:
    module: [MIT]
  profiles:
    default:
      rpms: [alpha]
  artifacts:
    rpms:
    - alpha-0:1.0-1.noarch
...
`)
	dir := t.TempDir()
	in := start(t, dir, indexConfig(pkgs, ""))
	mirrorURL := in.status().listener("mirror")
	if out, err := mirrorIndex(t, in); err != nil {
		t.Fatalf("mirror index: %v\n%s", err, out)
	}
	_, repomd, _ := mirrorGet(t, mirrorURL+"/repos/local/repodata/repomd.xml", nil)
	for _, typ := range []string{`type="group"`, `type="group_gz"`, `type="modules"`} {
		if !bytes.Contains(repomd, []byte(typ)) {
			t.Errorf("repomd.xml lacks %s:\n%s", typ, repomd)
		}
	}
	dnf.useRepo(mirrorURL, "local")
	if out, err := dnf.run("group", "list", "--hidden"); err != nil || !strings.Contains(out, "Kubernetes tools") {
		t.Errorf("dnf group list: %v\n%s", err, out)
	}
	if out, err := dnf.run("module", "list"); err != nil || !strings.Contains(out, "alphamod") {
		t.Errorf("dnf module list: %v\n%s", err, out)
	}
}
