package rpm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	rpmutils "github.com/sassoftware/go-rpmutils"
)

// Header tags go-rpmutils does not name (rpmtag.h).
const (
	tagRecommendName    = 5046
	tagRecommendVersion = 5047
	tagRecommendFlags   = 5048
	tagSuggestName      = 5049
	tagSuggestVersion   = 5050
	tagSuggestFlags     = 5051
	tagSupplementName   = 5052
	tagSupplementVer    = 5053
	tagSupplementFlags  = 5054
	tagEnhanceName      = 5055
	tagEnhanceVersion   = 5056
	tagEnhanceFlags     = 5057
)

// RPMSENSE bits that make a requirement "pre" in primary.xml.
const (
	senseLess       = 1 << 1
	senseGreater    = 1 << 2
	senseEqual      = 1 << 3
	sensePrereq     = 1 << 6
	senseScriptPre  = 1 << 9
	senseScriptPost = 1 << 10
)

// changelogLimit is createrepo_c's default --changelog-limit.
const changelogLimit = 10

// indexEntry is one package of a local repo as the index keeps it between
// runs: where it is, what it was (size and mtime decide whether it must be
// read again), and its three XML fragments, ready to be concatenated.
type indexEntry struct {
	Href      string
	Size      int64
	MtimeNs   int64
	Name      string
	Arch      string
	EVR       string
	PkgID     string // sha256 of the file
	Primary   []byte
	Filelists []byte
	Other     []byte
}

// readPackage reads one RPM: its header (go-rpmutils) and the SHA-256 of
// the whole file, in one pass, and renders the entry's XML as createrepo_c
// does.
func readPackage(path, href string, fi os.FileInfo) (*indexEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	br := bufio.NewReaderSize(f, 256<<10)
	hdr, err := rpmutils.ReadHeader(io.TeeReader(br, h))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", href, err)
	}
	if _, err := io.Copy(h, br); err != nil {
		return nil, fmt.Errorf("%s: %w", href, err)
	}
	e := &indexEntry{Href: href, Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano(), PkgID: hex.EncodeToString(h.Sum(nil))}
	if err := e.render(hdr, fi.ModTime().Unix()); err != nil {
		return nil, fmt.Errorf("%s: %w", href, err)
	}
	return e, nil
}

// hdrView reads tags leniently: a missing tag is empty.
type hdrView struct{ h *rpmutils.RpmHeader }

func (v hdrView) str(tag int) string {
	s, err := v.h.GetStrings(tag)
	if err != nil || len(s) == 0 {
		return ""
	}
	return s[0] // I18N strings: the first is the C locale
}

func (v hdrView) strs(tag int) []string {
	s, _ := v.h.GetStrings(tag)
	return s
}

func (v hdrView) u64s(tag int) []uint64 {
	n, _ := v.h.GetUint64s(tag)
	return n
}

func (v hdrView) u64(tag int) (uint64, bool) {
	n := v.u64s(tag)
	if len(n) == 0 {
		return 0, false
	}
	return n[0], true
}

type dep struct {
	name, flags, epoch, ver, rel string
	pre                          bool
}

// flagName is createrepo_c's cr_flag_to_str.
func flagName(f uint64) string {
	switch f & (senseLess | senseGreater | senseEqual) {
	case senseLess:
		return "LT"
	case senseGreater:
		return "GT"
	case senseEqual:
		return "EQ"
	case senseLess | senseEqual:
		return "LE"
	case senseGreater | senseEqual:
		return "GE"
	}
	return ""
}

// splitEVR splits [epoch:]version[-release]; epoch is "0" when absent, as
// createrepo_c writes it.
func splitEVR(s string) (e, v, r string) {
	if s == "" {
		return "", "", ""
	}
	e = "0"
	if i := strings.IndexByte(s, ':'); i >= 0 {
		if i > 0 {
			e = s[:i]
		}
		s = s[i+1:]
	}
	v = s
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		v, r = s[:i], s[i+1:]
	}
	return e, v, r
}

