package ntpd

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/facebook/time/ntp/chrony"

	"github.com/airgapd/airgapd/internal/conf"
)

// startWithCmdMon starts a server like startServer with a cmdmon socket
// on a loopback port too, and returns that socket's port.
func startWithCmdMon(t *testing.T, cfg Config) (*running, string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	cfg.CmdMon.Listen = []string{"127.0.0.1:0"}
	s := startServer(t, cfg, Deps{CmdMonUDP: []net.PacketConn{pc}})
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	return s, port
}

// chronyc runs the real chronyc against port and returns what it printed.
func chronyc(t *testing.T, port string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("chronyc"); err != nil {
		t.Skip("chronyc is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "chronyc", append([]string{"-h", "127.0.0.1", "-p", port, "-n"}, args...)...).CombinedOutput()
	return string(out), err
}

// TestChronycAgainstCmdMon: airgapd synced to two upstream airgapds, and
// the real chronyc's tracking, sources, sourcestats and activity print
// what airgapd's own status says; privileged commands get "501 Not
// authorised".
func TestChronycAgainstCmdMon(t *testing.T) {
	var ups []string
	for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		c := loopbackConfig()
		c.Allow = []string{"127.0.0.0/8"}
		c.LocalStratum = 3
		ups = append(ups, startServerOn(t, ip+":0", c, Deps{}).addr)
	}
	cfg := loopbackConfig()
	cfg.Servers = ups
	cfg.MinPoll, cfg.MaxPoll = -4, -3
	cfg.FallbackAfter = conf.Duration(5 * time.Second)
	cfg.RateLimit.Enabled = false
	s, port := startWithCmdMon(t, cfg)
	waitFor(t, 15*time.Second, "synced with both sources combined", func() bool {
		st := s.Status()
		return st.State == "synced" && len(st.Sources) == 2 && st.Sources[0].Mark != "?" && st.Sources[1].Mark != "?"
	})

	out, err := chronyc(t, port, "tracking")
	if err != nil {
		t.Fatalf("chronyc tracking: %v\n%s", err, out)
	}
	t.Logf("chronyc tracking:\n%s", out)
	st := s.Status()
	selected := strings.Split(st.Selected, ":")[0]
	ref := fmtRefID(selected)
	for _, want := range []string{
		"Reference ID    : " + ref + " (" + selected + ")",
		"Stratum         : 4",
		"Leap status     : Normal",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tracking lacks %q:\n%s", want, out)
		}
	}

	// Sources poll 16 times a second here, so mark and reach may move
	// while chronyc runs: its line must match the status read just
	// before or just after it.
	before := s.Status()
	out, err = chronyc(t, port, "sources", "-v")
	if err != nil {
		t.Fatalf("chronyc sources -v: %v\n%s", err, out)
	}
	after := s.Status()
	t.Logf("chronyc sources -v:\n%s", out)
	if !strings.Contains(out, "MS Name/IP address") || !strings.Contains(out, "Source mode  '^' = server") {
		t.Errorf("sources -v:\n%s", out)
	}
	for i, src := range after.Sources {
		ip := strings.Split(src.Address, ":")[0]
		line := regexp.MustCompile(`(?m)^\^(.) ` + regexp.QuoteMeta(ip) + `\s+(\d+)\s+(-?\d+)\s+(\d+)`).FindStringSubmatch(out)
		if line == nil {
			t.Errorf("no line for %s in:\n%s", ip, out)
			continue
		}
		matches := func(st SourceStatus) bool { return line[1] == st.Mark && (line[4] == st.Reach || line[4] == "377") }
		if line[2] != "3" || !matches(src) && (i >= len(before.Sources) || !matches(before.Sources[i])) {
			t.Errorf("source %s: chronyc %q, status mark %s reach %s", ip, line[0], src.Mark, src.Reach)
		}
	}
	if !strings.Contains(out, "^* ") {
		t.Errorf("no selected source in:\n%s", out)
	}

	out, err = chronyc(t, port, "sourcestats")
	if err != nil || !strings.Contains(out, "Name/IP Address            NP  NR") || !strings.Contains(out, "127.0.0.2") || !strings.Contains(out, "127.0.0.3") {
		t.Errorf("sourcestats (%v):\n%s", err, out)
	}
	out, err = chronyc(t, port, "sourcename", "127.0.0.3")
	if err != nil || strings.TrimSpace(out) != ups[1] {
		t.Errorf("sourcename 127.0.0.3 (%v): %q, want %q", err, out, ups[1])
	}
	out, err = chronyc(t, port, "-N", "sources")
	if err != nil || !strings.Contains(out, ups[0]) || !strings.Contains(out, ups[1]) {
		t.Errorf("sources -N (%v):\n%s", err, out)
	}
	t.Logf("chronyc -N sources:\n%s", out)
	out, err = chronyc(t, port, "activity")
	if err != nil || !strings.Contains(out, "2 sources online") {
		t.Errorf("activity (%v):\n%s", err, out)
	}
	for _, cmd := range []string{"clients", "serverstats", "makestep"} {
		out, _ = chronyc(t, port, cmd)
		if !strings.Contains(out, "501 Not authorised") {
			t.Errorf("%s: want 501 Not authorised, got:\n%s", cmd, out)
		}
	}
}

