package rpm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp"
	rpmutils "github.com/sassoftware/go-rpmutils"

	"github.com/airgapd/airgapd/mirror"
)

// maxKeyFile bounds a gpgkey download; a public key is a few kB.
const maxKeyFile = 1 << 20

// gpgKeys is a repo's package signing keys: the keys themselves, and the
// armored text served to the nodes as the .repo file's gpgkey.
type gpgKeys struct {
	keys    openpgp.EntityList
	armored []byte
}

// fingerprints lists the keys' fingerprints, sorted, for the sync policy.
func (k gpgKeys) fingerprints() []string {
	var out []string
	for _, e := range k.keys {
		out = append(out, fmt.Sprintf("%X", e.PrimaryKey.Fingerprint))
	}
	slices.Sort(out)
	return out
}

// keySource is where one gpgkey entry is read from: a local file (an
// absolute path or a file:// URL) or a URL — absolute, or relative to the
// repo's baseurl, as dnf resolves gpgkey.
func keySource(spec, base string) (file, link string, err error) {
	switch {
	case strings.HasPrefix(spec, "/"):
		return spec, "", nil
	case strings.HasPrefix(spec, "file://"):
		u, err := url.Parse(spec)
		if err != nil || u.Path == "" || (u.Host != "" && u.Host != "localhost") {
			return "", "", fmt.Errorf("gpgkey %q: write a local key as file:///path or /path", spec)
		}
		return u.Path, "", nil
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", "", fmt.Errorf("baseurl %q: %w", base, err)
	}
	u, err := b.Parse(spec)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return "", "", fmt.Errorf("gpgkey %q is neither a key file nor an http(s) URL", spec)
	}
	return "", u.String(), nil
}

// loadKeys reads every gpgkey entry of a repo (local files from disk, URLs
// with get) and parses the armored public keys in them.
func loadKeys(ctx context.Context, specs []string, base string, get func(ctx context.Context, url string) ([]byte, error)) (gpgKeys, error) {
	var k gpgKeys
	for _, spec := range specs {
		file, link, err := keySource(spec, base)
		if err != nil {
			return k, err
		}
		var b []byte
		if file != "" {
			b, err = os.ReadFile(file)
		} else {
			b, err = get(ctx, link)
		}
		if err != nil {
			return k, fmt.Errorf("gpgkey %s: %w", spec, err)
		}
		keys, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
		if err != nil {
			return k, fmt.Errorf("gpgkey %s is not an armored OpenPGP public key (export one with gpg --armor --export): %w", spec, err)
		}
		k.keys = append(k.keys, keys...)
		if len(k.armored) > 0 && !bytes.HasSuffix(k.armored, []byte("\n")) {
			k.armored = append(k.armored, '\n')
		}
		k.armored = append(k.armored, b...)
	}
	if len(k.keys) == 0 {
		return k, errors.New("gpgcheck: true needs gpgkey: the key file or URL the packages are signed with")
	}
	return k, nil
}

// errUnsigned is a package without an OpenPGP signature.
var errUnsigned = errors.New("not signed")

// verifyPackage checks the OpenPGP signatures in an RPM's signature header
// (the header-only one rpm ≥ 4.16 writes — RSAHEADER, or DSAHEADER for
// EdDSA as rpm 4.18's rpmsign files it — and the older header+payload
// one) against keys, and its payload digest. A package
// with no signature fails, as dnf with gpgcheck=1 would fail it.
func verifyPackage(path string, keys openpgp.EntityList) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, sigs, err := rpmutils.Verify(bufio.NewReaderSize(f, 64<<10), keys)
	var missing rpmutils.KeyNotFoundError
	switch {
	case errors.As(err, &missing):
		return fmt.Errorf("signed with key %016X, which is not one of gpgkey's", missing.KeyID)
	case err != nil:
		return fmt.Errorf("bad signature: %w", err)
	case len(sigs) == 0:
		return errUnsigned
	}
	return nil
}

// verifyTree checks the signature of every package in tree, the snapshot
// about to be published. A package that is the very same file (one pool
// entry) in prev, the published snapshot, is not read again when prev was
// verified with these keys (prevVerified). The error names every package
// that failed; nothing is published then.
func verifyTree(ctx context.Context, tree, prev string, prevVerified bool, keys openpgp.EntityList, workers int) (checked int, err error) {
	var todo []string
	err = filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		if d.IsDir() {
			if rel == "repodata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(p, ".rpm") {
			return nil
		}
		if prevVerified && prev != "" && sameFile(p, filepath.Join(prev, rel)) {
			return nil
		}
		todo = append(todo, rel)
		return nil
	})
	if err != nil {
		return 0, err
	}
	var mu sync.Mutex
	var failed []string
	err = mirror.EachParallel(ctx, todo, min(workers, runtime.NumCPU()), func() func(string) {
		return func(rel string) {
			if err := verifyPackage(filepath.Join(tree, rel), keys); err != nil {
				mu.Lock()
				failed = append(failed, filepath.ToSlash(rel)+": "+err.Error())
				mu.Unlock()
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if len(failed) > 0 {
		slices.Sort(failed)
		return len(todo), fmt.Errorf("%d package(s) failed the signature check, nothing published (is gpgkey the key they are signed with?): %s", len(failed), strings.Join(mirror.FirstN(failed, 5), "; "))
	}
	return len(todo), nil
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// keyFileName is where a repo with gpgcheck publishes its gpgkey, at the
// top of its tree (as RPM-GPG-KEY-rocky-9 sits at the top of Rocky's).
func keyFileName(repo string) string { return "RPM-GPG-KEY-" + repo }

// writeKeyFile puts the armored keys into tree. The name may be a hard
// link to the published snapshot's copy (carried over): it is replaced,
// never written through.
func writeKeyFile(tree, repo string, armored []byte) error {
	p := filepath.Join(tree, keyFileName(repo))
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.WriteFile(p, armored, 0o644)
}

// syncPolicy sums up what decides which packages a published snapshot
// holds beyond the upstream's metadata: keep, and gpgcheck with its keys.
// A change makes the next sync rebuild the snapshot even when the upstream
// has not changed. The default policy is "", as before these options.
func syncPolicy(r Repo, keys gpgKeys) string {
	var parts []string
	if r.Keep > 0 {
		parts = append(parts, fmt.Sprintf("keep=%d", r.Keep))
	}
	if r.GPGCheck {
		parts = append(parts, "gpgcheck="+strings.Join(keys.fingerprints(), ","))
	}
	return strings.Join(parts, " ")
}
