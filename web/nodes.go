package web

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/atomicfile"
)

// The Nodes page: which nodes use the admin host, joined by address and
// named by the local zones' A/AAAA records, and the seed checklist each
// node's node.sh reported last (POST /bootstrap/report, accepted only from
// the networks dns.allow_query names: the nodes the admin host serves).

// checklist is one node's last report.
type checklist struct {
	Addr  string    `json:"addr"`
	Host  string    `json:"host,omitempty"`
	At    time.Time `json:"at"`
	Lines []string  `json:"lines"`
	Fails int       `json:"fails"`
}

// reports keeps the last checklist of each node (bounded), in
// DataDir/web/checklists.json so that a restart keeps them.
type reports struct {
	mu   sync.Mutex
	path string
	m    map[string]checklist
}

const maxReports = 1024

func loadReports(dir string) *reports {
	rs := &reports{m: map[string]checklist{}}
	if dir == "" {
		return rs
	}
	rs.path = filepath.Join(dir, "checklists.json")
	if b, err := os.ReadFile(rs.path); err == nil {
		json.Unmarshal(b, &rs.m)
	}
	return rs
}

func (rs *reports) put(c checklist) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if _, ok := rs.m[c.Addr]; !ok && len(rs.m) >= maxReports {
		var oldest string
		for k, v := range rs.m {
			if oldest == "" || v.At.Before(rs.m[oldest].At) {
				oldest = k
			}
		}
		delete(rs.m, oldest)
	}
	rs.m[c.Addr] = c
	if rs.path == "" {
		return nil
	}
	b, err := json.Marshal(rs.m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(rs.path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(rs.path, b, 0o600)
}

func (rs *reports) all() map[string]checklist {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make(map[string]checklist, len(rs.m))
	for k, v := range rs.m {
		out[k] = v
	}
	return out
}

// reportAllowed: the networks whose nodes may report (dns.allow_query,
// as server hands it in NodeBootstrap.ReportFrom); loopback when none.
func (s *Server) reportAllowed(addr string) (bool, []string) {
	var nets []string
	if s.deps.Bootstrapper != nil {
		nets = s.deps.Bootstrapper.NodeBootstrap().ReportFrom
	}
	if len(nets) == 0 {
		nets = []string{"127.0.0.0/8", "::1/128"}
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false, nets
	}
	for _, n := range nets {
		if !strings.Contains(n, "/") {
			if b, err := netip.ParseAddr(n); err == nil && b == a {
				return true, nets
			}
			continue
		}
		if p, err := netip.ParsePrefix(n); err == nil && p.Contains(a) {
			return true, nets
		}
	}
	return false, nets
}

var (
	checkLine = regexp.MustCompile(`^(PASS|FAIL)  [[:print:]]{1,200}$`)
	hostName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$`)
)

// parseChecklist reads node.sh's checklist: lines of `PASS  what` or
// `FAIL  what` (printable ASCII, at most 64 lines, 16 KiB), blank lines
// skipped. It returns the lines and how many failed.
func parseChecklist(body io.Reader) ([]string, int, error) {
	var lines []string
	fails := 0
	sc := bufio.NewScanner(io.LimitReader(body, 16<<10))
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), "\r")
		if l == "" {
			continue
		}
		if !checkLine.MatchString(l) || len(lines) == 64 {
			return nil, 0, errors.New("send node.sh's checklist: lines of `PASS  what` or `FAIL  what`, at most 64")
		}
		lines = append(lines, l)
		if strings.HasPrefix(l, "FAIL") {
			fails++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("read the checklist: %w", err)
	}
	if len(lines) == 0 {
		return nil, 0, errors.New("empty checklist: send node.sh's PASS/FAIL lines")
	}
	return lines, fails, nil
}

// handleReport takes node.sh's checklist: the PASS/FAIL lines as the body
// (text, at most 64 lines), ?host=HOSTNAME.
func (s *Server) handleReport(w http.ResponseWriter, r *http.Request) {
	addr := remoteIP(r)
	setAudit(r, "node checklist reported", addr)
	if ok, nets := s.reportAllowed(addr); !ok {
		http.Error(w, fmt.Sprintf("reports are taken from the nodes' networks only (dns.allow_query: %s); %s is not in them", strings.Join(nets, ", "), addr), http.StatusForbidden)
		return
	}
	c := checklist{Addr: addr, At: s.now()}
	if h := r.URL.Query().Get("host"); hostName.MatchString(h) {
		c.Host = h
	}
	lines, fails, err := parseChecklist(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.Lines, c.Fails = lines, fails
	if err := s.reports.put(c); err != nil {
		s.log.Warn("cannot keep a node's checklist", "addr", addr, "err", err)
	}
	s.log.Info("node checklist", "addr", addr, "host", c.Host, "checks", len(c.Lines), "failed", c.Fails)
	fmt.Fprintf(w, "thanks: %d checks, %d failed\n", len(c.Lines), c.Fails)
}

// nodeRow is one address on the Nodes page.
type nodeRow struct {
	Addr      string
	Names     []string
	DNS       int64
	NTP       uint64
	Pulls     int64
	PullBytes int64
	Downloads int64
	DownBytes int64
	LastSeen  time.Time
	Check     *checklist
}

type nodesPage struct {
	Rows       []nodeRow
	ReportFrom []string
	Command    string
}

func (s *Server) nodeRows(st api.StatusReport) []nodeRow {
	rows := map[string]*nodeRow{}
	row := func(addr string, when time.Time) *nodeRow {
		if a, err := netip.ParseAddr(addr); err == nil {
			addr = a.Unmap().String()
		}
		r := rows[addr]
		if r == nil {
			r = &nodeRow{Addr: addr}
			rows[addr] = r
		}
		if when.After(r.LastSeen) {
			r.LastSeen = when
		}
		return r
	}
	s.nodes.foldDNS(st, s.now())
	for a, c := range s.nodes.dns.snapshot() {
		row(a, c.Last).DNS = c.Requests
	}
	if sv := st.Service(api.ServiceNTP); sv.NTP != nil {
		for _, c := range sv.NTP.Clients {
			r := row(c.Address, c.LastSeen)
			r.NTP = c.Packets
			if c.Name != "" && !slices.Contains(r.Names, c.Name) {
				r.Names = append(r.Names, c.Name)
			}
		}
	}
	for a, c := range s.nodes.registry.snapshot() {
		r := row(a, c.Last)
		r.Pulls, r.PullBytes = c.Requests, c.Bytes
	}
	for a, c := range s.nodes.mirror.snapshot() {
		r := row(a, c.Last)
		r.Downloads, r.DownBytes = c.Requests, c.Bytes
	}
	for a, c := range s.reports.all() {
		r := row(a, c.At)
		cc := c
		r.Check = &cc
		if c.Host != "" && !slices.Contains(r.Names, c.Host) {
			r.Names = append(r.Names, c.Host)
		}
	}
	names := s.zoneNames()
	out := make([]nodeRow, 0, len(rows))
	for a, r := range rows {
		for _, n := range names[a] {
			if !slices.Contains(r.Names, n) {
				r.Names = append(r.Names, n)
			}
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
	return out
}

// zoneNames maps each address in the local zones' A/AAAA records to the
// names that have it.
func (s *Server) zoneNames() map[string][]string {
	out := map[string][]string{}
	_, data, err := s.configFile()
	if err != nil {
		return out
	}
	zones, err := ZoneRecords(data)
	if err != nil {
		return out
	}
	for zone, recs := range zones {
		for _, rec := range recs {
			f := strings.Fields(rec)
			for i := 1; i+1 < len(f); i++ {
				if (f[i] == "A" || f[i] == "AAAA") && i+1 < len(f) {
					if a, err := netip.ParseAddr(f[i+1]); err == nil {
						name := f[0]
						if name == "@" {
							name = zone
						} else if !strings.HasSuffix(name, ".") {
							name += "." + strings.TrimSuffix(zone, ".")
						}
						out[a.String()] = append(out[a.String()], strings.TrimSuffix(name, "."))
					}
					break
				}
			}
		}
	}
	return out
}

func (s *Server) pageNodes(w http.ResponseWriter, r *http.Request) {
	st := s.status()
	_, nets := s.reportAllowed("")
	p := nodesPage{Rows: s.nodeRows(st), ReportFrom: nets, Command: s.nodeLine(r).Command}
	s.render(w, r, "nodes", http.StatusOK, pageData{Title: "Nodes", Nav: "nodes", Status: st, Data: p})
}
