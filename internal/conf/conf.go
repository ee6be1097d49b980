// Package conf holds the small vocabulary that every service's Config shares:
// problems found while validating (with the config path they belong to, so
// the loader can point at file:line:col), durations written the way chrony and
// systemd users write them ("15m", "24h"), and the tls: auto|off|{cert,key}
// switch used by web and registry.
//
// It is a leaf package: services import it, it imports none of them.
package conf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a configuration. Path is the dotted key path
// from the section root ("allow_query[1]", "zones[0].file"); the loader
// prefixes the section name and turns the path into a file position.
type Problem struct {
	Path string
	Msg  string
	Hint string // what to do about it; may be empty
	// File and Line place a problem that is in another file the config
	// names (a zone file): the loader reports it there, not at Path.
	File string
	Line int
}

func (p Problem) String() string {
	s := p.Msg
	if p.Path != "" {
		s = p.Path + ": " + s
	}
	if p.Hint != "" {
		s += " (" + p.Hint + ")"
	}
	return s
}

// Problems collects every problem in a configuration, so `airgapd check`
// can report them all at once like named-checkconf does. A nil or empty
// Problems is not an error; use Err to return it.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Add records a problem at path.
func (ps *Problems) Add(path, hint, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// Nest appends problems found in a sub-structure, prefixing their paths.
func (ps *Problems) Nest(prefix string, err error) {
	if err == nil {
		return
	}
	sub, ok := err.(Problems)
	if !ok {
		ps.Add(prefix, "", "%v", err)
		return
	}
	for _, p := range sub {
		p.Path = Join(prefix, p.Path)
		*ps = append(*ps, p)
	}
}

// Err returns nil when there are no problems, so a Validate can end with
// `return ps.Err()`.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// Join joins config path elements: Join("dns", "zones[0]") = "dns.zones[0]".
func Join(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	case strings.HasPrefix(path, "["):
		return prefix + path
	}
	return prefix + "." + path
}

// Index returns "name[i]".
func Index(name string, i int) string { return name + "[" + strconv.Itoa(i) + "]" }

// CheckCIDRs checks a list of networks as BIND's address-match lists and
// chrony's allow take them: "192.168.10.0/24", or a bare address meaning a
// single host.
func CheckCIDRs(ps *Problems, path string, list []string) {
	for i, s := range list {
		if _, err := ParsePrefix(s); err != nil {
			ps.Add(Index(path, i), "write a network like 192.168.10.0/24 or a single address", "%q is not a network: %v", s, err)
		}
	}
}

// reason is a parse error without the Go call it came from
// (`netip.ParsePrefix("10.0.0/8"): ParseAddr("10.0.0"): IPv4 address too
// short` → `IPv4 address too short`): config messages are for admins.
func reason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

// ParsePrefix accepts "10.0.0.0/8" or a bare address ("10.0.0.1" = /32).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New(reason(err))
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("host bits set; did you mean %s", p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New(reason(err))
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// CheckListen checks a listen address "host:port" or ":port". The host, when
// given, must be an IP address: airgapd binds sockets itself and does not
// resolve names at start-up.
func CheckListen(ps *Problems, path, s string) {
	if err := ValidListen(s); err != nil {
		ps.Add(path, "write host:port, e.g. 127.0.0.1:8080 or :53", "%v", err)
	}
}

// ValidListen reports whether s is a usable listen address.
func ValidListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not a listen address: %s", s, reason(err))
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%q: host %q is not an IP address", s, host)
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, port)
	}
	return nil
}

// CheckFile reports a problem when a file the configuration reads does not
// exist or is not a regular file. Folders airgapd fills itself are not
// checked this way.
func CheckFile(ps *Problems, path, file string) {
	if file == "" {
		return
	}
	st, err := os.Stat(file)
	switch {
	case err != nil:
		ps.Add(path, "create the file or fix the path", "cannot read %s: %v", file, unwrapPathError(err))
	case st.IsDir():
		ps.Add(path, "name a file, not a folder", "%s is a directory", file)
	}
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// Duration is a time.Duration written as Go and systemd write them: "30s",
// "15m", "24h". A bare number is rejected: seconds or minutes would be a guess.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration; write it like 30s, 15m or 24h", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// TLS is the `tls:` switch of web and registry: "auto" uses a certificate
// from the appliance CA, "off" serves plain HTTP, and {cert, key} uses files
// the operator supplies.
type TLS struct {
	Mode string `yaml:"-"` // "auto", "off" or "files"
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// TLS modes.
const (
	TLSAuto  = "auto"
	TLSOff   = "off"
	TLSFiles = "files"
)

// UnmarshalYAML implements yaml.Unmarshaler.
func (t *TLS) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var s string
		if err := n.Decode(&s); err != nil {
			return err
		}
		switch s {
		case TLSAuto, TLSOff:
			*t = TLS{Mode: s}
			return nil
		case "false":
			*t = TLS{Mode: TLSOff}
			return nil
		}
		return fmt.Errorf("tls must be auto, off or {cert: FILE, key: FILE}, not %q", s)
	case yaml.MappingNode:
		var f struct {
			Cert string `yaml:"cert"`
			Key  string `yaml:"key"`
		}
		if err := n.Decode(&f); err != nil {
			return err
		}
		*t = TLS{Mode: TLSFiles, Cert: f.Cert, Key: f.Key}
		return nil
	}
	return fmt.Errorf("tls must be auto, off or {cert: FILE, key: FILE}")
}

// MarshalYAML implements yaml.Marshaler.
func (t TLS) MarshalYAML() (any, error) {
	if t.Mode == TLSFiles {
		return map[string]string{"cert": t.Cert, "key": t.Key}, nil
	}
	if t.Mode == "" {
		return TLSAuto, nil
	}
	return t.Mode, nil
}

// Check validates the TLS setting; files must exist.
func (t TLS) Check(ps *Problems, path string) {
	if t.Mode != TLSFiles {
		return
	}
	if t.Cert == "" || t.Key == "" {
		ps.Add(path, "give both cert: and key:", "tls needs both a certificate and a key file")
		return
	}
	CheckFile(ps, Join(path, "cert"), t.Cert)
	CheckFile(ps, Join(path, "key"), t.Key)
}

// Enabled reports whether a section with an optional `enabled:` key is on:
// present and not explicitly disabled.
func Enabled(flag *bool) bool { return flag == nil || *flag }

// ErrRestartNeeded is returned by a service's Reload when the new config
// cannot be applied in place; server then builds a new instance on the same
// sockets and swaps it in.
var ErrRestartNeeded = errors.New("restart needed to apply this change")
