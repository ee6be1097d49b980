package e2e

import (
	"bytes"
	"crypto"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/google/rpmpack"

	"github.com/airgapd/airgapd/api"
)

// addVersion builds name-version-1.noarch.rpm into the upstream, signed by
// signer when it is not nil (rpmpack writes the header-only and the
// header+payload signatures, as rpmsign does).
func (u *rpmUpstream) addVersion(name, version string, signer *openpgp.Entity) string {
	u.t.Helper()
	r, err := rpmpack.NewRPM(rpmpack.RPMMetaData{Name: name, Version: version, Release: "1", Arch: "noarch",
		Summary: "airgapd test package " + name, Description: "test", Licence: "MIT", BuildTime: time.Unix(1700000000, 0)})
	if err != nil {
		u.t.Fatal(err)
	}
	r.AddFile(rpmpack.RPMFile{Name: "/opt/" + name + "/VERSION", Body: []byte(version + "\n" + strings.Repeat("x", 4096)), Mode: 0o644, MTime: 1700000000})
	if signer != nil {
		r.SetPGPSigner(func(b []byte) ([]byte, error) {
			var sig bytes.Buffer
			err := openpgp.DetachSign(&sig, signer, bytes.NewReader(b), &packet.Config{DefaultHash: crypto.SHA256})
			return sig.Bytes(), err
		})
	}
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		u.t.Fatal(err)
	}
	rel := "Packages/" + name + "-" + version + "-1.noarch.rpm"
	os.MkdirAll(filepath.Join(u.dir, "Packages"), 0o755)
	if err := os.WriteFile(filepath.Join(u.dir, rel), buf.Bytes(), 0o644); err != nil {
		u.t.Fatal(err)
	}
	return rel
}

// publishedRPMs lists the .rpm files of the repo's published tree on disk.
func publishedRPMs(t *testing.T, in *instance, repo string) []string {
	t.Helper()
	var names []string
	root := filepath.Join(in.dir, "data", "mirror", "repos", repo, "current")
	filepath.WalkDir(root+"/", func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".rpm") {
			names = append(names, filepath.Base(p))
		}
		return nil
	})
	slices.Sort(names)
	return names
}

func policyConfig(u *rpmUpstream, dir, repoOptions string) string {
	return fmt.Sprintf(`
advertise: { addresses: [127.0.0.1] }
mirror:
  listen: 127.0.0.1:0
  files: %s
  repos:
    - name: up
      baseurl: %q
%s`, filepath.Join(dir, "files"), u.url(), repoOptions)
}

