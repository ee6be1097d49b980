package e2e

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beevik/ntp"

	"github.com/airgapd/airgapd/api"
)

// The NTP tests run the real chronyd as the upstream, as a one-shot client
// (chronyd -Q) and as a continuous client, per ../shared PEERS.md. Every
// chronyd gets its own config, pid file, drift file, ports and socket
// folder, and never touches the clock (-x, -Q).

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// chronyd runs `chronyd -x -d -u root -f CONF` in its own folder (mode
// 0700, as its socket needs), stopped by PID at cleanup. lines are the
// config; pidfile, driftfile, logdir and the command socket are added.
func chronyd(t *testing.T, name string, lines ...string) (dir string, cmd *exec.Cmd) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	lines = append(lines, "bindcmdaddress "+filepath.Join(dir, "chronyd.sock"), "pidfile "+filepath.Join(dir, "chronyd.pid"),
		"driftfile "+filepath.Join(dir, "drift"), "logdir "+dir)
	conf := filepath.Join(dir, "chrony.conf")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := newLogBuffer()
	cmd = exec.Command("chronyd", "-x", "-d", "-u", "root", "-f", conf)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", name, log.String())
		}
	})
	return dir, cmd
}

// ntpQuery asks addr once, from the local address from ("" = any).
func ntpQuery(addr, from string) (*ntp.Response, error) {
	return ntp.QueryWithOptions(addr, ntp.QueryOptions{Timeout: 500 * time.Millisecond, LocalAddress: from})
}

// eventually polls cond every 200 ms until it holds or limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, limit, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ntpDetail is the ntp service's status.
type ntpDetail = api.NTPStatus

func (in *instance) ntp() ntpDetail {
	in.t.Helper()
	out, err := exec.Command(airgapdBin, "status", "--json", "--socket", filepath.Join(in.dir, "run", "api.sock")).CombinedOutput()
	if err != nil {
		in.t.Fatalf("airgapd status: %v\n%s", err, out)
	}
	var r api.StatusReport
	if err := json.Unmarshal(out, &r); err != nil {
		in.t.Fatalf("decode status: %v\n%s", err, out)
	}
	for _, s := range r.Services {
		if s.Name == "ntp" {
			if s.NTP == nil {
				return ntpDetail{}
			}
			return *s.NTP
		}
	}
	in.t.Fatalf("no ntp service in status:\n%s", out)
	return ntpDetail{}
}

// ntpAddr is airgapd's bound NTP address (the config says port 0).
func (in *instance) ntpAddr() string {
	in.t.Helper()
	l := in.ntp().Listen
	if len(l) != 1 {
		in.t.Fatalf("ntp listens on %v", l)
	}
	return l[0]
}

