package adopt

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// chronyIgnored are chrony.conf directives airgapd has no use for, with why.
var chronyIgnored = map[string]string{
	"driftfile":      "airgapd keeps its clock model in data_dir and does not steer the clock by default",
	"rtcsync":        "airgapd leaves the RTC to the kernel",
	"keyfile":        "symmetric NTP keys are not supported",
	"logdir":         "airgapd logs to stderr/journald; sources and clients are in the UI and /metrics",
	"log":            "airgapd logs to stderr/journald; sources and clients are in the UI and /metrics",
	"ntsdumpdir":     "NTS is not supported",
	"leapsectz":      "airgapd takes leap seconds from its upstream servers",
	"maxupdateskew":  "airgapd's source selection has its own bounds",
	"cmdport":        "chronyc's port: airgapd's control socket is runtime_dir/api.sock (airgapd status)",
	"bindcmdaddress": "chronyc's socket: airgapd's control socket is runtime_dir/api.sock (airgapd status)",
	"dumpdir":        "airgapd keeps its state in data_dir",
	"refclock":       "reference clocks (PPS, SHM, SOCK, PHC) are not supported; airgapd syncs from NTP servers only",
	"deny":           "airgapd lists only who is allowed (ntp.allow); narrow allow instead",
	"hwtimestamp":    "airgapd takes kernel receive timestamps, not hardware ones",
}

type chronyImport struct {
	doc        *Document
	rep        *Report
	file       string
	bind       []Pos
	bindAddrs  []string
	port       string
	portAt     Pos
	sawLocal   bool
	sawPolling bool
	servers    []string
	serversAt  Pos
	allow      []string
	allowAt    Pos
	depth      int // of include, confdir and sourcedir being followed
}

// importChrony maps a chrony.conf, and the files its include, confdir
// and sourcedir lines name, into the ntp section.
func importChrony(path string, doc *Document, rep *Report) error {
	c := &chronyImport{doc: doc, rep: rep, file: path}
	doc.setHead("ntp", "ntp: imported from "+path+" (chrony.conf)")
	doc.section("ntp")
	if err := c.readFile(path, false); err != nil {
		return err
	}
	c.finish()
	return nil
}

// maxChronyDepth stops include loops, as for named.conf.
const maxChronyDepth = 16