func (v hdrView) deps(nameTag, flagTag, verTag int) []dep {
	names := v.strs(nameTag)
	flags := v.u64s(flagTag)
	vers := v.strs(verTag)
	out := make([]dep, 0, len(names))
	for i, n := range names {
		var f uint64
		var ver string
		if i < len(flags) {
			f = flags[i]
		}
		if i < len(vers) {
			ver = vers[i]
		}
		d := dep{name: n, flags: flagName(f)}
		d.epoch, d.ver, d.rel = splitEVR(ver)
		d.pre = f&(sensePrereq|senseScriptPre|senseScriptPost) != 0
		out = append(out, d)
	}
	return out
}

// isPrimaryFile is createrepo_c's cr_is_primary: the files primary.xml
// lists (the rest are in filelists.xml only).
func isPrimaryFile(name string) bool {
	return strings.HasPrefix(name, "/etc/") || name == "/usr/lib/sendmail" || strings.Contains(name, "bin/")
}

type pkgFile struct{ name, typ string }

// render fills the entry's identity and XML fragments from the header.
func (e *indexEntry) render(h *rpmutils.RpmHeader, mtime int64) error {
	v := hdrView{h}
	e.Name = v.str(rpmutils.NAME)
	if e.Name == "" {
		return fmt.Errorf("header has no name")
	}
	e.Arch = v.str(rpmutils.ARCH)
	if !h.HasTag(rpmutils.SOURCERPM) {
		e.Arch = "src"
	}
	epoch := "0"
	if n, ok := v.u64(rpmutils.EPOCH); ok {
		epoch = strconv.FormatUint(n, 10)
	}
	ver, rel := v.str(rpmutils.VERSION), v.str(rpmutils.RELEASE)
	e.EVR = epoch + ":" + ver + "-" + rel

	files := headerFiles(h)
	provides := v.deps(rpmutils.PROVIDENAME, rpmutils.PROVIDEFLAGS, rpmutils.PROVIDEVERSION)
	conflicts := v.deps(rpmutils.CONFLICTNAME, rpmutils.CONFLICTFLAGS, rpmutils.CONFLICTVERSION)
	obsoletes := v.deps(rpmutils.OBSOLETENAME, rpmutils.OBSOLETEFLAGS, rpmutils.OBSOLETEVERSION)
	requires := filterRequires(v.deps(rpmutils.REQUIRENAME, rpmutils.REQUIREFLAGS, rpmutils.REQUIREVERSION), files, provides)
	recommends := v.deps(tagRecommendName, tagRecommendFlags, tagRecommendVersion)
	suggests := v.deps(tagSuggestName, tagSuggestFlags, tagSuggestVersion)
	supplements := v.deps(tagSupplementName, tagSupplementFlags, tagSupplementVer)
	enhances := v.deps(tagEnhanceName, tagEnhanceFlags, tagEnhanceVersion)

	rng := h.GetRange()
	installed, _ := h.InstalledSize()
	archive, _ := h.PayloadSize()
	buildTime, _ := v.u64(rpmutils.BUILDTIME)

	var b bytes.Buffer
	b.WriteString("<package type=\"rpm\">\n  <name>")
	esc(&b, e.Name)
	b.WriteString("</name>\n  <arch>")
	esc(&b, e.Arch)
	b.WriteString("</arch>\n")
	writeVersion(&b, "  ", epoch, ver, rel)
	fmt.Fprintf(&b, "  <checksum type=\"sha256\" pkgid=\"YES\">%s</checksum>\n", e.PkgID)
	elem(&b, "  ", "summary", v.str(rpmutils.SUMMARY))
	elem(&b, "  ", "description", v.str(rpmutils.DESCRIPTION))
	elem(&b, "  ", "packager", v.str(rpmutils.PACKAGER))
	elem(&b, "  ", "url", v.str(rpmutils.URL))
	fmt.Fprintf(&b, "  <time file=\"%d\" build=\"%d\"/>\n", mtime, buildTime)
	fmt.Fprintf(&b, "  <size package=\"%d\" installed=\"%d\" archive=\"%d\"/>\n", e.Size, max(installed, 0), max(archive, 0))
	b.WriteString("  <location href=\"")
	esc(&b, e.Href)
	b.WriteString("\"/>\n  <format>\n")
	elem(&b, "    ", "rpm:license", v.str(rpmutils.LICENSE))
	elem(&b, "    ", "rpm:vendor", v.str(rpmutils.VENDOR))
	elem(&b, "    ", "rpm:group", v.str(rpmutils.GROUP))
	elem(&b, "    ", "rpm:buildhost", v.str(rpmutils.BUILDHOST))
	elem(&b, "    ", "rpm:sourcerpm", v.str(rpmutils.SOURCERPM))
	fmt.Fprintf(&b, "    <rpm:header-range start=\"%d\" end=\"%d\"/>\n", rng.Start, rng.End)
	writeDeps(&b, "provides", provides, false)
	writeDeps(&b, "requires", requires, true)
	writeDeps(&b, "conflicts", conflicts, false)
	writeDeps(&b, "obsoletes", obsoletes, false)
	writeDeps(&b, "suggests", suggests, false)
	writeDeps(&b, "enhances", enhances, false)
	writeDeps(&b, "recommends", recommends, false)
	writeDeps(&b, "supplements", supplements, false)
	for _, f := range files {
		if isPrimaryFile(f.name) {
			writeFile(&b, "    ", f)
		}
	}
	b.WriteString("  </format>\n</package>\n")
	e.Primary = bytes.Clone(b.Bytes())

	e.Filelists, e.Other = filelistsEntry(e, epoch, ver, rel, files), otherEntry(e, v, epoch, ver, rel)
	return nil
}

