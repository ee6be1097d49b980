package e2e

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The OCI distribution-spec conformance suite, the one registries publish
// their results from, pinned to a commit (97274622c111, 2026-08-31) that
// the module proxy serves.
const (
	conformanceModule  = "github.com/opencontainers/distribution-spec/conformance"
	conformanceVersion = "v0.0.0-20260831232431-97274622c111"
)

// conformanceSuite builds the suite once into a cache folder outside the
// checkout (AIRGAPD_CONFORMANCE, default /var/cache/airgapd-test/conformance)
// and returns the binary; later runs reuse it.
func conformanceSuite(t *testing.T) string {
	t.Helper()
	root := os.Getenv("AIRGAPD_CONFORMANCE")
	if root == "" {
		root = "/var/cache/airgapd-test/conformance"
	}
	bin := filepath.Join(root, conformanceVersion, "conformance")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	gobin, err := os.MkdirTemp(filepath.Dir(bin), ".build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(gobin)
	// `go install module@version` builds the suite's own module with its
	// own go.sum, whatever this checkout's go.mod says; the README's way
	// (`go build`), not the deprecated `go test` one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "install", conformanceModule+"@"+conformanceVersion)
	build.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the conformance suite: %v\n%s", err, out)
	}
	if err := os.Rename(filepath.Join(gobin, "conformance"), bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// conformanceReport is what the suite printed: the overall result, the
// totals by status, and each top-level group's status.
type conformanceReport struct {
	result string
	totals map[string]int
	groups map[string]string
	block  string // the result and totals, as printed
}

var (
	conformanceGroupLine = regexp.MustCompile(`^  OCI Conformance Test/([^/]+): (\S+)$`)
	conformanceTotalLine = regexp.MustCompile(`^  (\w+)\.*: +(\d+)$`)
)

func parseConformance(out string) conformanceReport {
	rep := conformanceReport{totals: map[string]int{}, groups: map[string]string{}}
	var block strings.Builder
	inTotals := false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if r, ok := strings.CutPrefix(line, "OCI Conformance Result: "); ok {
			rep.result, inTotals = r, true
			block.WriteString(line + "\n")
			continue
		}
		if inTotals {
			m := conformanceTotalLine.FindStringSubmatch(line)
			if m == nil {
				inTotals = false
				continue
			}
			n, _ := strconv.Atoi(m[2])
			rep.totals[m[1]] = n
			block.WriteString(line + "\n")
			continue
		}
		if m := conformanceGroupLine.FindStringSubmatch(line); m != nil {
			rep.groups[m[1]] = m[2]
		}
	}
	rep.block = block.String()
	return rep
}

// runConformance runs the suite against registry (host:port) with the
// given OCI_* settings and returns its report; the results folder is the
// test's own.
func runConformance(t *testing.T, bin, registry string, settings ...string) conformanceReport {
	t.Helper()
	dir := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OCI_") {
			env = append(env, kv)
		}
	}
	// dir holds no oci-conformance.yaml: the settings are these alone.
	env = append(env, "OCI_REGISTRY="+registry, "OCI_RESULTS_DIR="+filepath.Join(dir, "results"), "OCI_LOG=warn")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = dir
	cmd.Env = append(env, settings...)
	out, err := cmd.CombinedOutput() // exits 1 when a check fails; judged below
	rep := parseConformance(string(out))
	if rep.result == "" {
		t.Fatalf("the conformance suite printed no result (%v):\n%s", err, out)
	}
	t.Logf("conformance suite against %s:\n%s", registry, rep.block)
	if rep.result != "Pass" {
		t.Logf("suite output:\n%s", out)
	}
	return rep
}

// assertConformant fails unless every group passed (or, for one named in
// disabled, was disabled by the run's settings) and the totals show no
// failure or error. The groups in mustPass must be among them.
func assertConformant(t *testing.T, rep conformanceReport, mustPass, disabled []string) {
	t.Helper()
	for _, g := range mustPass {
		if rep.groups[g] != "Pass" {
			t.Errorf("group %q: %q, want Pass", g, rep.groups[g])
		}
	}
	for g, status := range rep.groups {
		if status != "Pass" && !(status == "Disabled" && slices.Contains(disabled, g)) {
			t.Errorf("group %q: %s", g, status)
		}
	}
	if rep.result != "Pass" || rep.totals["FAIL"] != 0 || rep.totals["Error"] != 0 || rep.totals["Pass"] == 0 {
		t.Errorf("conformance result %s: %d passed, %d failed, %d errors", rep.result, rep.totals["Pass"], rep.totals["FAIL"], rep.totals["Error"])
	}
}