// readFile reads one file's directives; sourcesOnly is a sourcedir's
// *.sources file, which chronyd reads only server, pool and peer from.
func (c *chronyImport) readFile(path string, sourcesOnly bool) error {
	if c.depth > maxChronyDepth {
		return fmt.Errorf("%s: includes nested deeper than %d: a loop?", path, maxChronyDepth)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read chrony.conf: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.ContainsRune("#!;%", rune(text[0])) {
			continue
		}
		at, f := Pos{File: path, Line: line}, strings.Fields(text)
		if kw := strings.ToLower(f[0]); sourcesOnly && kw != "server" && kw != "pool" && kw != "peer" {
			c.rep.add(at, text, NoEquivalent, "a sourcedir file holds only server, pool and peer lines; chronyd ignores this one too")
			continue
		}
		if err := c.directive(at, text, f); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// follow reads the files an include, confdir or sourcedir line names, as
// chronyd does: include takes a glob; confdir the *.conf files of its
// folders, by name, the first folder's winning a name given twice;
// sourcedir the *.sources files of its folders. Absent folders and globs
// that match nothing are skipped, as chronyd skips them.
func (c *chronyImport) follow(at Pos, text, kw string, args []string) error {
	if len(args) == 0 {
		c.rep.add(at, text, NoEquivalent, "%s needs a file or folder", kw)
		return nil
	}
	var files []string
	switch kw {
	case "include":
		files, _ = filepath.Glob(args[0])
		sort.Strings(files)
	default:
		pattern := map[string]string{"confdir": "*.conf", "sourcedir": "*.sources"}[kw]
		seen := map[string]bool{}
		for _, dir := range args {
			matches, _ := filepath.Glob(filepath.Join(dir, pattern))
			for _, m := range matches {
				if !seen[filepath.Base(m)] {
					seen[filepath.Base(m)] = true
					files = append(files, m)
				}
			}
		}
		sort.Slice(files, func(i, j int) bool { return filepath.Base(files[i]) < filepath.Base(files[j]) })
	}
	if len(files) == 0 {
		c.rep.add(at, text, Mapped, "followed: nothing there to import")
		return nil
	}
	c.rep.add(at, text, Mapped, "followed: %s", strings.Join(files, ", "))
	c.depth++
	defer func() { c.depth-- }()
	for _, f := range files {
		if err := c.readFile(f, kw == "sourcedir"); err != nil {
			return fmt.Errorf("%s: %s: %w", at, kw, err)
		}
	}
	return nil
}

func (c *chronyImport) directive(at Pos, text string, f []string) error {
	switch kw := strings.ToLower(f[0]); kw {
	case "include", "confdir", "sourcedir":
		return c.follow(at, text, kw, f[1:])
	case "server", "pool", "peer":
		c.source(at, text, kw, f)
	case "allow":
		c.allowLine(at, text, f)
	case "local":
		c.local(at, text, f)
	case "makestep":
		c.makestep(at, text, f)
	case "ratelimit":
		c.ratelimit(at, text, f)
	case "bindaddress":
		c.bind = append(c.bind, at)
		c.bindAddrs = append(c.bindAddrs, f[len(f)-1])
		c.rep.add(at, text, Mapped, "ntp.listen address")
	case "port":
		c.port, c.portAt = f[len(f)-1], at
		c.rep.add(at, text, Mapped, "ntp.listen port")
	default:
		if why, ok := chronyIgnored[kw]; ok {
			c.rep.add(at, text, NoEquivalent, "%s", why)
			return nil
		}
		c.rep.add(at, text, NoEquivalent, "directive %s is not supported", kw)
	}
	return nil
}

func (c *chronyImport) source(at Pos, text, kw string, f []string) {
	if len(f) < 2 {
		c.rep.add(at, text, NoEquivalent, "%s needs a host", kw)
		return
	}
	host, port := f[1], ""
	var notes []string
	for i := 2; i < len(f); i++ {
		switch o := strings.ToLower(f[i]); o {
		case "iburst":
		case "port", "minpoll", "maxpoll":
			if i+1 >= len(f) {
				notes = append(notes, o+" without a value")
				continue
			}
			i++
			switch o {
			case "port":
				port = f[i]
			default:
				c.poll(at, o, f[i], &notes)
			}
		case "key", "maxsources", "polltarget", "minstratum", "maxdelay", "maxdelayratio", "maxdelaydevratio", "mindelay", "asymmetry", "offset", "minsamples", "maxsamples", "filter", "version", "extfield":
			notes = append(notes, "ignored "+o+" "+valueAt(f, i+1))
			i++
		default:
			notes = append(notes, "ignored "+o)
		}
	}
	switch kw {
	case "pool":
		notes = append(notes, "a pool is polled as one server name here, not as up to maxsources of its addresses")
	case "peer":
		notes = append(notes, "polled as a server: airgapd has no symmetric mode")
	}
	s := host
	if port != "" && port != "123" {
		s = net.JoinHostPort(host, port)
	}
	c.servers = append(c.servers, s)
	if c.serversAt.File == "" {
		c.serversAt = at
	}
	c.rep.add(at, text, outcomeOf(notes), "ntp.servers: %s%s", s, notesText(notes))
}

func valueAt(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

// poll sets the global minpoll/maxpoll from the first source that gives one.
func (c *chronyImport) poll(at Pos, key, v string, notes *[]string) {
	n, err := strconv.Atoi(v)
	if err != nil {
		*notes = append(*notes, key+" "+v+" is not a number")
		return
	}
	if existing := c.doc.get("ntp", key); existing != nil {
		if existing.Value != v {
			*notes = append(*notes, fmt.Sprintf("%s %s: airgapd has one %s for all servers (%s kept)", key, v, key, existing.Value))
		}
		return
	}
	c.doc.set("ntp", key, integer(n), at)
	if !c.sawPolling {
		c.sawPolling = true
		*notes = append(*notes, "its poll interval applies to every server in airgapd")
	}
}

// chronySubnet reads chrony's allow/deny forms: ADDR, ADDR/BITS, or a
// shortened IPv4 network like 192.168.10 (a /24).
func chronySubnet(s string) (string, bool) {
	if cidr, _ := normalizeCIDR(s); cidr != "" {
		return cidr, true
	}
	parts := strings.Split(s, ".")
	if len(parts) < 4 && !strings.Contains(s, "/") {
		full := append(parts, make([]string, 4-len(parts))...)
		for i := len(parts); i < 4; i++ {
			full[i] = "0"
		}
		if p, err := netip.ParsePrefix(strings.Join(full, ".") + "/" + strconv.Itoa(8*len(parts))); err == nil {
			return p.Masked().String(), true
		}
	}
	return "", false
}

func (c *chronyImport) allowLine(at Pos, text string, f []string) {
	args := f[1:]
	if len(args) > 0 && strings.EqualFold(args[0], "all") {
		args = args[1:]
	}
	if c.allowAt.File == "" {
		c.allowAt = at
	}
	if len(args) == 0 {
		c.allow = append(c.allow, "0.0.0.0/0", "::/0")
		c.rep.add(at, text, Mapped, "ntp.allow: every client")
		return
	}
	cidr, ok := chronySubnet(args[0])
	if !ok {
		c.rep.add(at, text, NoEquivalent, "%q is not an address or network (host names are not resolved at import)", args[0])
		return
	}
	c.allow = append(c.allow, cidr)
	c.rep.add(at, text, Mapped, "ntp.allow: %s", cidr)
}

func (c *chronyImport) local(at Pos, text string, f []string) {
	c.sawLocal = true
	stratum := 10
	var notes []string
	for i := 1; i < len(f); i++ {
		switch strings.ToLower(f[i]) {
		case "stratum":
			if i+1 < len(f) {
				if n, err := strconv.Atoi(f[i+1]); err == nil {
					stratum = n
				}
				i++
			}
		default:
			notes = append(notes, "ignored "+f[i])
		}
	}
	c.doc.set("ntp", "local_stratum", integer(stratum), at)
	c.rep.add(at, text, outcomeOf(notes), "ntp.local_stratum: %d, after fallback_after without an upstream%s", stratum, notesText(notes))
}

func (c *chronyImport) makestep(at Pos, text string, f []string) {
	if len(f) != 3 {
		c.rep.add(at, text, NoEquivalent, "makestep takes THRESHOLD LIMIT")
		return
	}
	secs, err1 := strconv.ParseFloat(f[1], 64)
	limit, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		c.rep.add(at, text, NoEquivalent, "makestep takes a number of seconds and a count")
		return
	}
	threshold := time.Duration(secs * float64(time.Second)).String()
	c.doc.set("ntp", "makestep", mapping("threshold", str(threshold), "limit", integer(limit)), at)
	c.rep.add(at, text, Mapped, "ntp.makestep: threshold %s, limit %d (used only with discipline: true)", threshold, limit)
}

func (c *chronyImport) ratelimit(at Pos, text string, f []string) {
	pairs := []any{"enabled", boolean(true)}
	var notes []string
	for i := 1; i+1 < len(f); i += 2 {
		n, err := strconv.Atoi(f[i+1])
		switch k := strings.ToLower(f[i]); {
		case err != nil:
			notes = append(notes, "ignored "+f[i]+" "+f[i+1])
		case k == "interval" || k == "burst":
			pairs = append(pairs, k, integer(n))
		default:
			notes = append(notes, "ignored "+k+" "+f[i+1])
		}
	}
	c.doc.set("ntp", "ratelimit", mapping(pairs...), at)
	c.rep.add(at, text, outcomeOf(notes), "ntp.ratelimit%s", notesText(notes))
}

// finish writes what needs the whole file: servers, allow, listen, and
// chrony's defaults where airgapd's differ.
func (c *chronyImport) finish() {
	fileOnly := Pos{File: c.file}
	if c.servers != nil {
		c.doc.set("ntp", "servers", strs(dedupeStrings(c.servers)), c.serversAt)
	}
	if c.allow != nil {
		c.doc.set("ntp", "allow", strs(dedupeStrings(c.allow)), c.allowAt)
	}
	c.listen()
	if !c.sawLocal {
		c.doc.set("ntp", "local_stratum", integer(0), fileOnly)
		c.rep.add(fileOnly, "(no local directive)", Mapped, "ntp.local_stratum: 0: like chronyd, serve no time while no upstream is reachable")
	}
	c.doc.set("ntp", "discipline", boolean(false), fileOnly)
	c.rep.add(fileOnly, "(chronyd steers the system clock)", Approximate,
		"ntp.discipline: false: airgapd only serves time; set discipline: true once chronyd is stopped, so one program steers the clock")
}

func (c *chronyImport) listen() {
	if c.port == "" && len(c.bindAddrs) == 0 {
		return
	}
	port, at := c.port, c.portAt
	if port == "" {
		port, at = "123", c.bind[0]
	}
	if port == "0" {
		c.doc.set("ntp", "enabled", boolean(false), at)
		return
	}
	var addrs []string
	for _, a := range c.bindAddrs {
		addrs = append(addrs, net.JoinHostPort(a, port))
	}
	if addrs == nil {
		addrs = []string{":" + port}
	}
	c.doc.set("ntp", "listen", strs(addrs), at)
}
