package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/airgapd/airgapd/mirror"
	"github.com/airgapd/airgapd/mirror/rpm"
)

// forge builds a bundle by hand, item by item, as a person (or an
// attacker) could.
type forge struct {
	bm    Manifest
	blobs map[string][]byte
}

func newForge() *forge {
	return &forge{bm: Manifest{Format: Format, Blobs: []Blob{}}, blobs: map[string][]byte{}}
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// blob adds b to the blobs carried (once) and returns its digest.
func (f *forge) blob(b []byte) string {
	d := digestOf(b)
	if _, ok := f.blobs[d]; !ok {
		f.blobs[d] = b
		f.bm.Blobs = append(f.bm.Blobs, Blob{Digest: d, Size: int64(len(b))})
	}
	return d
}

func (f *forge) file(p string, b []byte) {
	f.bm.Files = append(f.bm.Files, File{Path: p, Digest: f.blob(b), Size: int64(len(b))})
}

func (f *forge) repoFile(repo, p string, b []byte) {
	for i := range f.bm.Repos {
		if f.bm.Repos[i].Name == repo {
			f.bm.Repos[i].Files = append(f.bm.Repos[i].Files, File{Path: p, Digest: f.blob(b), Size: int64(len(b))})
			return
		}
	}
	f.bm.Repos = append(f.bm.Repos, Repo{Name: repo, Revision: "1", Files: []File{{Path: p, Digest: f.blob(b), Size: int64(len(b))}}})
}

// image adds an image whose manifest is raw (its only blob here).
func (f *forge) image(name string, raw []byte) {
	d := f.blob(raw)
	f.bm.Images = append(f.bm.Images, Image{Name: name, Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(raw)), Blobs: []string{d}})
}

// forgeOptions change how write lays the tar out.
type forgeOptions struct {
	zstd bool
	// entrySize gives a blob's tar entry that many bytes (zeros) instead
	// of the blob's own.
	entrySize map[string]int64
	// declare states that size for a blob in the manifest (its blob and
	// its items) instead of its own.
	declare map[string]int64
}

// write writes the bundle to path and returns its id.
func (f *forge) write(t *testing.T, path string, opt forgeOptions) string {
	t.Helper()
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var w io.Writer = out
	var enc *zstd.Encoder
	if opt.zstd {
		enc, _ = zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedFastest))
		w = enc
	}
	tw := tar.NewWriter(w)
	bm := f.bm
	if opt.declare != nil {
		raw, _ := json.Marshal(f.bm)
		bm = Manifest{}
		json.Unmarshal(raw, &bm)
		for i, b := range bm.Blobs {
			if n, ok := opt.declare[b.Digest]; ok {
				bm.Blobs[i].Size = n
			}
		}
		for i, fl := range bm.Files {
			if n, ok := opt.declare[fl.Digest]; ok {
				bm.Files[i].Size = n
			}
		}
	}
	raw, _ := json.Marshal(bm)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: bundleManifestName, Size: int64(len(raw)), Mode: 0o644, Format: tar.FormatPAX})
	tw.Write(raw)
	zeros := make([]byte, 1<<20)
	for _, b := range f.bm.Blobs {
		if n, ok := opt.entrySize[b.Digest]; ok {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blobEntry(b.Digest), Size: n, Mode: 0o644, Format: tar.FormatPAX})
			for ; n > 0; n -= int64(len(zeros)) {
				tw.Write(zeros[:min(n, int64(len(zeros)))])
			}
			continue
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blobEntry(b.Digest), Size: b.Size, Mode: 0o644, Format: tar.FormatPAX})
		tw.Write(f.blobs[b.Digest])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if enc != nil {
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return bundleID(raw)
}

// fakeImages is an ImageStore that records the layouts it was given.
type fakeImages struct{ layouts []string }

func (s *fakeImages) ImportLayout(_ context.Context, dir string) error {
	s.layouts = append(s.layouts, dir)
	return nil
}

// treeOf lists every path under dir (symlinks not followed) with its
// size, "" when dir does not exist.
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		b.WriteString(rel + " " + fi.Mode().String())
		if fi.Mode().IsRegular() {
			b.WriteString(" " + string(mustReadFileQuiet(p)))
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

// filesOf lists the regular files under dir with their contents.
func filesOf(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b.WriteString(p + " " + string(mustReadFileQuiet(p)) + "\n")
		}
		return nil
	})
	return b.String()
}

func mustReadFileQuiet(p string) []byte {
	b, _ := os.ReadFile(p)
	return b
}