// TestMirrorPolicyKeep: keep: 1 downloads only the newest version of each
// package, keep: 2 the two newest; the metadata stays the upstream's, so
// dnf lists the older ones but installs and downloads the newest; delete:
// true drops what keep no longer keeps.
func TestMirrorPolicyKeep(t *testing.T) {
	u := newRPMUpstream(t)
	for _, v := range []string{"1.0", "1.1", "2.0"} {
		u.addVersion("foo", v, nil)
	}
	u.addVersion("bar", "1.0", nil)
	u.index()
	dnf := newDNFRoot(t)
	dir := t.TempDir()
	in := start(t, dir, policyConfig(u, dir, "      keep: 1\n"))
	mirrorURL := in.status().listener("mirror")

	out, err := mirrorSync(t, in, "up")
	if err != nil || !strings.Contains(out, "2 packages, 2 fetched") {
		t.Fatalf("sync with keep: 1: %v\n%s", err, out)
	}
	if got, want := publishedRPMs(t, in, "up"), []string{"bar-1.0-1.noarch.rpm", "foo-2.0-1.noarch.rpm"}; !slices.Equal(got, want) {
		t.Errorf("keep: 1 published %v, want %v", got, want)
	}
	for _, old := range []string{"Packages/foo-1.0-1.noarch.rpm", "Packages/foo-1.1-1.noarch.rpm"} {
		if n := u.count(old); n != 0 {
			t.Errorf("%s was fetched %d times with keep: 1", old, n)
		}
	}
	// The metadata is the upstream's, byte for byte.
	md, _ := os.ReadDir(filepath.Join(u.dir, "repodata"))
	for _, e := range md {
		if code, body, _ := mirrorGet(t, mirrorURL+"/repos/up/repodata/"+e.Name(), nil); code != http.StatusOK || !bytes.Equal(body, u.file("repodata/"+e.Name())) {
			t.Errorf("repodata/%s: %d, not the upstream's bytes", e.Name(), code)
		}
	}

	// dnf: lists every version, installs and downloads the newest.
	dnf.useRepo(mirrorURL, "up")
	if out, err := dnf.run("--refresh", "repoquery", "--show-duplicates", "--qf", "%{name}-%{version}", "foo"); err != nil || strings.Count(out, "foo-") != 3 {
		t.Errorf("dnf repoquery --show-duplicates foo (the upstream's metadata lists all three): %v\n%s", err, out)
	}
	if out, err := dnf.run("install", "--nogpgcheck", "foo"); err != nil {
		t.Fatalf("dnf install foo: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(dnf.dir, "root", "opt", "foo", "VERSION")); err != nil || !strings.HasPrefix(string(got), "2.0\n") {
		t.Errorf("installed foo: %q %v, want 2.0", got[:min(len(got), 4)], err)
	}
	dl := filepath.Join(dnf.dir, "dl")
	if out, err := dnf.run("download", "--destdir", dl, "foo"); err != nil {
		t.Fatalf("dnf download foo: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(dl, "foo-2.0-1.noarch.rpm")); !bytes.Equal(got, u.file("Packages/foo-2.0-1.noarch.rpm")) {
		t.Errorf("downloaded foo-2.0 differs from the upstream's (%d bytes)", len(got))
	}
	if out, err := dnf.run("download", "--destdir", dl, "foo-1.0"); err == nil {
		t.Errorf("dnf download foo-1.0 worked, but keep: 1 did not fetch it:\n%s", out)
	}

	// keep: 2 fetches 1.1 too (the upstream did not change).
	in.rewrite(policyConfig(u, dir, "      keep: 2\n"))
	in.signal(syscall.SIGHUP)
	in.waitLogN("config reloaded", 1, 10*time.Second)
	if out, err := mirrorSync(t, in, "up"); err != nil || !strings.Contains(out, "3 packages, 1 fetched") {
		t.Fatalf("sync with keep: 2: %v\n%s", err, out)
	}
	if got, want := publishedRPMs(t, in, "up"), []string{"bar-1.0-1.noarch.rpm", "foo-1.1-1.noarch.rpm", "foo-2.0-1.noarch.rpm"}; !slices.Equal(got, want) {
		t.Errorf("keep: 2 published %v, want %v", got, want)
	}

	// keep: 1 without delete leaves 1.1 downloadable; with delete: true it goes.
	in.rewrite(policyConfig(u, dir, "      keep: 1\n      delete: true\n"))
	in.signal(syscall.SIGHUP)
	in.waitLogN("config reloaded", 2, 10*time.Second)
	if out, err := mirrorSync(t, in, "up"); err != nil || !strings.Contains(out, "2 packages, 0 fetched") {
		t.Fatalf("sync with keep: 1, delete: true: %v\n%s", err, out)
	}
	if got, want := publishedRPMs(t, in, "up"), []string{"bar-1.0-1.noarch.rpm", "foo-2.0-1.noarch.rpm"}; !slices.Equal(got, want) {
		t.Errorf("keep: 1, delete: true published %v, want %v", got, want)
	}
}

// testSigningKey is an RSA key as a distribution's package signing key.
func testSigningKey(t *testing.T, name string) (*openpgp.Entity, []byte) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.invalid", &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048, DefaultHash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return e, buf.Bytes()
}

// TestMirrorPolicySignatures: gpgcheck with the upstream's key verifies
// every package before publishing; the .repo file gives the nodes
// gpgcheck=1 and the key, and dnf installs with it. An unsigned package, or
// one signed by another key, fails the sync by name and publishes nothing.
func TestMirrorPolicySignatures(t *testing.T) {
	need(t, "rpmkeys")
	u := newRPMUpstream(t)
	key, pub := testSigningKey(t, "airgapd test vendor")
	stranger, strangerPub := testSigningKey(t, "someone else")
	writeFile(t, filepath.Join(u.dir, "RPM-GPG-KEY-test"), string(pub))
	good := []string{u.addVersion("alpha", "1.0", key), u.addVersion("bravo", "1.0", key)}
	u.index()

	// The real peer agrees: rpm accepts the signed packages with the key,
	// and refuses one signed by another key.
	rpmdb := t.TempDir()
	writeFile(t, filepath.Join(rpmdb, "key.asc"), string(pub))
	if out, err := run(t, 30*time.Second, "rpmkeys", "--dbpath", rpmdb, "--import", filepath.Join(rpmdb, "key.asc")); err != nil {
		t.Fatalf("rpmkeys --import: %v\n%s", err, out)
	}
	for _, rel := range good {
		out, err := run(t, 30*time.Second, "rpmkeys", "--dbpath", rpmdb, "-K", filepath.Join(u.dir, rel))
		if err != nil || !strings.Contains(out, "signatures OK") {
			t.Fatalf("rpmkeys -K %s: %v\n%s", rel, err, out)
		}
	}

	dnf := newDNFRoot(t)
	dir := t.TempDir()
	in := start(t, dir, policyConfig(u, dir, "      gpgcheck: true\n      gpgkey: RPM-GPG-KEY-test\n"))
	mirrorURL := in.status().listener("mirror")
	out, err := mirrorSync(t, in, "up")
	if err != nil || !strings.Contains(out, "2 packages, 2 fetched") {
		t.Fatalf("sync of signed packages: %v\n%s", err, out)
	}
	in.waitLog("package signatures verified", 5*time.Second)
	repo := dnf.useRepo(mirrorURL, "up")
	keyURL := mirrorURL + "/repos/up/RPM-GPG-KEY-up"
	if !strings.Contains(repo, "\ngpgcheck=1\n") || !strings.Contains(repo, "\ngpgkey="+keyURL+"\n") {
		t.Errorf(".repo file does not say gpgcheck=1 with the key:\n%s", repo)
	}
	if code, body, _ := mirrorGet(t, keyURL, nil); code != http.StatusOK || !bytes.Equal(body, pub) {
		t.Errorf("GET the key: %d, %d bytes", code, len(body))
	}
	// dnf with gpgcheck=1 imports the key from the .repo file and checks
	// the signature as it installs.
	if out, err := dnf.run("install", "alpha"); err != nil {
		t.Fatalf("dnf install alpha with gpgcheck=1: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dnf.dir, "root", "opt", "alpha", "VERSION")); err != nil {
		t.Errorf("alpha not installed: %v", err)
	}
	keyID := fmt.Sprintf("%08x", uint32(key.PrimaryKey.KeyId))
	if out, err := run(t, 30*time.Second, "rpm", "--root", filepath.Join(dnf.dir, "root"), "-q", "gpg-pubkey"); err != nil || !strings.Contains(out, "gpg-pubkey-"+keyID) {
		t.Errorf("dnf did not import the key %s from the .repo file's gpgkey: %v\n%s", keyID, err, out)
	}
	want := []string{"alpha", "bravo"}

	// An unsigned package: the sync fails naming it; dnf sees the previous state.
	unsigned := u.addVersion("charlie", "1.0", nil)
	u.index()
	out, err = mirrorSync(t, in, "up")
	if err == nil || !strings.Contains(out, unsigned+": not signed") || !strings.Contains(out, "nothing published") {
		t.Errorf("sync with an unsigned package: %v\n%s", err, out)
	}
	if got := dnf.packages("up"); !slices.Equal(got, want) {
		t.Errorf("after the refused sync dnf sees %v, want the previous %v", got, want)
	}

	// Signed, but by another key: refused the same way. rpm agrees.
	os.Remove(filepath.Join(u.dir, unsigned))
	foreign := u.addVersion("delta", "1.0", stranger)
	u.index()
	if out, _ := run(t, 30*time.Second, "rpmkeys", "--dbpath", rpmdb, "-K", filepath.Join(u.dir, foreign)); strings.Contains(out, "signatures OK") {
		t.Errorf("rpmkeys -K accepts the stranger's package:\n%s", out)
	}
	out, err = mirrorSync(t, in, "up")
	if err == nil || !strings.Contains(out, foreign+": signed with key") || !strings.Contains(out, "not one of gpgkey's") {
		t.Errorf("sync with a package signed by another key: %v\n%s", err, out)
	}
	if got := dnf.packages("up"); !slices.Equal(got, want) {
		t.Errorf("after the refused sync dnf sees %v, want the previous %v", got, want)
	}
	var st policyStatus
	in.status().detail(t, "mirror", &st)
	if st.Repos[0].LastResult != "failed" || !strings.Contains(st.Repos[0].LastError, "delta-1.0-1.noarch.rpm") {
		t.Errorf("status after the refused sync: %+v", st.Repos[0])
	}

	// Trusting the second key too (a second gpgkey) lets it through.
	writeFile(t, filepath.Join(u.dir, "RPM-GPG-KEY-other"), string(strangerPub))
	in.rewrite(policyConfig(u, dir, "      gpgcheck: true\n      gpgkey: RPM-GPG-KEY-test RPM-GPG-KEY-other\n"))
	in.signal(syscall.SIGHUP)
	in.waitLog("config reloaded", 10*time.Second)
	if out, err := mirrorSync(t, in, "up"); err != nil || !strings.Contains(out, "3 packages, 0 fetched") {
		t.Errorf("sync trusting both keys: %v\n%s", err, out)
	}
	if got := dnf.packages("up"); !slices.Equal(got, []string{"alpha", "bravo", "delta"}) {
		t.Errorf("dnf after trusting both keys: %v", got)
	}

	// A package signed by rpm's own rpmsign with an EdDSA key from gpg: rpm
	// 4.18 writes the header-only signature alone. With that key as a
	// local file in gpgkey, it passes; rpmkeys agrees.
	need(t, "rpmsign", "gpg")
	gnupg := filepath.Join(t.TempDir(), "gnupg")
	os.Mkdir(gnupg, 0o700)
	gpgEnv := []string{"GNUPGHOME=" + gnupg}
	gpgRun := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), gpgEnv...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	gpgRun("gpg", "--batch", "--passphrase", "", "--quick-gen-key", "airgapd ed25519 <ed@example.invalid>", "ed25519", "sign", "never")
	edKeyFile := filepath.Join(t.TempDir(), "RPM-GPG-KEY-ed")
	writeFile(t, edKeyFile, gpgRun("gpg", "--armor", "--export", "ed@example.invalid"))
	echo := u.addVersion("echo", "1.0", nil)
	gpgBin, _ := exec.LookPath("gpg") // rpm's default %__gpg is /usr/bin/gpg2 on some systems
	gpgRun("rpmsign", "--define", "__gpg "+gpgBin, "--define", "_gpg_name ed@example.invalid", "--define", "_gpg_path "+gnupg, "--addsign", filepath.Join(u.dir, echo))
	u.index()
	// rpm 4.18 files an EdDSA header signature under DSAHEADER.
	if out, err := exec.Command("rpm", "-qp", "--qf", "%{DSAHEADER:pgpsig}|%{RSAHEADER:pgpsig}|%{SIGPGP:pgpsig}", filepath.Join(u.dir, echo)).Output(); err != nil || !strings.HasPrefix(string(out), "EdDSA/") || !strings.HasSuffix(string(out), "|(none)|(none)") {
		t.Errorf("rpmsign wrote %q (%v), want a header-only EdDSA signature", out, err)
	}
	if out, err := run(t, 30*time.Second, "rpmkeys", "--dbpath", rpmdb, "--import", edKeyFile); err != nil {
		t.Fatalf("rpmkeys --import the EdDSA key: %v\n%s", err, out)
	}
	if out, err := run(t, 30*time.Second, "rpmkeys", "--dbpath", rpmdb, "-K", filepath.Join(u.dir, echo)); err != nil || !strings.Contains(out, "signatures OK") {
		t.Fatalf("rpmkeys -K %s: %v\n%s", echo, err, out)
	}
	if out, err := mirrorSync(t, in, "up"); err == nil || !strings.Contains(out, echo+": signed with key") {
		t.Errorf("sync of the rpmsign'ed package before its key is in gpgkey: %v\n%s", err, out)
	}
	in.rewrite(policyConfig(u, dir, "      gpgcheck: true\n      gpgkey: RPM-GPG-KEY-test RPM-GPG-KEY-other "+edKeyFile+"\n"))
	in.signal(syscall.SIGHUP)
	in.waitLogN("config reloaded", 2, 10*time.Second)
	if out, err := mirrorSync(t, in, "up"); err != nil || !strings.Contains(out, "4 packages") {
		t.Errorf("sync with the EdDSA key as a file: %v\n%s", err, out)
	}
	if got := dnf.packages("up"); !slices.Equal(got, []string{"alpha", "bravo", "delta", "echo"}) {
		t.Errorf("dnf after the EdDSA-signed package: %v", got)
	}
}

// policyStatus is the mirror's status.
type policyStatus = api.MirrorStatus

// TestMirrorPolicySchedule: a running server with sync_every syncs the repo
// without being asked, shows the next sync in status, picks up a new
// package on a later tick, and logs, counts and retries a failed one.
func TestMirrorPolicySchedule(t *testing.T) {
	u := newRPMUpstream(t)
	u.addVersion("alpha", "1.0", nil)
	u.index()
	dir := t.TempDir()
	in := start(t, dir, policyConfig(u, dir, "      sync_every: 1s\n"))
	mirrorURL := in.status().listener("mirror")

	waitStatus := func(what string, ok func(name string, packages int, result, lastError string) bool) policyStatus {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var st policyStatus
			in.status().detail(t, "mirror", &st)
			r := st.Repos[0]
			if ok(r.Name, r.Packages, r.LastResult, r.LastError) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s; status %+v", what, st)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	st := waitStatus("the first scheduled sync", func(_ string, n int, res, _ string) bool { return res == "ok" && n == 1 })
	r := st.Repos[0]
	if r.Schedule != "every 1s" || r.NextSync.IsZero() || r.NextSync.Before(r.LastSync) {
		t.Errorf("status: schedule %q, next sync %v, last sync %v", r.Schedule, r.NextSync, r.LastSync)
	}
	if code, _, _ := mirrorGet(t, mirrorURL+"/repos/up/Packages/alpha-1.0-1.noarch.rpm", nil); code != http.StatusOK {
		t.Errorf("alpha after the scheduled sync: %d", code)
	}

	// A new package upstream shows up on a later tick.
	u.addVersion("bravo", "1.0", nil)
	u.index()
	waitStatus("bravo on a later tick", func(_ string, n int, res, _ string) bool { return res == "ok" && n == 2 })
	if code, _, _ := mirrorGet(t, mirrorURL+"/repos/up/Packages/bravo-1.0-1.noarch.rpm", nil); code != http.StatusOK {
		t.Errorf("bravo after the scheduled sync: %d", code)
	}

	// A corrupted package fails the scheduled sync: logged, counted; the
	// next ticks retry, and once the upstream is fixed it goes through.
	bad := u.addVersion("charlie", "1.0", nil)
	u.index()
	goodBytes := u.file(bad)
	flipped := bytes.Clone(goodBytes)
	flipped[len(flipped)-10] ^= 0xff
	writeFile(t, filepath.Join(u.dir, bad), string(flipped))
	waitStatus("the failed scheduled sync", func(_ string, _ int, res, e string) bool { return res == "failed" && strings.Contains(e, "charlie") })
	in.waitLog("scheduled sync failed", 10*time.Second)
	metrics, err := run(t, 10*time.Second, "curl", "-fsS", "--unix-socket", filepath.Join(in.dir, "run", "api.sock"), "http://airgapd/metrics")
	if err != nil || !strings.Contains(metrics, `airgapd_mirror_scheduled_syncs_total{repo="up",result="failed"}`) || !strings.Contains(metrics, `airgapd_mirror_scheduled_syncs_total{repo="up",result="ok"}`) {
		t.Errorf("metrics: %v\n%s", err, grepLines(metrics, "scheduled"))
	}
	writeFile(t, filepath.Join(u.dir, bad), string(goodBytes))
	waitStatus("the retried sync", func(_ string, n int, res, _ string) bool { return res == "ok" && n == 3 })

	// A manual sync beside the schedule is not doubled: it runs, or finds
	// the scheduled one under way and says so.
	out, err := mirrorSync(t, in, "up")
	if err != nil && !strings.Contains(out, "another sync of this repo is running") {
		t.Errorf("manual sync beside the schedule: %v\n%s", err, out)
	}
}
