package pypi

import (
	"archive/zip"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	pep440 "github.com/aquasecurity/go-pep440-version"
	"golang.org/x/crypto/bcrypt"

	"github.com/airgapd/airgapd/mirror"
)

// realm is the Basic realm of the upload endpoint.
const realm = `Basic realm="airgapd pypi"`

// authFailures wrong passwords within authWindow lock a client out, as
// the registry does.
const (
	authFailures = 5
	authWindow   = 5 * time.Minute
	maxUpload    = 2 << 30
	maxMetadata  = 16 << 20
)

// authorizer checks uploaders against users' bcrypt hashes, remembering
// the last password that matched (as a SHA-256) so a twine run of many
// files pays for bcrypt once.
type authorizer struct {
	users    map[string][]byte
	mu       sync.Mutex
	verified map[string][32]byte
}

func newAuthorizer(cfg Config) *authorizer {
	a := &authorizer{users: map[string][]byte{}, verified: map[string][32]byte{}}
	for _, u := range cfg.Users {
		a.users[u.Name] = []byte(u.PasswordHash)
	}
	return a
}

// dummyHash is compared against for unknown names, so timing does not
// tell which names exist.
var dummyHash = []byte("$2a$10$babvWRmjNMW.CDgNFviGEeD5rcPdX8T4MhspNJKI.PgiZVFDyYzT2")

func (a *authorizer) check(name, password string) bool {
	hash, ok := a.users[name]
	if !ok {
		bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return false
	}
	sum := sha256.Sum256([]byte(password))
	a.mu.Lock()
	prev, seen := a.verified[name]
	a.mu.Unlock()
	if seen && subtle.ConstantTimeCompare(prev[:], sum[:]) == 1 {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	a.mu.Lock()
	a.verified[name] = sum
	a.mu.Unlock()
	return true
}

// authenticate answers 401/403/429 itself and returns false unless the
// request carries a user's right password.
func (x *Index) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	x.mu.Lock()
	a := x.auth
	x.mu.Unlock()
	if len(a.users) == 0 {
		http.Error(w, "uploads are off: list uploaders under pypi.users", http.StatusForbidden)
		return "", false
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		w.Header().Set("WWW-Authenticate", realm)
		http.Error(w, "log in with a pypi.users name and password", http.StatusUnauthorized)
		return "", false
	}
	client := r.RemoteAddr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		client = ap.Addr().String()
	}
	if ok, wait := x.guesses.Allowed(client); !ok {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		http.Error(w, "too many wrong passwords; wait and try again", http.StatusTooManyRequests)
		return "", false
	}
	if !a.check(user, pass) {
		x.guesses.Failed(client)
		w.Header().Set("WWW-Authenticate", realm)
		http.Error(w, "wrong user name or password", http.StatusUnauthorized)
		return "", false
	}
	x.guesses.Succeeded(client)
	return user, true
}

// upload is twine's legacy API: a multipart POST of the file ("content")
// and its metadata fields. The file is verified against the digests sent,
// and published in the local tree, in one switch.
func (x *Index) upload(w http.ResponseWriter, r *http.Request) int {
	user, ok := x.authenticate(w, r)
	if !ok {
		x.m.uploaded("unauthorized")
		return http.StatusUnauthorized
	}
	f, tmp, err := x.receive(w, r)
	if tmp != "" {
		defer os.Remove(tmp)
	}
	code := http.StatusOK
	if err == nil {
		code, err = x.publishUpload(r, f, tmp)
	} else {
		code = http.StatusBadRequest
	}
	if err != nil {
		x.m.uploaded("refused")
		http.Error(w, err.Error(), code)
		return code
	}
	x.m.uploaded("ok")
	x.log.Info("pypi upload", "user", user, "file", f.Filename, "sha256", f.SHA256)
	fmt.Fprintln(w, "OK")
	return http.StatusOK
}

// received is an upload's form: the file's record and the fields sent.
type received struct {
	File
	project string
	fields  map[string]string
}

// receive streams the form's file into the local store's partial folder,
// hashing it, and checks it against what the form says.
func (x *Index) receive(w http.ResponseWriter, r *http.Request) (received, string, error) {
	rec := received{fields: map[string]string{}}
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
	reader, err := r.MultipartReader()
	if err != nil {
		return rec, "", fmt.Errorf("upload: send multipart/form-data (twine upload): %w", err)
	}
	dir := filepath.Join(x.Store(TreeLocal).Dir, "partial")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return rec, "", err
	}
	var tmp string
	var md5sum string
	for {
		part, err := reader.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rec, tmp, fmt.Errorf("upload: %w", err)
		}
		if part.FormName() == "content" {
			if tmp != "" {
				return rec, tmp, errors.New("upload: one file per request")
			}
			out, err := os.CreateTemp(dir, "upload-*")
			if err != nil {
				return rec, "", err
			}
			tmp = out.Name()
			h, m := sha256.New(), md5.New()
			n, err := io.Copy(io.MultiWriter(out, h, m), part)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return rec, tmp, fmt.Errorf("upload: %w", err)
			}
			rec.Filename, rec.Size = part.FileName(), n
			rec.SHA256, md5sum = hex.EncodeToString(h.Sum(nil)), hex.EncodeToString(m.Sum(nil))
			continue
		}
		b, err := io.ReadAll(io.LimitReader(part, 1<<20))
		if err != nil {
			return rec, tmp, fmt.Errorf("upload: %w", err)
		}
		if _, dup := rec.fields[part.FormName()]; !dup {
			rec.fields[part.FormName()] = string(b)
		}
	}
	return rec, tmp, rec.check(tmp, md5sum)
}