// headerFiles lists the header's files, dirs and ghosts marked.
func headerFiles(h *rpmutils.RpmHeader) []pkgFile {
	var files []pkgFile
	if fis, err := h.GetFiles(); err == nil {
		for _, fi := range fis {
			t := ""
			switch {
			case fi.Mode()&0o170000 == 0o040000:
				t = "dir"
			case fi.Flags()&rpmutils.RPMFILE_GHOST != 0:
				t = "ghost"
			}
			files = append(files, pkgFile{fi.Name(), t})
		}
	}
	return files
}

// filterRequires filters requires as createrepo_c does: no rpmlib(…),
// none of the package's own primary files, none it provides itself, no
// repeats, and only the highest libc.so.6(GLIBC_x), first.
func filterRequires(all []dep, files []pkgFile, provides []dep) []dep {
	fileSet := make(map[string]bool, len(files))
	for _, f := range files {
		fileSet[f.name] = true
	}
	provided := make(map[string]bool, len(provides))
	for _, d := range provides {
		provided[d.name] = true
	}
	var requires []dep
	var libc *dep
	seen := map[string]dep{}
	for _, d := range all {
		if strings.HasPrefix(d.name, "rpmlib(") {
			continue
		}
		if fileSet[d.name] && isPrimaryFile(d.name) {
			continue
		}
		if provided[d.name] {
			continue
		}
		if prev, ok := seen[d.name]; ok && prev.flags == d.flags && prev.epoch == d.epoch && prev.ver == d.ver && prev.rel == d.rel && prev.pre == d.pre {
			continue
		}
		if strings.HasPrefix(d.name, "libc.so.6") {
			if libc == nil || rpmutils.Vercmp(glibcVersion(d.name), glibcVersion(libc.name)) > 0 {
				d := d
				libc = &d
			}
			continue
		}
		requires = append(requires, d)
		seen[d.name] = d
	}
	if libc != nil {
		requires = append([]dep{*libc}, requires...)
	}
	return requires
}

// filelistsEntry is the package's filelists.xml entry.
func filelistsEntry(e *indexEntry, epoch, ver, rel string, files []pkgFile) []byte {
	var b bytes.Buffer
	openPackageEntry(&b, e, epoch, ver, rel)
	for _, f := range files {
		writeFile(&b, "  ", f)
	}
	b.WriteString("</package>\n")
	return b.Bytes()
}

// otherEntry is the package's other.xml entry: its changelog.
func otherEntry(e *indexEntry, v hdrView, epoch, ver, rel string) []byte {
	var b bytes.Buffer
	openPackageEntry(&b, e, epoch, ver, rel)
	for _, c := range changelogs(v) {
		b.WriteString("  <changelog author=\"")
		esc(&b, c.author)
		fmt.Fprintf(&b, "\" date=\"%d\">", c.date)
		esc(&b, c.text)
		b.WriteString("</changelog>\n")
	}
	b.WriteString("</package>\n")
	return b.Bytes()
}