// fmtRefID is an IPv4 reference ID as chronyc prints it.
func fmtRefID(ip string) string {
	return strings.ToUpper(hex.EncodeToString(net.ParseIP(ip).To4()))
}

// TestCmdMonValues decodes the replies with facebook/time's chrony client
// and compares them with the status.
func TestCmdMonValues(t *testing.T) {
	s, port := startWithCmdMon(t, loopbackConfig())
	conn, err := net.Dial("udp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	c := &chrony.Client{Connection: conn}
	r, err := c.Communicate(chrony.NewTrackingPacket())
	if err != nil {
		t.Fatal(err)
	}
	tr := r.(*chrony.ReplyTracking)
	st := s.Status()
	if tr.RefID != refidLOCL || int(tr.Stratum) != st.Stratum || tr.IPAddr != nil || tr.LeapStatus != 0 {
		t.Errorf("tracking %+v; status %+v", tr.Tracking, st)
	}
	if math.Abs(tr.CurrentCorrection-st.Offset) > 1e-3 || math.Abs(tr.FreqPPM-st.Frequency) > 1e-3 {
		t.Errorf("correction %v freq %v; status offset %v freq %v", tr.CurrentCorrection, tr.FreqPPM, st.Offset, st.Frequency)
	}
	r, err = c.Communicate(chrony.NewSourcesPacket())
	if err != nil || r.(*chrony.ReplySources).NSources != 0 {
		t.Errorf("sources %+v, %v", r, err)
	}
	if _, err := c.Communicate(chrony.NewSourceDataPacket(0)); err == nil || !strings.Contains(err.Error(), "NOSUCHSOURCE") {
		t.Errorf("source 0 of none: %v", err)
	}
}

// TestCmdMonDenied: outside cmdmon.allow, nothing comes back, as chronyd.
func TestCmdMonDenied(t *testing.T) {
	cfg := loopbackConfig()
	cfg.CmdMon.Allow = []string{"127.0.0.9/32"}
	s, port := startWithCmdMon(t, cfg)
	conn, err := net.Dial("udp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	c := &chrony.Client{Connection: conn}
	if r, err := c.Communicate(chrony.NewTrackingPacket()); err == nil {
		t.Errorf("answered from outside cmdmon.allow: %+v", r)
	}
	if got := counterValue(s.metrics.cmdRequests.WithLabelValues("denied")); got != 1 {
		t.Errorf("denied counter %v, want 1", got)
	}
}

// cmdRequestBytes is a request for cmd padded to size bytes.
func cmdRequestBytes(version uint8, cmd chrony.CommandType, seq uint32, index int32, size int) []byte {
	b := make([]byte, size)
	if size < cmdRequestHead {
		return b
	}
	b[0], b[1] = version, cmdPktRequest
	binary.BigEndian.PutUint16(b[4:], uint16(cmd))
	binary.BigEndian.PutUint32(b[8:], seq)
	if size >= cmdRequestHead+4 {
		binary.BigEndian.PutUint32(b[cmdRequestHead:], uint32(index))
	}
	return b
}

func TestAnswerCommand(t *testing.T) {
	s, _ := startWithCmdMon(t, loopbackConfig())
	tests := []struct {
		name       string
		req        []byte
		wantResult string
		wantStatus chrony.ResponseStatusType
		wantLen    int
		mgmt       bool
	}{
		{"tracking", cmdRequestBytes(6, cmdTracking, 7, 0, 104), "answered", sttSuccess, 104, false},
		{"tracking padded more", cmdRequestBytes(6, cmdTracking, 7, 0, 400), "answered", sttSuccess, 104, false},
		{"tracking unpadded", cmdRequestBytes(6, cmdTracking, 7, 0, 40), "error", sttBadPktLength, cmdReplyHead, false},
		{"n_sources", cmdRequestBytes(6, cmdNSources, 1, 0, 32), "answered", sttSuccess, 32, false},
		{"activity", cmdRequestBytes(6, cmdActivity, 1, 0, 48), "answered", sttSuccess, 48, false},
		{"null", cmdRequestBytes(6, cmdNull, 1, 0, 28), "answered", sttSuccess, 28, false},
		{"no such source", cmdRequestBytes(6, cmdSourceData, 1, 3, 76), "error", sttNoSuchSource, cmdReplyHead, false},
		{"no such source name", cmdRequestBytes(6, cmdSourceName, 1, 0, 284), "error", sttNoSuchSource, cmdReplyHead, false},
		{"clients", cmdRequestBytes(6, 68, 1, 0, 520), "unauthorised", sttUnauth, cmdReplyHead, false},
		{"clients from mgmt", cmdRequestBytes(6, 68, 1, 0, 520), "answered", sttSuccess, 520, true},
		{"clients from mgmt unpadded", cmdRequestBytes(6, 68, 1, 0, 100), "error", sttBadPktLength, cmdReplyHead, true},
		{"serverstats", cmdRequestBytes(6, 54, 1, 0, 72), "unauthorised", sttUnauth, cmdReplyHead, false},
		{"serverstats from mgmt", cmdRequestBytes(6, 54, 1, 0, 72), "answered", sttSuccess, 72, true},
		{"settime", cmdRequestBytes(6, 1000, 1, 0, 100), "unauthorised", sttUnauth, cmdReplyHead, false},
		{"old version", cmdRequestBytes(5, cmdTracking, 1, 0, 104), "error", sttBadPktVersion, cmdReplyHead, false},
		{"short", cmdRequestBytes(6, cmdTracking, 1, 0, 27), "invalid", 0, 0, false},
		{"a reply", append([]byte{6, 2}, make([]byte, 100)...), "invalid", 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, res := s.answerCommand(tc.req, nil, tc.mgmt)
			if res != tc.wantResult || len(out) != tc.wantLen {
				t.Fatalf("result %s, %d bytes; want %s, %d", res, len(out), tc.wantResult, tc.wantLen)
			}
			if len(out) == 0 {
				return
			}
			if st := chrony.ResponseStatusType(binary.BigEndian.Uint16(out[8:])); st != tc.wantStatus {
				t.Errorf("status %s, want %s", st, tc.wantStatus)
			}
			if !bytes.Equal(out[4:6], tc.req[4:6]) || !bytes.Equal(out[16:20], tc.req[8:12]) {
				t.Errorf("command or sequence not echoed: % x", out[:20])
			}
		})
	}
}

// decodeChronyFloat is the format's definition, written independently of
// the encoder: coefficient × 2^(exponent − 25).
func decodeChronyFloat(x uint32) float64 {
	exp := int(int32(x) >> 25)
	coef := int32(x<<7) >> 7
	return float64(coef) * math.Pow(2, float64(exp-25))
}

func TestChronyFloat(t *testing.T) {
	for _, v := range []float64{0, 1, -1, 0.5, 1e-9, -3.25e-6, 12.3456789, 1e6, -1e-19, 123456789.0} {
		got := decodeChronyFloat(encodeChronyFloat(v))
		if v == 0 && got != 0 || v != 0 && math.Abs(got-v)/math.Abs(v) > 1e-7 {
			t.Errorf("%g encodes to %g", v, got)
		}
	}
	if got := decodeChronyFloat(encodeChronyFloat(math.Inf(1))); got < 1e18 {
		t.Errorf("+Inf saturates to %g", got)
	}
	if got := decodeChronyFloat(encodeChronyFloat(1e-40)); math.Abs(got) > 1e-19 {
		t.Errorf("1e-40 encodes to %g", got)
	}
}

// FuzzCmdMonRequest: any bytes from an allowed address. Invariants: no
// panic; a reply is never longer than its request (no amplification), is
// a version 6 reply and echoes the command and sequence. The seeds (and
// testdata/fuzz/FuzzCmdMonRequest, when present) run with every go test.
func FuzzCmdMonRequest(f *testing.F) {
	for cmd, n := range cmdReplyLength {
		f.Add(cmdRequestBytes(6, cmd, 1, 0, n))
		f.Add(cmdRequestBytes(6, cmd, 2, 0, n-1))
	}
	f.Add(cmdRequestBytes(6, cmdSourceData, 3, -1, 76))
	f.Add(cmdRequestBytes(6, cmdSourceStats, 4, 1<<30, 84))
	f.Add(cmdRequestBytes(6, 68, 5, 0, 520))
	f.Add(cmdRequestBytes(6, 68, 5, 1<<30, 521))
	f.Add(cmdRequestBytes(6, 54, 5, 0, 73))
	f.Add(cmdRequestBytes(4, cmdTracking, 6, 0, 104))
	f.Add([]byte{6, 1})
	f.Add([]byte{})
	s, err := New(loopbackConfig(), Deps{Clock: newFakeClock(nil)})
	if err != nil {
		f.Fatal(err)
	}
	s.sources.configure([]string{"127.0.0.1:1", "unresolved.invalid"}, 0, 1, time.Minute)
	f.Fuzz(func(t *testing.T, req []byte) {
		out, _ := s.answerCommand(req, nil, len(req)%2 == 1) // odd lengths: from cmdmon.mgmt
		if len(out) == 0 {
			return
		}
		if len(out) > len(req) {
			t.Fatalf("%d-byte reply to a %d-byte request", len(out), len(req))
		}
		if out[0] != cmdVersion || out[1] != cmdPktReply || !bytes.Equal(out[4:6], req[4:6]) || !bytes.Equal(out[16:20], req[8:12]) {
			t.Fatalf("reply header % x for request % x", out[:cmdReplyHead], req[:min(len(req), 20)])
		}
	})
}

// TestCmdMonReload: cmdmon.allow changes in place; cmdmon.listen needs a
// new instance.
func TestCmdMonReload(t *testing.T) {
	cfg := loopbackConfig()
	s, port := startWithCmdMon(t, cfg)
	ask := func() error {
		conn, err := net.Dial("udp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
		_, err = (&chrony.Client{Connection: conn}).Communicate(chrony.NewActivityPacket())
		return err
	}
	if err := ask(); err != nil {
		t.Fatalf("before reload: %v", err)
	}
	cfg.CmdMon.Listen = []string{"127.0.0.1:0"}
	cfg.CmdMon.Allow = []string{"10.0.0.0/8"}
	if err := s.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if err := ask(); err == nil {
		t.Error("answered after cmdmon.allow dropped the loopback")
	}
	cfg.CmdMon.Listen = []string{"127.0.0.1:323"}
	if err := s.Reload(cfg); !errors.Is(err, conf.ErrRestartNeeded) {
		t.Errorf("new cmdmon.listen: %v, want ErrRestartNeeded", err)
	}
}

// TestChronycWildcardSocket: on a wildcard cmdmon socket the reply leaves
// from the address chronyc asked (127.0.0.2), which its connected socket
// needs, not the route's 127.0.0.1.
func TestChronycWildcardSocket(t *testing.T) {
	if _, err := exec.LookPath("chronyc"); err != nil {
		t.Skip("chronyc is not installed")
	}
	pc, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	cfg := loopbackConfig()
	cfg.CmdMon.Listen = []string{"0.0.0.0:0"}
	startServer(t, cfg, Deps{CmdMonUDP: []net.PacketConn{pc}})
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "chronyc", "-h", "127.0.0.2", "-p", port, "-n", "tracking").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Reference ID    : 4C4F434C (LOCL)") {
		t.Errorf("chronyc -h 127.0.0.2 tracking (%v):\n%s", err, out)
	}
}