// check verifies the upload's form: a file of the named project and
// version, whose digests match those sent.
func (rec *received) check(tmp, md5sum string) error {
	f := rec.fields
	if a := f[":action"]; a != "" && a != "file_upload" {
		return fmt.Errorf("upload: :action %q is not supported (file_upload only)", a)
	}
	if tmp == "" {
		return errors.New(`upload: no file (form field "content")`)
	}
	if !ValidProjectName(f["name"]) {
		return fmt.Errorf("upload: %q is not a project name", f["name"])
	}
	rec.project = Normalize(f["name"])
	name := rec.Filename
	if name == "" || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("upload: %q is not a file name", name)
	}
	d, ok := parseFilename(rec.project, name)
	if !ok {
		return fmt.Errorf("upload: %s is not a wheel or sdist of %s", name, rec.project)
	}
	if v := f["version"]; v != "" && !sameVersion(v, d.version) {
		return fmt.Errorf("upload: %s is version %s, the form says %s", name, d.version, v)
	}
	rec.Version = d.version
	if s := strings.ToLower(f["sha256_digest"]); s != "" && s != rec.SHA256 {
		return fmt.Errorf("upload: %s: %w: it has sha256 %s, the form says %s", name, mirror.ErrChecksum, rec.SHA256, s)
	}
	if s := strings.ToLower(f["md5_digest"]); s != "" && s != md5sum {
		return fmt.Errorf("upload: %s: %w: it has md5 %s, the form says %s", name, mirror.ErrChecksum, md5sum, s)
	}
	rec.RequiresPython = f["requires_python"]
	return nil
}

func sameVersion(a, b string) bool {
	if a == b {
		return true
	}
	va, e1 := pep440.Parse(a)
	vb, e2 := pep440.Parse(b)
	return e1 == nil && e2 == nil && va.Equal(vb)
}

// publishUpload adds the file to the local tree and publishes it.
func (x *Index) publishUpload(r *http.Request, rec received, tmp string) (int, error) {
	st := x.Store(TreeLocal)
	unlock, err := st.LockWait(r.Context())
	if err != nil {
		return http.StatusServiceUnavailable, err
	}
	defer unlock()
	if synced, _ := x.tree(TreeIndex); synced != nil {
		for _, f := range synced.Projects[rec.project] {
			if f.Filename == rec.Filename {
				return http.StatusConflict, fmt.Errorf("File already exists: %s is in the synced index", rec.Filename)
			}
		}
	}
	local, err := x.tree(TreeLocal)
	if err != nil {
		return http.StatusInternalServerError, err
	}
	for _, f := range local.Projects[rec.project] {
		if f.Filename == rec.Filename {
			if f.SHA256 == rec.SHA256 {
				return http.StatusOK, nil // the same file again: twine --skip-existing
			}
			return http.StatusConflict, fmt.Errorf("File already exists: %s was uploaded with other content (sha256 %s); give it a new version", rec.Filename, f.SHA256)
		}
	}
	sum := mirror.Checksum{Type: "sha256", Value: rec.SHA256}
	if !st.Has(sum) {
		if err := os.MkdirAll(filepath.Dir(st.Pool(sum)), 0o750); err != nil {
			return http.StatusInternalServerError, err
		}
		if err := os.Rename(tmp, st.Pool(sum)); err != nil {
			return http.StatusInternalServerError, err
		}
	}
	f := rec.File
	if strings.HasSuffix(f.Filename, ".whl") {
		if meta, err := wheelMetadata(st.Pool(sum), rec.project); err == nil {
			if tf, err := poolBytes(st, "meta", meta); err == nil {
				f.Metadata, f.MetadataSHA256 = true, tf.Sum.Value
			}
		}
	}
	projects := map[string][]File{}
	for n, fs := range local.Projects {
		projects[n] = append([]File(nil), fs...)
	}
	projects[rec.project] = append(projects[rec.project], f)
	files, err := treeFiles(st, projects)
	if err == nil {
		_, err = st.PublishTree(r.Context(), files, noPlace)
	}
	if err != nil {
		return http.StatusInternalServerError, fmt.Errorf("upload: publish: %w", err)
	}
	state := x.state(TreeLocal)
	state.Revision, state.Published = x.deps.Now().UTC().Format("20060102T150405Z"), x.deps.Now()
	state.LastResult, state.LastError = "ok", ""
	state.Projects, state.Packages, state.Bytes = counts(projects)
	return http.StatusOK, x.setState(TreeLocal, state)
}

// wheelMetadata is a wheel's NAME-VERSION.dist-info/METADATA (PEP 658's
// metadata file).
func wheelMetadata(file, project string) ([]byte, error) {
	z, err := zip.OpenReader(file)
	if err != nil {
		return nil, err
	}
	defer z.Close()
	for _, zf := range z.File {
		dir, base, ok := strings.Cut(zf.Name, "/")
		if !ok || base != "METADATA" || !strings.HasSuffix(dir, ".dist-info") {
			continue
		}
		if n, _, _ := strings.Cut(dir, "-"); Normalize(n) != project {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(io.LimitReader(rc, maxMetadata))
	}
	return nil, errors.New("no METADATA in the wheel")
}