type changelog struct {
	author, text string
	date         int64
}

// changelogs are the newest changelogLimit entries, oldest first; entries
// with the same time get consecutive times, as createrepo_c does.
func changelogs(v hdrView) []changelog {
	times := v.u64s(rpmutils.CHANGELOGTIME)
	names := v.strs(rpmutils.CHANGELOGNAME)
	texts := v.strs(rpmutils.CHANGELOGTEXT)
	n := min(len(times), len(names), len(texts), changelogLimit)
	out := make([]changelog, n)
	for i := range n {
		out[n-1-i] = changelog{author: strings.TrimRight(names[i], " "), text: texts[i], date: int64(times[i])}
	}
	for j := 1; j < n; j++ {
		if times[n-1-j] == times[n-j] && out[j].date <= out[j-1].date {
			out[j].date = out[j-1].date + 1
		}
	}
	return out
}

// glibcVersion is the x in libc.so.6(GLIBC_x)…, "" for none.
func glibcVersion(name string) string {
	_, after, ok := strings.Cut(name, "GLIBC_")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(after, ")")
	return v
}

func writeVersion(b *bytes.Buffer, indent, e, v, r string) {
	b.WriteString(indent + "<version epoch=\"")
	esc(b, e)
	b.WriteString("\" ver=\"")
	esc(b, v)
	b.WriteString("\" rel=\"")
	esc(b, r)
	b.WriteString("\"/>\n")
}

func writeFile(b *bytes.Buffer, indent string, f pkgFile) {
	b.WriteString(indent + "<file")
	if f.typ != "" {
		b.WriteString(" type=\"" + f.typ + "\"")
	}
	b.WriteString(">")
	esc(b, f.name)
	b.WriteString("</file>\n")
}

func writeDeps(b *bytes.Buffer, kind string, deps []dep, withPre bool) {
	if len(deps) == 0 {
		return
	}
	b.WriteString("    <rpm:" + kind + ">\n")
	for _, d := range deps {
		b.WriteString("      <rpm:entry name=\"")
		esc(b, d.name)
		b.WriteString("\"")
		if d.flags != "" {
			b.WriteString(" flags=\"" + d.flags + "\"")
		}
		if d.ver != "" || d.epoch != "" {
			b.WriteString(" epoch=\"")
			esc(b, d.epoch)
			b.WriteString("\" ver=\"")
			esc(b, d.ver)
			b.WriteString("\"")
			if d.rel != "" {
				b.WriteString(" rel=\"")
				esc(b, d.rel)
				b.WriteString("\"")
			}
		}
		if withPre && d.pre {
			b.WriteString(" pre=\"1\"")
		}
		b.WriteString("/>\n")
	}
	b.WriteString("    </rpm:" + kind + ">\n")
}

func elem(b *bytes.Buffer, indent, name, text string) {
	if text == "" {
		b.WriteString(indent + "<" + name + "/>\n")
		return
	}
	b.WriteString(indent + "<" + name + ">")
	esc(b, text)
	b.WriteString("</" + name + ">\n")
}

// esc writes s as XML text or attribute content: markup escaped, invalid
// UTF-8 replaced, characters XML 1.0 forbids dropped.
func esc(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"':
			b.WriteString("&quot;")
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteRune(r)
		case r < 0x20 || r == 0xFFFE || r == 0xFFFF:
			// not allowed in XML 1.0
		default:
			b.WriteRune(r) // RuneError for invalid bytes: U+FFFD
		}
	}
}

// openPackageEntry starts a package's element in filelists.xml or
// other.xml: its pkgid, name and arch, then its version.
func openPackageEntry(b *bytes.Buffer, e *indexEntry, epoch, ver, rel string) {
	b.WriteString("<package pkgid=\"" + e.PkgID + "\" name=\"")
	esc(b, e.Name)
	b.WriteString("\" arch=\"")
	esc(b, e.Arch)
	b.WriteString("\">\n")
	writeVersion(b, "  ", epoch, ver, rel)
}
