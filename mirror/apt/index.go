package apt

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"pault.ag/go/debian/control"
	"pault.ag/go/debian/deb"

	"github.com/airgapd/airgapd/mirror"
)

// localDeb is one .deb of a local folder as the last index read it: its
// size and mtime (an unchanged file is not read again), checksum and the
// control fields of its Packages entry.
type localDeb struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
	Package string `json:"package"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	Control string `json:"control"`
}

func localSuite(r Repo) []string   { return r.suitesOf()[:1] }
func localComponent(r Repo) string { return r.componentsOf()[0] }

// indexRepo builds local repo r's Packages and Release from its folder's
// .deb files, signs the Release with the site key and publishes the tree
// (the .deb files linked into the pool, not copied, where the file system
// allows).
func (a *Apt) indexRepo(ctx context.Context, r Repo, notify func(mirror.Progress)) (res Result, err error) {
	began := a.now()
	res.Repo, res.Indexed = r.Name, true
	st := a.Store(r.Name)
	unlock, err := st.LockWait(ctx)
	if err != nil {
		return res, err
	}
	defer unlock()
	tr := mirror.NewTracker(mirror.Progress{Repo: r.Name, Phase: "index", Started: began}, notify, func(p *mirror.Progress) { a.book.SetProgress(r.Name, p) })
	state := readState(st)
	defer func() { a.endRun(r.Name, st, &state, &res, tr, began, err) }()
	debs, read, err := scanDebs(ctx, r.Path, state.Debs)
	if err != nil {
		return res, err
	}
	res.HeadersRead, res.Reused, res.Packages = read, len(debs)-read, len(debs)
	key, err := mirror.LoadSigningKey(a.deps.SigningKey, a.deps.DataDir, a.log)
	if err != nil {
		return res, err
	}
	arches := localArches(r, debs)
	fp := localFingerprint(r, debs, arches, key.Entity.PrimaryKey.Fingerprint)
	res.Revision = fp[:12]
	if cur, _ := st.Current(); cur != "" && state.LastResult == "ok" && state.Fingerprint == fp {
		res.UpToDate = true
		state.Debs = debs
		return res, nil
	}
	tr.Update(true, func(p *mirror.Progress) { p.Phase, p.Packages = "publish", len(debs) })
	files, total, err := a.localTree(st, r, debs, arches, key)
	if err != nil {
		return res, err
	}
	place := func(_ context.Context, f mirror.TreeFile, dst string) error {
		rel := strings.TrimPrefix(f.Path, "pool/"+localComponent(r)+"/")
		return mirror.LinkOrCopy(filepath.Join(r.Path, filepath.FromSlash(rel)), dst)
	}
	if _, err := st.PublishTree(ctx, files, place); err != nil {
		return res, err
	}
	state.Debs, state.Fingerprint = debs, fp
	state.Revision, state.Published, state.Packages, state.Bytes = res.Revision, a.now(), len(debs), total
	a.log.Info("apt repo indexed", "repo", r.Name, "packages", len(debs), "read", read)
	return res, nil
}

// scanDebs lists the .deb files under dir, reading those new or changed
// since prev (by size and mtime).
func scanDebs(ctx context.Context, dir string, prev map[string]localDeb) (map[string]localDeb, int, error) {
	out := map[string]localDeb{}
	read := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != dir {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(d.Name(), ".deb") {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if old, ok := prev[rel]; ok && old.Size == fi.Size() && old.ModTime == fi.ModTime().UnixNano() {
			out[rel] = old
			return nil
		}
		ld, err := readDeb(p)
		if err != nil {
			return fmt.Errorf("%s: %w; remove or replace the file", p, err)
		}
		ld.Size, ld.ModTime = fi.Size(), fi.ModTime().UnixNano()
		out[rel] = ld
		read++
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("index %s: %w", dir, err)
	}
	return out, read, nil
}

// readDeb hashes a .deb and reads its control fields.
func readDeb(p string) (localDeb, error) {
	f, err := os.Open(p)
	if err != nil {
		return localDeb{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return localDeb{}, err
	}
	d, err := deb.Load(f, p)
	if err != nil {
		return localDeb{}, fmt.Errorf("not a readable .deb: %w", err)
	}
	defer d.Close()
	return localDeb{SHA256: hex.EncodeToString(h.Sum(nil)), Package: d.Control.Package, Version: d.Control.Version.String(),
		Arch: d.Control.Architecture.String(), Control: renderControl(d.Control.Paragraph)}, nil
}

// renderControl writes a package's control fields as a Packages entry
// has them, without the fields the index adds.
func renderControl(p control.Paragraph) string {
	var b strings.Builder
	for _, k := range p.Order {
		switch k {
		case "Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512":
			continue
		}
		lines := strings.Split(strings.TrimSuffix(p.Values[k], "\n"), "\n")
		fmt.Fprintf(&b, "%s: %s\n", k, lines[0])
		for _, l := range lines[1:] {
			if l == "" {
				l = "."
			}
			b.WriteString(" " + l + "\n")
		}
	}
	return b.String()
}

// localArches are the configured architectures and every one a package
// names (arch: all packages go into each).
func localArches(r Repo, debs map[string]localDeb) []string {
	arches := slices.Clone(r.archesOf())
	for _, d := range debs {
		if d.Arch != "all" && !slices.Contains(arches, d.Arch) && word.MatchString(d.Arch) {
			arches = append(arches, d.Arch)
		}
	}
	slices.Sort(arches)
	return arches
}

func localFingerprint(r Repo, debs map[string]localDeb, arches []string, keyFP []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%v %s %v %x\n", localSuite(r), localComponent(r), arches, keyFP)
	for _, rel := range slices.Sorted(mapKeys(debs)) {
		fmt.Fprintf(h, "%s %s\n", rel, debs[rel].SHA256)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// localTree writes the indexes of a local repo into the pool and returns
// the tree: dists/SUITE/{InRelease,Release,Release.gpg}, each
// architecture's Packages and Packages.gz, and the .deb files under
// pool/COMPONENT/.
func (a *Apt) localTree(st mirror.Store, r Repo, debs map[string]localDeb, arches []string, key *mirror.SigningKey) ([]mirror.TreeFile, int64, error) {
	suite, comp := localSuite(r)[0], localComponent(r)
	dist := "dists/" + suite + "/"
	var files []mirror.TreeFile
	var total int64
	rels := slices.SortedFunc(mapKeys(debs), func(x, y string) int {
		dx, dy := debs[x], debs[y]
		if c := strings.Compare(dx.Package, dy.Package); c != 0 {
			return c
		}
		if c := compareVersions(dx.Version, dy.Version); c != 0 {
			return c
		}
		return strings.Compare(x, y)
	})
	for _, rel := range rels {
		d := debs[rel]
		files = append(files, mirror.TreeFile{Path: "pool/" + comp + "/" + rel, Sum: mirror.Checksum{Type: "sha256", Value: d.SHA256}, Size: d.Size})
		total += d.Size
	}
	var sums strings.Builder
	for _, arch := range arches {
		var pk bytes.Buffer
		for _, rel := range rels {
			if d := debs[rel]; d.Arch == arch || d.Arch == "all" {
				fmt.Fprintf(&pk, "%sFilename: pool/%s/%s\nSize: %d\nSHA256: %s\n\n", d.Control, comp, rel, d.Size, d.SHA256)
			}
		}
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(pk.Bytes())
		zw.Close()
		for name, b := range map[string][]byte{"Packages": pk.Bytes(), "Packages.gz": gz.Bytes()} {
			p := comp + "/binary-" + arch + "/" + name
			f, err := putBytes(st, dist+p, b)
			if err != nil {
				return nil, 0, err
			}
			files = append(files, f)
			fmt.Fprintf(&sums, " %s %d %s\n", f.Sum.Value, f.Size, p)
		}
	}
	release := fmt.Sprintf("Origin: airgapd\nLabel: %s\nSuite: %s\nCodename: %s\nDate: %s\nArchitectures: %s\nComponents: %s\nDescription: airgapd local repo %s\nSHA256:\n%s",
		r.Name, suite, suite, a.now().UTC().Format(time.RFC1123), strings.Join(arches, " "), comp, r.Name, sortLines(sums.String()))
	inRelease, err := key.ClearSign([]byte(release))
	if err != nil {
		return nil, 0, fmt.Errorf("sign Release: %w", err)
	}
	sig, err := key.DetachSign([]byte(release))
	if err != nil {
		return nil, 0, fmt.Errorf("sign Release: %w", err)
	}
	for name, b := range map[string][]byte{"Release": []byte(release), "InRelease": inRelease, "Release.gpg": sig} {
		f, err := putBytes(st, dist+name, b)
		if err != nil {
			return nil, 0, err
		}
		files = append(files, f)
	}
	return files, total, nil
}

func sortLines(s string) string {
	lines := strings.SplitAfter(s, "\n")
	slices.SortFunc(lines, func(a, b string) int {
		fa, fb := strings.Fields(a), strings.Fields(b)
		if len(fa) < 3 || len(fb) < 3 {
			return len(fa) - len(fb)
		}
		return strings.Compare(fa[2], fb[2])
	})
	return strings.Join(lines, "")
}

// putBytes puts b into st's pool and returns it as the tree file p.
func putBytes(st mirror.Store, p string, b []byte) (mirror.TreeFile, error) {
	sum := sha256.Sum256(b)
	c := mirror.Checksum{Type: "sha256", Value: hex.EncodeToString(sum[:])}
	if !st.Has(c) {
		tmp := st.Partial(c)
		if err := os.MkdirAll(filepath.Dir(tmp), 0o750); err != nil {
			return mirror.TreeFile{}, err
		}
		if err := os.WriteFile(tmp, b, 0o640); err != nil {
			return mirror.TreeFile{}, err
		}
		if err := os.MkdirAll(filepath.Dir(st.Pool(c)), 0o750); err != nil {
			return mirror.TreeFile{}, err
		}
		if err := os.Rename(tmp, st.Pool(c)); err != nil {
			return mirror.TreeFile{}, err
		}
	}
	return mirror.TreeFile{Path: p, Sum: c, Size: int64(len(b))}, nil
}