// TestImportSymlinkEscape (issue 19, item 6): a symlink already in a
// folder import writes into, leading outside it, is never followed:
// nothing is written outside, and the import says which link it refused.
// A symlink that stays inside the folder is followed as before.
func TestImportSymlinkEscape(t *testing.T) {
	for _, tc := range []struct {
		name string
		// plant makes the symlink; dir is the test's folder, id the
		// bundle's id, outside the folder it must not write into.
		plant   func(t *testing.T, dir, id, outside string)
		wantErr string
		// filesOnly: only files written outside count, not folders.
		filesOnly bool
		// check runs after a successful import.
		check func(t *testing.T, dir string)
	}{
		{
			name: "files folder",
			plant: func(t *testing.T, dir, _, outside string) {
				os.MkdirAll(filepath.Join(dir, "files"), 0o755)
				mustSymlink(t, outside, filepath.Join(dir, "files", "k8s"))
			},
			wantErr: "k8s is a symlink to",
		},
		{
			name: "files folder, relative link",
			plant: func(t *testing.T, dir, _, outside string) {
				os.MkdirAll(filepath.Join(dir, "files"), 0o755)
				mustSymlink(t, "../outside", filepath.Join(dir, "files", "k8s"))
			},
			wantErr: "k8s is a symlink to ../outside",
		},
		{
			name: "staging",
			plant: func(t *testing.T, dir, id, outside string) {
				os.MkdirAll(filepath.Join(dir, "data", "bundle", "staging"), 0o755)
				mustSymlink(t, outside, filepath.Join(dir, "data", "bundle", "staging", strings.TrimPrefix(id, "sha256:")))
			},
			wantErr: "is a symlink to",
		},
		{
			name: "the import's lock",
			plant: func(t *testing.T, dir, _, outside string) {
				os.MkdirAll(filepath.Join(dir, "data", "bundle"), 0o755)
				mustSymlink(t, filepath.Join(outside, "made-by-import"), filepath.Join(dir, "data", "bundle", "lock"))
			},
			wantErr: "lock is a symlink to",
		},
		{
			// The store makes the pool's folders itself (empty ones may
			// appear outside); the blob is linked through the root.
			name: "a repo's pool",
			plant: func(t *testing.T, dir, _, outside string) {
				os.MkdirAll(filepath.Join(dir, "data", "mirror", "repos", "up"), 0o755)
				mustSymlink(t, outside, filepath.Join(dir, "data", "mirror", "repos", "up", "pool"))
			},
			filesOnly: true,
			wantErr:   "pool is a symlink to",
		},
		{
			name: "a link inside the files folder is followed",
			plant: func(t *testing.T, dir, _, _ string) {
				os.MkdirAll(filepath.Join(dir, "files", "v1.30"), 0o755)
				mustSymlink(t, "v1.30", filepath.Join(dir, "files", "k8s"))
			},
			check: func(t *testing.T, dir string) {
				if got := string(mustReadFile(t, filepath.Join(dir, "files", "v1.30", "kubeadm"))); got != "not a kubeadm\n" {
					t.Errorf("files/v1.30/kubeadm = %q", got)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			outside := filepath.Join(dir, "outside")
			if err := os.MkdirAll(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			f := newForge()
			f.file("k8s/kubeadm", []byte("not a kubeadm\n"))
			f.file("k8s/x/y", []byte("deeper\n"))
			f.repoFile("up", "repodata/repomd.xml", []byte("<repomd/>\n"))
			bundle := filepath.Join(dir, "b.bundle")
			id := f.write(t, bundle, forgeOptions{})
			tc.plant(t, dir, id, outside)
			tree := treeOf
			if tc.filesOnly {
				tree = filesOf
			}
			before := tree(t, outside)

			cfg := rpm.DefaultConfig()
			cfg.Files = filepath.Join(dir, "files")
			c, err := newCarrier(cfg, filepath.Join(dir, "data"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Import(context.Background(), bundle, ImportOptions{})
			if after := tree(t, outside); after != before {
				t.Errorf("the import wrote outside its folders:\nbefore:\n%safter:\n%s", before, after)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, dir)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "outside") {
				t.Errorf("import: %v; want an error naming the link (%q)", err, tc.wantErr)
			}
		})
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// dirBytes is how many bytes the regular files under dir hold.
func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// TestImportBlobBiggerThanDeclared (issue 19, item 7): a blob is read
// through a limit of the size its manifest declares. A 200 MiB entry of
// zeros (a few hundred KiB compressed) declared as 6 bytes stops the
// import at its header, naming the item, with the staging bounded; main
// read all of it into the staging first.
func TestImportBlobBiggerThanDeclared(t *testing.T) {
	tiny := []byte("hello\n")
	for _, tc := range []struct {
		name      string
		entrySize int64
	}{
		{name: "200 MiB declared as 6 bytes", entrySize: 200 << 20},
		{name: "5 bytes declared as 6", entrySize: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := newForge()
			f.file("docs/readme", []byte("a file before it\n"))
			f.file("tiny", tiny)
			bundle := filepath.Join(dir, "b.bundle.zst")
			id := f.write(t, bundle, forgeOptions{zstd: true, entrySize: map[string]int64{digestOf(tiny): tc.entrySize}})
			if fi, err := os.Stat(bundle); err != nil || fi.Size() > 4<<20 {
				t.Fatalf("the forged bundle: %v, %d bytes", err, fi.Size())
			}
			cfg := rpm.DefaultConfig()
			cfg.Files = filepath.Join(dir, "files")
			c, err := newCarrier(cfg, filepath.Join(dir, "data"))
			if err != nil {
				t.Fatal(err)
			}
			var last int64
			_, err = c.Import(context.Background(), bundle, ImportOptions{Progress: func(p mirror.ImportProgress) { last = p.BytesDone }})
			if err == nil || !strings.Contains(err.Error(), "file tiny") || !strings.Contains(err.Error(), "6 bytes") || !strings.Contains(err.Error(), "nothing was published") {
				t.Errorf("import: %v; want it to name file tiny and its declared 6 bytes", err)
			}
			if last > 16<<20 {
				t.Errorf("the import read %d bytes of the stream before failing; want it to stop at the entry", last)
			}
			if n := dirBytes(filepath.Join(dir, "data", "bundle", "staging", strings.TrimPrefix(id, "sha256:"))); n > 1<<20 {
				t.Errorf("the staging holds %d bytes", n)
			}
			if es, _ := os.ReadDir(cfg.Files); len(es) > 0 {
				t.Errorf("the files folder holds %d entries", len(es))
			}
		})
	}
}

// TestImportRefusedWhenNoRoom (issue 19, item 7): an import whose blobs
// do not fit in the free space of the staging's file system is refused
// before anything is written, saying how much it needs and how much is
// free. Main wrote into the staging until the disk was full.
func TestImportRefusedWhenNoRoom(t *testing.T) {
	big := bytes.Repeat([]byte{1}, 20000)
	for _, tc := range []struct {
		name string
		free FreeSpaceFunc // nil: the real statfs
		// declare, when set, is the size the manifest states for big.
		declare  int64
		wantNeed string
		wantFree string
	}{
		{name: "a full disk (faked)", free: func(string) (int64, error) { return 4096, nil },
			wantNeed: "needs 19.5 KiB (20006 bytes)", wantFree: "4.0 KiB (4096 bytes) is free"},
		{name: "an exabyte declared (real statfs)", declare: 1 << 60, wantNeed: "needs 1.0 EiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := newForge()
			f.file("big", big)
			f.file("small", []byte("hello\n"))
			bundle := filepath.Join(dir, "b.bundle")
			opt := forgeOptions{}
			if tc.declare != 0 {
				opt.declare = map[string]int64{digestOf(big): tc.declare}
			}
			f.write(t, bundle, opt)
			cfg := rpm.DefaultConfig()
			cfg.Files = filepath.Join(dir, "files")
			m, err := rpm.New(cfg, rpm.Deps{DataDir: filepath.Join(dir, "data")})
			if err != nil {
				t.Fatal(err)
			}
			c := New(m, Deps{DataDir: filepath.Join(dir, "data"), FreeSpace: tc.free})
			_, err = c.Import(context.Background(), bundle, ImportOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.wantNeed) || !strings.Contains(err.Error(), tc.wantFree) || !strings.Contains(err.Error(), "nothing was written") {
				t.Errorf("import: %v; want it refused, saying it %s and %s", err, tc.wantNeed, tc.wantFree)
			}
			if _, err := os.Lstat(filepath.Join(dir, "data", "bundle")); err == nil {
				t.Errorf("data_dir/bundle was made: %s", treeOf(t, filepath.Join(dir, "data", "bundle")))
			}
			if es, _ := os.ReadDir(cfg.Files); len(es) > 0 {
				t.Errorf("the files folder holds %d entries", len(es))
			}
		})
	}
}

// TestImportInvalidManifestPublishesNothing (issue 19, item 8): the whole
// manifest is checked before anything is published. Each bundle holds a
// repo, files and a good image, and one bad entry; the import publishes
// nothing (no repo, no file, no image) and names the bad entry. Main
// published the repo and files and then failed (or, with a store that
// takes any name, succeeded), so the same bundle could never import.
func TestImportInvalidManifestPublishesNothing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bad     func(f *forge)
		wantErr string
	}{
		{name: "an uppercase image name", bad: func(f *forge) { f.image("registry.k8s.io/Pause:3.10", []byte(`{"bad":1}`)) },
			wantErr: `image "registry.k8s.io/Pause:3.10"`},
		{name: "an image name with a space", bad: func(f *forge) { f.image("quay.io/cilium/cilium v1", []byte(`{"bad":2}`)) },
			wantErr: `image "quay.io/cilium/cilium v1"`},
		{name: "a bad tag", bad: func(f *forge) { f.image("docker.io/library/nginx:-1.25", []byte(`{"bad":3}`)) },
			wantErr: `image "docker.io/library/nginx:-1.25"`},
		{name: "a name go-containerregistry does not parse", bad: func(f *forge) { f.image("[::1]:5000/a:1", []byte(`{"bad":4}`)) },
			wantErr: `image "[::1]:5000/a:1"`},
		{name: "an image name without a tag", bad: func(f *forge) { f.image("nginx", []byte(`{"bad":5}`)) },
			wantErr: `image "nginx": the name has no tag or digest`},
		{name: "a file where a folder is needed", bad: func(f *forge) {
			f.file("k8s", []byte("a file\n"))
			f.file("k8s/kubeadm", []byte("under it\n"))
		}, wantErr: "file k8s is a file, but k8s/kubeadm needs it to be a folder"},
		{name: "one path, two contents", bad: func(f *forge) {
			f.file("z/twice", []byte("one\n"))
			f.file("z/./twice", []byte("two\n"))
		}, wantErr: "file z/./twice is listed twice"},
		{name: "a control character in a path", bad: func(f *forge) { f.file("z/bell\x07", []byte("ding\n")) },
			wantErr: `file: path "z/bell\a" holds a control character`},
		{name: "a name too long", bad: func(f *forge) { f.repoFile("up", "Packages/"+strings.Repeat("x", 256)+".rpm", []byte("long\n")) },
			wantErr: "repo up: path \"Packages/xxx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := newForge()
			f.repoFile("up", "repodata/repomd.xml", []byte("<repomd/>\n"))
			f.file("a.txt", []byte("hello\n"))
			f.image("registry.k8s.io/pause:3.10", []byte(`{"schemaVersion":2}`))
			tc.bad(f)
			bundle := filepath.Join(dir, "b.bundle")
			f.write(t, bundle, forgeOptions{})
			cfg := rpm.DefaultConfig()
			cfg.Files = filepath.Join(dir, "files")
			c, err := newCarrier(cfg, filepath.Join(dir, "data"))
			if err != nil {
				t.Fatal(err)
			}
			images := &fakeImages{}
			_, err = c.Import(context.Background(), bundle, ImportOptions{Images: images})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("import: %v; want an error naming %s", err, tc.wantErr)
			}
			if es, _ := os.ReadDir(cfg.Files); len(es) > 0 {
				t.Errorf("the files folder holds %d entries", len(es))
			}
			if _, err := os.Lstat(filepath.Join(dir, "data", "mirror", "repos", "up", "current")); err == nil {
				t.Errorf("repo up was published")
			}
			if len(images.layouts) > 0 {
				t.Errorf("images were stored: %v", images.layouts)
			}
		})
	}
}

// TestImportLongFileName: a file whose name is as long as a name may be
// (255 bytes) is published; its temporary name is cut to fit. Main failed
// it, with the files before it published.
func TestImportLongFileName(t *testing.T) {
	dir := t.TempDir()
	f := newForge()
	f.file("a.txt", []byte("first\n"))
	long := "k8s/" + strings.Repeat("x", 255)
	f.file(long, []byte("a long name\n"))
	bundle := filepath.Join(dir, "b.bundle")
	f.write(t, bundle, forgeOptions{})
	cfg := rpm.DefaultConfig()
	cfg.Files = filepath.Join(dir, "files")
	c, err := newCarrier(cfg, filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Import(context.Background(), bundle, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := string(mustReadFile(t, filepath.Join(cfg.Files, long))); got != "a long name\n" {
		t.Errorf("%s = %q", long, got)
	}
}