func portOf(t *testing.T, addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var wrongBy = regexp.MustCompile(`System clock wrong by ([-+0-9.e]+) seconds`)

// chronyQ runs a one-shot chrony client against port: `chronyd -Q -u root
// -t LIMIT`. It returns the offset it printed, or ok false.
func chronyQ(t *testing.T, port string, limit int) (offset float64, ok bool, out string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "q")
	os.Mkdir(dir, 0o700)
	conf := filepath.Join(dir, "client.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("server 127.0.0.1 port %s iburst\nport 0\ncmdport 0\npidfile %s/chronyd.pid\n", port, dir)), 0o600)
	out, err := run(t, time.Duration(limit+10)*time.Second, "chronyd", "-Q", "-u", "root", "-t", strconv.Itoa(limit), "-f", conf)
	m := wrongBy.FindStringSubmatch(out)
	if err != nil || m == nil {
		return 0, false, out
	}
	v, perr := strconv.ParseFloat(m[1], 64)
	return v, perr == nil, out
}

// TestNTPChrony: a real chronyd at local stratum 3 is the upstream; airgapd
// syncs from it (^*), serves stratum 4 for longer than twice fallback_after
// while it lives, and chrony clients — one-shot and continuous — accept
// airgapd. Then the upstream dies: airgapd falls back to stratum 10, leap 0,
// and the continuous client keeps ^*.
func TestNTPChrony(t *testing.T) {
	need(t, "chronyd", "chronyc")
	upPort := freeUDPPort(t)
	upAddr := fmt.Sprintf("127.0.0.1:%d", upPort)
	_, upstream := chronyd(t, "upstream", fmt.Sprintf("port %d", upPort), "bindaddress 127.0.0.1", "local stratum 3",
		"allow 127.0.0.0/8", fmt.Sprintf("cmdport %d", freeUDPPort(t)), "bindcmdaddress 127.0.0.1", "cmdallow 127.0.0.0/8")
	eventually(t, 10*time.Second, "upstream chronyd answers", func() (bool, string) {
		r, err := ntpQuery(upAddr, "")
		return err == nil && r.Stratum == 3, fmt.Sprint(err)
	})

	const fallback = 3 * time.Second
	in := start(t, t.TempDir(), fmt.Sprintf(`ntp:
  listen: [127.0.0.1:0]
  allow: [127.0.0.0/8]
  servers: [%q]
  minpoll: 0
  maxpoll: 1
  fallback_after: %s
  ratelimit: { interval: -2, burst: 16 }
`, upAddr, fallback))
	eventually(t, 15*time.Second, "airgapd selects the upstream (^*)", func() (bool, string) {
		d := in.ntp()
		return d.State == "synced" && len(d.Sources) == 1 && d.Sources[0].Mark == "*", d.Summary + "\n" + d.SourcesView
	})
	addr := in.ntpAddr()
	port := portOf(t, addr)

	// The continuous client, started now so it syncs while the rest runs.
	cmdPort := freeUDPPort(t)
	chronyd(t, "client", fmt.Sprintf("server 127.0.0.1 port %s iburst minpoll 0 maxpoll 0", port), "port 0",
		fmt.Sprintf("cmdport %d", cmdPort), "bindcmdaddress 127.0.0.1")
	clientSelects := func() (bool, string) {
		out, _ := run(t, 5*time.Second, "chronyc", "-n", "-h", "127.0.0.1", "-p", strconv.Itoa(cmdPort), "sources")
		return strings.Contains(out, "^* 127.0.0.1"), out
	}

	// The one-shot client, alongside.
	type qResult struct {
		off float64
		ok  bool
		out string
	}
	qc := make(chan qResult, 1)
	go func() {
		off, ok, out := chronyQ(t, port, 20)
		qc <- qResult{off, ok, out}
	}()

	// Stratum 4 for longer than twice fallback_after while the upstream lives.
	for end := time.Now().Add(2*fallback + time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		r, err := ntpQuery(addr, "")
		if err != nil {
			t.Fatalf("airgapd did not answer: %v", err)
		}
		if r.Stratum != 4 || r.Leap != ntp.LeapNoWarning || r.ReferenceString() != "127.0.0.1" {
			t.Fatalf("airgapd served stratum %d leap %d refid %s while the upstream lives; want 4, 0, 127.0.0.1\n%s",
				r.Stratum, r.Leap, r.ReferenceString(), in.ntp().SourcesView)
		}
	}
	q := <-qc
	if !q.ok {
		t.Fatalf("chronyd -Q did not accept airgapd:\n%s", q.out)
	}
	if math.Abs(q.off) >= 0.010 {
		t.Errorf("chronyd -Q: system clock wrong by %g s against airgapd, want |offset| < 10 ms", q.off)
	}
	t.Logf("chronyd -Q against airgapd: offset %g s", q.off)
	eventually(t, 20*time.Second, "the chrony client selects airgapd (^*)", clientSelects)

	// The upstream dies.
	upstream.Process.Kill()
	killed := time.Now()
	eventually(t, fallback+8*time.Second, "airgapd falls back to local stratum 10", func() (bool, string) {
		r, err := ntpQuery(addr, "")
		if err != nil {
			return false, err.Error()
		}
		return r.Stratum == 10 && r.Leap == ntp.LeapNoWarning && string(binary.BigEndian.AppendUint32(nil, r.ReferenceID)) == "LOCL",
			fmt.Sprintf("stratum %d leap %d", r.Stratum, r.Leap)
	})
	if since := time.Since(killed); since < fallback-time.Second {
		t.Errorf("fell back %s after the upstream died, before fallback_after (%s)", since, fallback)
	}
	if d := in.ntp(); d.State != "local" {
		t.Errorf("status after fallback: %s", d.Summary)
	}
	// The client keeps airgapd selected across the change of stratum: once
	// it has taken airgapd's stratum 10 (its tracking says 11), airgapd is
	// still ^*.
	eventually(t, 15*time.Second, "the chrony client tracks airgapd at stratum 10 with ^*", func() (bool, string) {
		tr, _ := run(t, 5*time.Second, "chronyc", "-n", "-h", "127.0.0.1", "-p", strconv.Itoa(cmdPort), "tracking")
		if !regexp.MustCompile(`Stratum\s*:\s*11\b`).MatchString(tr) {
			return false, tr
		}
		return clientSelects()
	})
}

// TestNTPLeap3WithoutLocal: with local_stratum 0 and no upstream ever
// reached, airgapd serves leap 3 and chronyd -Q refuses it.
func TestNTPLeap3WithoutLocal(t *testing.T) {
	need(t, "chronyd")
	dead := freeUDPPort(t) // nobody listens here
	in := start(t, t.TempDir(), fmt.Sprintf(`ntp:
  listen: [127.0.0.1:0]
  allow: [127.0.0.0/8]
  servers: ["127.0.0.1:%d"]
  minpoll: 0
  maxpoll: 0
  local_stratum: 0
`, dead))
	addr := in.ntpAddr()
	r, err := ntpQuery(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Leap != ntp.LeapNotInSync {
		t.Errorf("leap %d, want 3", r.Leap)
	}
	if off, ok, out := chronyQ(t, portOf(t, addr), 8); ok {
		t.Errorf("chronyd -Q accepted an unsynchronised airgapd (offset %g):\n%s", off, out)
	}
	eventually(t, 5*time.Second, "status unsynchronised", func() (bool, string) {
		d := in.ntp()
		return d.State == "unsynchronised", d.Summary
	})
	if r, err := ntpQuery(addr, ""); err != nil || r.Leap != ntp.LeapNotInSync {
		t.Errorf("after the start-up iburst: %v, %v; want leap 3", r, err)
	}
}

// request is a plain client packet with mode (and version 4).
func rawPacket(mode byte) []byte {
	b := make([]byte, 48)
	b[0] = 4<<3 | mode
	binary.BigEndian.PutUint64(b[40:], uint64(time.Now().Unix()+2208988800)<<32)
	return b
}

// TestNTPAccess: outside allow gets nothing; a flood above the rate limit
// gets KoD RATE while a quiet client keeps its answers; mode 6 and 7 get
// nothing.
func TestNTPAccess(t *testing.T) {
	in := start(t, t.TempDir(), `ntp:
  listen: [127.0.0.1:0]
  allow: [127.0.0.0/29]
  ratelimit: { interval: 0, burst: 4 }
`)
	addr := in.ntpAddr()
	if _, err := ntpQuery(addr, "127.0.0.9"); err == nil {
		t.Error("127.0.0.9 is outside allow (127.0.0.0/29) but got an answer")
	}

	// The flood: 200 requests from 127.0.0.2 as fast as they go.
	flood, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	to, _ := net.ResolveUDPAddr("udp", addr)
	type counts struct{ answers, kods int }
	got := make(chan counts, 1)
	go func() {
		var c counts
		buf := make([]byte, 512)
		for {
			flood.SetReadDeadline(time.Now().Add(time.Second))
			n, _, err := flood.ReadFrom(buf)
			if err != nil {
				got <- c
				return
			}
			if n >= 48 && buf[1] == 0 && string(buf[12:16]) == "RATE" {
				c.kods++
			} else {
				c.answers++
			}
		}
	}()
	for range 200 {
		flood.WriteTo(rawPacket(3), to)
	}
	// Meanwhile a quiet client is answered normally.
	for i := range 3 {
		r, err := ntpQuery(addr, "127.0.0.3")
		if err != nil || r.Stratum != 10 || r.IsKissOfDeath() {
			t.Errorf("quiet client, request %d: %v %v", i, r, err)
		}
	}
	c := <-got
	if c.kods < 1 || c.answers > 6 {
		t.Errorf("flood of 200: %d answers, %d KoD RATE; want at most the burst answered and a KoD", c.answers, c.kods)
	}
	t.Logf("flood of 200 requests: %d answered, %d KoD RATE, the rest dropped", c.answers, c.kods)

	// Control (6) and private (7, monlist) modes, symmetric active (1) and
	// broadcast (5): no answer, from an allowed address.
	pc, err := net.ListenPacket("udp", "127.0.0.4:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, mode := range []byte{6, 7, 1, 5} {
		pc.WriteTo(rawPacket(mode), to)
	}
	pc.SetReadDeadline(time.Now().Add(time.Second))
	if n, _, err := pc.ReadFrom(make([]byte, 512)); err == nil {
		t.Errorf("got a %d-byte answer to a mode 6/7/1/5 packet", n)
	}

	d := in.ntp()
	var row string
	for _, c := range d.Clients {
		if c.Address == "127.0.0.2" {
			row = fmt.Sprintf("%+v", c)
			if c.KoDs < 1 || c.Drops < 100 || c.Packets != 200 {
				t.Errorf("clients row for the flood: %s", row)
			}
		}
	}
	if row == "" {
		t.Errorf("no clients row for 127.0.0.2: %+v", d.Clients)
	}
	out, err := exec.Command(airgapdBin, "ntp", "clients", "--socket", filepath.Join(in.dir, "run", "api.sock")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "127.0.0.2") || !strings.Contains(string(out), "KoD") {
		t.Errorf("airgapd ntp clients: %v\n%s", err, out)
	}
}

// TestNTPSettime: `airgapd ntp settime` moves the time a running airgapd
// serves, and its status says so.
func TestNTPSettime(t *testing.T) {
	in := start(t, t.TempDir(), `ntp:
  listen: [127.0.0.1:0]
  allow: [127.0.0.0/8]
`)
	addr := in.ntpAddr()
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	out, err := run(t, 15*time.Second, airgapdBin, "ntp", "settime", to, "--config", in.config)
	if err != nil || !strings.Contains(out, "by the running server") {
		t.Fatalf("airgapd ntp settime: %v\n%s", err, out)
	}
	r, err := ntpQuery(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if d := r.ClockOffset - time.Hour; d.Abs() > time.Second {
		t.Errorf("served time is %s ahead of this host, want 1h", r.ClockOffset)
	}
	if r.Stratum != 10 || r.Validate() != nil {
		t.Errorf("stratum %d, validate %v", r.Stratum, r.Validate())
	}
	if d := in.ntp(); !strings.Contains(d.Summary, "time set by operator") {
		t.Errorf("status: %s", d.Summary)
	}
	if out, err := run(t, 10*time.Second, airgapdBin, "ntp", "settime", "not-a-time", "--config", in.config); err == nil {
		t.Errorf("settime accepted a bad time:\n%s", out)
	}
}

// TestNTPSettimeBesideSource: beside a selected upstream (a chronyd on
// loopback), settime is refused with a message naming the source and
// --force; forced, the status leaves "synced" and the history marks the
// step; the next sample takes over and clears "time set by operator". The
// audit log has the refusal, the forced change and an offline one.
func TestNTPSettimeBesideSource(t *testing.T) {
	need(t, "chronyd")
	upPort := freeUDPPort(t)
	chronyd(t, "upstream", fmt.Sprintf("port %d", upPort), "bindaddress 127.0.0.1", "local stratum 3", "allow 127.0.0.0/8", "cmdport 0")
	dir := t.TempDir()
	in := start(t, dir, fmt.Sprintf("ntp:\n  listen: [127.0.0.1:0]\n  allow: [127.0.0.0/8]\n  servers: [127.0.0.1:%d]\n  minpoll: -1\n  maxpoll: -1\n", upPort))
	waitNTP := func(what string, ok func(d ntpDetail) bool) ntpDetail {
		t.Helper()
		var d ntpDetail
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if d = in.ntp(); ok(d) {
				return d
			}
		}
		t.Fatalf("%s: status %s", what, d.Summary)
		return d
	}
	waitNTP("synced to the upstream chronyd", func(d ntpDetail) bool { return d.State == "synced" })
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	out, err := run(t, 15*time.Second, airgapdBin, "ntp", "settime", to, "--config", in.config)
	if err == nil || !strings.Contains(out, "upstream source is selected") || !strings.Contains(out, fmt.Sprint(upPort)) || !strings.Contains(out, "--force") {
		t.Fatalf("settime beside a selected source: %v\n%s\nwant it refused, naming the source and --force", err, out)
	}
	if r, err := ntpQuery(in.ntpAddr(), ""); err != nil || r.ClockOffset.Abs() > time.Second {
		t.Fatalf("a refused settime moved the served time: %v %v", r, err)
	}
	if out, err := run(t, 15*time.Second, airgapdBin, "ntp", "settime", to, "--force", "--config", in.config); err != nil {
		t.Fatalf("settime --force: %v\n%s", err, out)
	}
	d := in.ntp()
	if d.State == "synced" || !strings.Contains(d.Summary, "time set by operator") {
		t.Errorf("after a forced settime the status says %q (%s), want not synced, set by the operator", d.Summary, d.State)
	}
	if n := len(d.History); n == 0 || !d.History[n-1].Operator {
		t.Errorf("the offset history does not mark the operator's step: %+v", d.History)
	}
	waitNTP("the upstream takes over again", func(d ntpDetail) bool {
		return d.State == "synced" && !strings.Contains(d.Summary, "operator")
	})
	in.signal(syscall.SIGTERM)
	in.waitExit(30 * time.Second)
	if out, err := run(t, 15*time.Second, airgapdBin, "ntp", "settime", to, "--config", in.config); err != nil || !strings.Contains(out, "queued") {
		t.Fatalf("offline settime: %v\n%s", err, out)
	}
	audit, _ := os.ReadFile(filepath.Join(dir, "data", "web", "audit.log"))
	for _, want := range []string{`"result":"failed: an upstream source is selected`, `(forced)","result":"ok`, `"who":"root (offline CLI)"`} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("audit.log lacks %s:\n%s", want, audit)
		}
	}
}
