package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// hostileZones are what a named upstream serves in TestDNSUpstreamScrubbed:
// a CNAME into airgapd's own lab.internal, named's own (different) copy of
// lab.internal, a record with the largest TTL a zone file takes, and a TXT
// set far larger than a UDP answer.
func hostileZones() []zoneFile {
	var txt strings.Builder
	for i := range 40 {
		fmt.Fprintf(&txt, "big      IN TXT \"%03d %s\"\n", i, strings.Repeat("x", 180))
	}
	return []zoneFile{
		{name: "evil.test", body: `$TTL 300
@        IN SOA ns.evil.test. h.evil.test. 1 3600 600 86400 60
@        IN NS  ns.evil.test.
ns       IN A   127.0.0.1
www      IN CNAME admin.lab.internal.
forever  2147483647 IN A 192.0.2.77
` + txt.String()},
		{name: "lab.internal", body: `$TTL 300
@        IN SOA ns.evil.test. h.evil.test. 1 3600 600 86400 60
@        IN NS  ns.evil.test.
admin    IN A   6.6.6.6
`},
	}
}

var (
	ttlOfA   = regexp.MustCompile(`(?m)^forever\.evil\.test\.\s+(\d+)\s+IN\s+A\s`)
	msgSize  = regexp.MustCompile(`MSG SIZE\s+rcvd: (\d+)`)
	ansCount = regexp.MustCompile(`ANSWER: (\d+),`)
)

// TestDNSUpstreamScrubbed: with named as the forwarder, airgapd never
// passes on named's data for its own zone (the CNAME into lab.internal is
// finished from the local zone), serves no TTL above max_ttl, and answers a
// UDP query too large for the client with TC and no partial RRset, as BIND
// does (an empty answer, the question and OPT only).
func TestDNSUpstreamScrubbed(t *testing.T) {
	up := newNamed(t, hostileZones(), "")
	in := start(t, t.TempDir(), fmt.Sprintf(`
dns:
  listen: ["127.0.0.1:0"]
  forwarders: [%q]
  forward: only
  cache: { max_ttl: 1h }
  zones:
    - name: lab.internal
      records: ["admin 300 A 192.168.10.10"]
`, up.addr()))
	addr := dnsAddr(t, in)

	// Twice each: from upstream, then from the cache.
	for _, round := range []string{"upstream", "cache"} {
		d := dig(t, addr, "www.evil.test", "A")
		if d.status != "NOERROR" || !d.answerHas("CNAME admin.lab.internal.") || !d.answerHas("A 192.168.10.10") || strings.Contains(d.out, "6.6.6.6") {
			t.Errorf("%s: www.evil.test (CNAME into the local zone) answered\n%s\nwant the CNAME and the local A 192.168.10.10, never named's 6.6.6.6", round, d.out)
		}
		out, err := digAt(addr, "forever.evil.test", "A", "+noall", "+answer", "+time=3", "+tries=1")
		m := ttlOfA.FindStringSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("%s: forever.evil.test: %v\n%s", round, err, out)
		}
		if ttl, _ := strconv.Atoi(m[1]); ttl > 3600 {
			t.Errorf("%s: forever.evil.test served with TTL %d, above max_ttl 1h (3600)", round, ttl)
		}
	}

	out, err := digAt(addr, "big.evil.test", "TXT", "+notcp", "+ignore", "+bufsize=4096", "+time=3", "+tries=1")
	if err != nil {
		t.Fatalf("dig big.evil.test TXT: %v\n%s", err, out)
	}
	d := parseDig(out)
	size := msgSize.FindStringSubmatch(out)
	count := ansCount.FindStringSubmatch(out)
	if !d.hasFlag("tc") || count == nil || count[1] != "0" || size == nil {
		t.Fatalf("a TXT set too large for UDP: want TC with ANSWER: 0, got\n%s", out)
	}
	if n, _ := strconv.Atoi(size[1]); n > 100 {
		t.Errorf("truncated answer is %d bytes; want the question and OPT only (about 50)", n)
	}
	// And over TCP the whole set arrives.
	if d := dig(t, addr, "big.evil.test", "TXT", "+tcp"); d.status != "NOERROR" || len(d.answer) != 40 {
		t.Errorf("over TCP: %s with %d records, want all 40", d.status, len(d.answer))
	}
}