// TestRegistryConformance runs the OCI distribution-spec conformance suite,
// every API and data option at its default (pushes, deletes, referrers,
// sha512 content, non-distributable layers), against a fresh airgapd
// registry with a push user: over plain HTTP, and over TLS trusting only
// the appliance CA.
func TestRegistryConformance(t *testing.T) {
	bin := conformanceSuite(t)
	fixed := []string{"sha512 blobs", "sha512", "non-distributable-layers", "invalid-digest-format", "sha256 blobs", "bad-digest-image"}
	for _, tc := range []struct {
		name string
		tls  string // registry.tls
	}{
		{"http", "off"},
		{"tls", "auto"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in := start(t, dir, `
registry:
  listen: "127.0.0.1:0"
  tls: `+tc.tls+`
  users: [{name: admin, password_hash: "`+registryTestHash+`"}]
`)
			u := in.status().listener("registry")
			settings := []string{"OCI_USERNAME=admin", "OCI_PASSWORD=s3cret"}
			host, ok := strings.CutPrefix(u, "http://")
			if tc.tls == "off" {
				settings = append(settings, "OCI_TLS=disabled")
			} else {
				host, ok = strings.CutPrefix(u, "https://")
				// Verified against the appliance CA alone, never "insecure".
				settings = append(settings, "OCI_TLS=enabled", "SSL_CERT_FILE="+filepath.Join(dir, "data", "pki", "ca.crt"))
			}
			if !ok {
				t.Fatalf("registry listener %q is not what registry.tls %s serves", u, tc.tls)
			}
			assertConformant(t, runConformance(t, bin, host, settings...), fixed, nil)
		})
	}
}

// TestRegistryConformancePullThrough holds the mirror side to the spec: the
// suite, read-only (no pushes, no deletes), pulls an image and its blobs
// from a loopback stand-in upstream through airgapd's pull-through path,
// every request carrying ?ns= as containerd sends it for a mirror.
func TestRegistryConformancePullThrough(t *testing.T) {
	bin := conformanceSuite(t)
	const ns, repo, tag = "mirror.test", "conformance/repo1", "ro"
	up := newStandIn(t)
	img := ociImage(t, nil, 64<<10)
	up.push(t, repo+":"+tag, img)

	in := start(t, t.TempDir(), `
registry:
  listen: "127.0.0.1:0"
  tls: off
  users: [{name: admin, password_hash: "`+registryTestHash+`"}]
  pull_from: [127.0.0.1/32]
  mirrors:
    - {name: `+ns+`, url: "`+up.srv.URL+`"}
`)
	target, err := url.Parse(in.status().listener("registry"))
	if err != nil || target.Scheme != "http" {
		t.Fatalf("registry listener %v (%v) is not plain HTTP", target, err)
	}
	// The suite knows nothing of ns=: a loopback proxy adds it to every
	// request, as nsTransport does for go-containerregistry.
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = nsTransport{ns: ns, base: http.DefaultTransport}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)

	rep := runConformance(t, bin, strings.TrimPrefix(front.URL, "http://"),
		"OCI_TLS=disabled", "OCI_REPO1="+repo, "OCI_API_PUSH=false",
		"OCI_API_BLOBS_DELETE=false", "OCI_API_MANIFESTS_DELETE=false", "OCI_API_TAGS_DELETE=false",
		"OCI_RO_DATA_TAGS="+tag, "OCI_RO_DATA_MANIFESTS="+imageDigest(t, img),
		"OCI_RO_DATA_BLOBS="+strings.Join(blobDigests(t, img), " "))
	// Without pushes the suite has no blob uploads to test.
	assertConformant(t, rep, []string{"read-only", "missing-manifest"}, []string{"sha256 blobs", "sha512 blobs"})
	if up.manifests.Load() == 0 || up.blobGets.Load() == 0 {
		t.Errorf("the upstream served %d manifest and %d blob GETs: the suite was not answered through pull-through",
			up.manifests.Load(), up.blobGets.Load())
	}
}
