package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// named is a real BIND instance on a loopback port, standing in for the
// internet's servers (authoritative) or for a secondary.
type named struct {
	t     *testing.T
	netns string // "" = this namespace
	ip    string // "" = 127.0.0.1
	dir   string
	port  int
	conf  string
	cmd   *exec.Cmd
	log   *logBuffer
}

// zoneFile is one zone named serves as primary.
type zoneFile struct {
	name, body string
}

// newNamed writes a named.conf with the given zones (primary) and extra
// zone statements, and starts it. Query logging goes to DIR/query.log, so
// a test can tell whether a query reached named.
func newNamed(t *testing.T, zones []zoneFile, extra string) *named {
	t.Helper()
	return newNamedIn(t, &named{t: t, dir: t.TempDir(), port: freeUDPTCPPort(t)}, zones, extra)
}

// newNamedAt runs named on ip:53 inside network namespace netns.
func newNamedAt(t *testing.T, netns, ip string, zones []zoneFile) *named {
	t.Helper()
	return newNamedIn(t, &named{t: t, dir: t.TempDir(), port: 53, netns: netns, ip: ip}, zones, "")
}

func newNamedIn(t *testing.T, n *named, zones []zoneFile, extra string) *named {
	t.Helper()
	need(t, "named", "dig")
	var stanzas strings.Builder
	for _, z := range zones {
		base := strings.Trim(z.name, ".")
		if base == "" {
			base = "root"
		}
		file := filepath.Join(n.dir, base+".zone")
		if err := os.WriteFile(file, []byte(z.body), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&stanzas, "zone %q { type primary; file %q; };\n", z.name, file)
	}
	n.conf = filepath.Join(n.dir, "named.conf")
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { %[5]s; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	querylog yes;
	notify no;
};
controls { };
logging {
	channel q { file "%[1]s/query.log"; print-time yes; };
	category queries { q; };
	channel rest { file "%[1]s/named.log"; severity info; };
	category default { rest; };
};
%[3]s
%[4]s
`, n.dir, n.port, stanzas.String(), extra, n.listenIP())
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("named-checkconf", n.conf).CombinedOutput(); err != nil {
		t.Fatalf("named-checkconf: %v\n%s", err, out)
	}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *named) listenIP() string {
	if n.ip != "" {
		return n.ip
	}
	return "127.0.0.1"
}

func (n *named) addr() string {
	if n.ip != "" {
		return net.JoinHostPort(n.ip, strconv.Itoa(n.port))
	}
	return fmt.Sprintf("127.0.0.1:%d", n.port)
}

// start runs named in the foreground (-f) and waits until it answers.
func (n *named) start() {
	n.t.Helper()
	n.log = newLogBuffer()
	n.cmd = netnsCommand(n.netns, "named", "-f", "-u", "root", "-c", n.conf)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if out, err := digIn(n.netns, n.addr(), "version.bind", "TXT", "CH", "+time=1", "+tries=1"); err == nil && strings.Contains(out, "status:") {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(n.dir, "named.log"))
			n.t.Fatalf("named did not start:\n%s\n%s", n.log.String(), log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *named) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	n.cmd.Process.Kill()
	n.cmd.Wait()
	n.cmd = nil
}

// queries counts the queries for name in named's query log (lines like
// "client … (name): query: name IN A +E(0)").
func (n *named) queries(name string) int {
	b, _ := os.ReadFile(filepath.Join(n.dir, "query.log"))
	return strings.Count(strings.ToLower(string(b)), "query: "+strings.ToLower(name)+" ")
}

// freeUDPTCPPort finds a loopback port free for both UDP and TCP.
func freeUDPTCPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free port for UDP and TCP")
	return 0
}

// digResult is what dig printed, parsed the way a person reads it.
type digResult struct {
	out     string
	status  string
	flags   []string
	answer  []string // answer-section lines, whitespace collapsed
	auth    []string
	queryMs int
}

func (d digResult) hasFlag(f string) bool {
	for _, x := range d.flags {
		if x == f {
			return true
		}
	}
	return false
}

// answerHas reports whether an answer line contains every part.
func (d digResult) answerHas(parts ...string) bool {
	for _, l := range d.answer {
		ok := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

var (
	statusRE = regexp.MustCompile(`status: (\w+)`)
	flagsRE  = regexp.MustCompile(`;; flags: ([a-z ]+);`)
	timeRE   = regexp.MustCompile(`;; Query time: (\d+) msec`)
)

func digAt(server, name string, args ...string) (string, error) {
	return digIn("", server, name, args...)
}

// digIn runs dig inside network namespace netns.
func digIn(netns, server, name string, args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(server)
	full := append([]string{"@" + host, "-p", port, name}, args...)
	out, err := netnsCommand(netns, "dig", full...).CombinedOutput()
	return string(out), err
}

// dig asks server and parses the reply; it fails the test if dig fails.
func dig(t *testing.T, server, name string, args ...string) digResult {
	t.Helper()
	out, err := digAt(server, name, append([]string{"+time=3", "+tries=1"}, args...)...)
	if err != nil && !strings.Contains(out, "status:") {
		t.Fatalf("dig %s %v: %v\n%s", name, args, err, out)
	}
	return parseDig(out)
}

func parseDig(out string) digResult {
	d := digResult{out: out}
	if m := statusRE.FindStringSubmatch(out); m != nil {
		d.status = m[1]
	}
	if m := flagsRE.FindStringSubmatch(out); m != nil {
		d.flags = strings.Fields(m[1])
	}
	if m := timeRE.FindStringSubmatch(out); m != nil {
		d.queryMs, _ = strconv.Atoi(m[1])
	}
	section := ""
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, ";; ANSWER SECTION"):
			section = "answer"
		case strings.HasPrefix(l, ";; AUTHORITY SECTION"):
			section = "auth"
		case strings.HasPrefix(l, ";;") || strings.TrimSpace(l) == "":
			section = ""
		case section == "answer":
			d.answer = append(d.answer, strings.Join(strings.Fields(l), " "))
		case section == "auth":
			d.auth = append(d.auth, strings.Join(strings.Fields(l), " "))
		}
	}
	return d
}
