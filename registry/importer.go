package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/distribution/v3"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"

	"github.com/airgapd/airgapd/api"
)

// ImportOptions tune Import.
type ImportOptions struct {
	// Repo names the repository for images the file names only by a tag
	// (skopeo's oci:DIR:TAG) or not at all; it also overrides the
	// repository of named ones. "lab/app" or "lab/app:v1".
	Repo string
	// Progress, when set, is called as bytes go into storage.
	Progress func(complete, total int64)
}

// ImportResult lists what an import stored (the api package defines it:
// it is the API's answer).
type ImportResult = api.RegistryImportResult

// ImportedImage is one image (or index) stored under Name.
type ImportedImage = api.ImportedImage

// internalRegistry is the host name import uses for itself; requests never
// leave the process.
const internalRegistry = "airgapd.internal"

// Import stores every image of an OCI image layout (a tar of one, or its
// folder) or a `docker save` tarball under its name, with its manifest and
// blobs byte for byte, so digests do not change. It goes through the same
// handler as pushes (without authorisation), so garbage collection's write
// gate and push tracking apply. Blobs already stored are skipped, so an
// interrupted import, run again, resumes where it stopped.
func (r *Registry) Import(ctx context.Context, path string, opts ImportOptions) (ImportResult, error) {
	var res ImportResult
	fi, err := os.Stat(path)
	if err != nil {
		return res, err
	}
	todo := map[name.Reference]remote.Taggable{}
	var plan layoutPlan
	if fi.IsDir() {
		res.Format = "oci-layout"
		if err := r.fromLayout(ctx, path, opts.Repo, todo, &plan); err != nil {
			return res, err
		}
	} else {
		format, err := tarFormat(path)
		if err != nil {
			return res, err
		}
		res.Format = format
		switch format {
		case "oci-layout":
			dir, err := os.MkdirTemp(r.deps.DataDir, "import-")
			if err != nil {
				return res, err
			}
			defer os.RemoveAll(dir)
			if err := untar(ctx, path, dir); err != nil {
				return res, err
			}
			if err := r.fromLayout(ctx, dir, opts.Repo, todo, &plan); err != nil {
				return res, err
			}
		case "docker-save":
			if err := fromDockerSave(path, opts.Repo, todo); err != nil {
				return res, err
			}
		}
	}
	if len(todo)+len(plan.later)+len(plan.partial) == 0 {
		return res, fmt.Errorf("%s holds no image", path)
	}
	for ref, t := range todo {
		if plan.childOfPartial[ref] {
			continue
		}
		d, err := taggableDigest(t)
		if err != nil {
			return res, err
		}
		res.Images = append(res.Images, ImportedImage{Name: strings.TrimPrefix(ref.Name(), internalRegistry+"/"), Digest: d.String()})
	}
	for _, p := range append(slices.Clone(plan.later), plan.partial...) {
		d, err := taggableDigest(p.t)
		if err != nil {
			return res, err
		}
		res.Images = append(res.Images, ImportedImage{Name: strings.TrimPrefix(p.ref.Name(), internalRegistry+"/"), Digest: d.String()})
	}
	sort.Slice(res.Images, func(i, j int) bool { return res.Images[i].Name < res.Images[j].Name })

	updates := make(chan v1.Update, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range updates {
			if opts.Progress != nil && u.Error == nil {
				opts.Progress(u.Complete, u.Total)
			}
		}
	}()
	err = remote.MultiWrite(todo, remote.WithContext(ctx), remote.WithTransport(handlerTransport{r.internal}),
		remote.WithProgress(updates), remote.WithJobs(4))
	<-done
	if err != nil {
		return res, fmt.Errorf("import %s: %w", path, err)
	}
	// One at a time: each referrer pushed adds itself to its subject's
	// referrers tag (sha256-HEX) by read, change, write.
	for _, p := range plan.later {
		if err := remote.Push(p.ref, p.t, remote.WithContext(ctx), remote.WithTransport(handlerTransport{r.internal})); err != nil {
			return res, fmt.Errorf("import %s: %s: %w", path, p.ref, err)
		}
		// A push that finds the manifest stored already (an import run
		// again after a kill) does not list it; listing is idempotent.
		if err := r.listReferrer(ctx, p.ref.Context().RepositoryStr(), p.t); err != nil {
			return res, fmt.Errorf("import %s: %s: %w", path, p.ref, err)
		}
	}
	for _, p := range plan.partial {
		if err := r.putPartialIndex(ctx, p.ref, p.t.(v1.ImageIndex)); err != nil {
			return res, fmt.Errorf("import %s: %s: %w", path, p.ref, err)
		}
	}
	r.log.Info("imported images", "file", path, "format", res.Format, "images", len(res.Images))
	return res, nil
}

func taggableDigest(t remote.Taggable) (v1.Hash, error) {
	switch t := t.(type) {
	case v1.Image:
		return t.Digest()
	case v1.ImageIndex:
		return t.Digest()
	}
	return v1.Hash{}, errors.New("neither an image nor an index")
}

// tarFormat tells an OCI layout (oci-layout + index.json) from a docker
// save tarball (manifest.json).
func tarFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var oci, index, docker bool
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%s is not a tar file: %w", path, err)
		}
		switch filepath.Clean(h.Name) {
		case "oci-layout":
			oci = true
		case "index.json":
			index = true
		case "manifest.json":
			docker = true
		}
	}
	switch {
	case oci && index:
		return "oci-layout", nil
	case docker:
		return "docker-save", nil
	}
	return "", fmt.Errorf("%s is neither an OCI image layout (oci-layout, index.json) nor a docker save tarball (manifest.json)", path)
}

// untar extracts an OCI layout into dir: regular files and folders only,
// nothing outside dir.
func untar(ctx context.Context, path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		clean := filepath.Clean(h.Name)
		if !filepath.IsLocal(clean) {
			return fmt.Errorf("%s: entry %q leaves the layout", path, h.Name)
		}
		target := filepath.Join(dir, clean)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

// Annotations naming an image in an OCI layout's index.json.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// layoutPlan is what a layout import stores besides what goes together
// through remote.MultiWrite.
type layoutPlan struct {
	// later are manifests with a subject (signatures, SBOMs, attestations
	// as OCI referrers), pushed one by one after the rest.
	later []plannedPush
	// partial are indexes some of whose manifests the layout lacks (a
	// bundle made with --platform): stored as they are, their other
	// platforms answering 404.
	partial []plannedPush
	// childOfPartial marks the todo entries that are a partial index's
	// children, pushed by digest.
	childOfPartial map[name.Reference]bool
}

type plannedPush struct {
	ref name.Reference
	t   remote.Taggable
}

// fromLayout adds every image or index listed in the layout's index.json.
// Blobs the layout lacks but the registry holds (an incremental bundle's
// base) are copied into it from storage first.
func (r *Registry) fromLayout(ctx context.Context, dir, repo string, todo map[name.Reference]remote.Taggable, plan *layoutPlan) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		return fmt.Errorf("%s is not an OCI image layout: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, desc := range im.Manifests {
		if _, err := r.fillFromStorage(ctx, dir, desc); err != nil {
			return err
		}
	}
	for _, desc := range im.Manifests {
		n := desc.Annotations[annotationContainerdName]
		if n == "" {
			n = desc.Annotations[annotationRefName]
		}
		ref, err := importName(n, repo)
		if err != nil {
			return fmt.Errorf("index.json entry %s: %w", desc.Digest, err)
		}
		switch {
		case desc.MediaType.IsIndex():
			ii, err := idx.ImageIndex(desc.Digest)
			if err != nil {
				return err
			}
			complete, err := layoutComplete(dir, desc)
			if err != nil {
				return err
			}
			if complete {
				todo[ref] = ii
				continue
			}
			if err := addPresentChildren(dir, ref.Context(), ii, todo, plan); err != nil {
				return err
			}
			plan.partial = append(plan.partial, plannedPush{ref: ref, t: ii})
		case desc.MediaType.IsImage():
			img, err := idx.Image(desc.Digest)
			if err != nil {
				return err
			}
			raw, err := img.RawManifest()
			if err != nil {
				return err
			}
			var withSubject struct {
				Subject *v1.Descriptor `json:"subject"`
			}
			if json.Unmarshal(raw, &withSubject) == nil && withSubject.Subject != nil {
				plan.later = append(plan.later, plannedPush{ref: ref, t: img})
				continue
			}
			todo[ref] = img
		default:
			continue // neither an image nor an index: skip it
		}
	}
	return nil
}

// layoutBlob is where a layout keeps blob d.
func layoutBlob(dir string, d v1.Hash) string {
	return filepath.Join(dir, "blobs", d.Algorithm, d.Hex)
}

// layoutComplete reports whether the layout holds every manifest and blob
// desc is made of.
func layoutComplete(dir string, desc v1.Descriptor) (bool, error) {
	missing := false
	err := walkLayout(dir, desc, func(d v1.Descriptor, present bool) {
		missing = missing || !present
	})
	return !missing, err
}

// walkLayout calls visit for desc and everything it references, saying
// whether the layout holds each; it descends into what it holds.
func walkLayout(dir string, desc v1.Descriptor, visit func(d v1.Descriptor, present bool)) error {
	raw, err := os.ReadFile(layoutBlob(dir, desc.Digest))
	if err != nil {
		visit(desc, false)
		return nil
	}
	visit(desc, true)
	switch {
	case desc.MediaType.IsIndex():
		im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		for _, c := range im.Manifests {
			if err := walkLayout(dir, c, visit); err != nil {
				return err
			}
		}
	case desc.MediaType.IsImage():
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			_, err := os.Stat(layoutBlob(dir, b.Digest))
			visit(b, err == nil)
		}
	}
	return nil
}

// addPresentChildren adds, by digest, the children of a partial index
// that the layout holds whole.
func addPresentChildren(dir string, repo name.Repository, ii v1.ImageIndex, todo map[name.Reference]remote.Taggable, plan *layoutPlan) error {
	im, err := ii.IndexManifest()
	if err != nil {
		return err
	}
	if plan.childOfPartial == nil {
		plan.childOfPartial = map[name.Reference]bool{}
	}
	for _, c := range im.Manifests {
		complete, err := layoutComplete(dir, c)
		if err != nil {
			return err
		}
		ref := repo.Digest(c.Digest.String())
		switch {
		case complete && c.MediaType.IsIndex():
			child, err := ii.ImageIndex(c.Digest)
			if err != nil {
				return err
			}
			todo[ref] = child
		case complete && c.MediaType.IsImage():
			child, err := ii.Image(c.Digest)
			if err != nil {
				return err
			}
			todo[ref] = child
		case c.MediaType.IsIndex():
			if _, err := os.Stat(layoutBlob(dir, c.Digest)); err != nil {
				continue
			}
			child, err := ii.ImageIndex(c.Digest)
			if err != nil {
				return err
			}
			if err := addPresentChildren(dir, repo, child, todo, plan); err != nil {
				return err
			}
			plan.partial = append(plan.partial, plannedPush{ref: ref, t: child})
			continue
		default:
			continue // left out of the bundle (--platform)
		}
		plan.childOfPartial[ref] = true
	}
	return nil
}

// fillFromStorage copies into the layout each blob desc references that
// the layout lacks and the registry's storage holds, checking its digest.
// It returns how many it copied.
func (r *Registry) fillFromStorage(ctx context.Context, dir string, desc v1.Descriptor) (int, error) {
	copied := 0
	for {
		var missing []v1.Descriptor
		if err := walkLayout(dir, desc, func(d v1.Descriptor, present bool) {
			if !present {
				missing = append(missing, d)
			}
		}); err != nil {
			return copied, err
		}
		progress := false
		for _, d := range missing {
			ok, err := r.copyStoredBlob(ctx, d.Digest, layoutBlob(dir, d.Digest))
			if err != nil {
				return copied, err
			}
			if ok {
				copied++
				progress = true
			}
		}
		// A manifest copied in may name blobs the walk has not seen yet.
		if !progress {
			return copied, nil
		}
	}
}

// storedBlobPath is where distribution's storage keeps a blob's bytes.
func storedBlobPath(d v1.Hash) string {
	return "/docker/registry/v2/blobs/" + d.Algorithm + "/" + d.Hex[:2] + "/" + d.Hex + "/data"
}

// copyStoredBlob copies blob d from storage to dst; false when storage
// does not hold it.
func (r *Registry) copyStoredBlob(ctx context.Context, d v1.Hash, dst string) (bool, error) {
	if d.Algorithm != "sha256" || len(d.Hex) != 64 {
		return false, nil
	}
	rc, err := r.driver.Reader(ctx, storedBlobPath(d), 0)
	if err != nil {
		var notFound storagedriver.PathNotFoundError
		if errors.As(err, &notFound) {
			return false, nil
		}
		return false, fmt.Errorf("read blob %s from storage: %w", d, err)
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, err
	}
	tmp := dst + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return false, err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && hex.EncodeToString(h.Sum(nil)) != d.Hex {
		err = fmt.Errorf("storage holds other bytes under blob %s: run airgapd registry gc, or import the bundle that carried it again", d)
	}
	if err != nil {
		os.Remove(tmp)
		return false, err
	}
	return true, os.Rename(tmp, dst)
}

// MissingBlobs lists the digests the registry's storage does not hold, so
// an incremental bundle's images can leave out what its base brought.
func (r *Registry) MissingBlobs(ctx context.Context, digests []string) ([]string, error) {
	var missing []string
	for _, s := range digests {
		d, err := digest.Parse(s)
		if err != nil {
			return nil, err
		}
		if _, err := r.ns.BlobStatter().Stat(ctx, d); err != nil {
			if errors.Is(err, distribution.ErrBlobUnknown) {
				missing = append(missing, s)
				continue
			}
			return nil, fmt.Errorf("blob %s: %w", s, err)
		}
	}
	return missing, nil
}

// putPartialIndex stores an index some of whose manifests are absent
// (a bundle made with --platform) byte for byte, and tags it. The served
// handler refuses such an index (distribution checks an index's children
// exist before accepting it), so it goes straight into storage through
// airgapd's own handle, which does not check, under the same write gate
// as pushes. Pulling a platform left out answers 404 manifest unknown.
func (r *Registry) putPartialIndex(ctx context.Context, ref name.Reference, ii v1.ImageIndex) error {
	if !r.gate.enter() {
		return errGCRunning
	}
	defer r.gate.leave()
	ctx = withLogrus(ctx, r.log)
	raw, err := ii.RawManifest()
	if err != nil {
		return err
	}
	mt, err := ii.MediaType()
	if err != nil {
		return err
	}
	want, err := ii.Digest()
	if err != nil {
		return err
	}
	named, err := reference.WithName(ref.Context().RepositoryStr())
	if err != nil {
		return err
	}
	repo, err := r.ns.Repository(ctx, named)
	if err != nil {
		return err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return err
	}
	m, _, err := distribution.UnmarshalManifest(string(mt), raw)
	if err != nil {
		return fmt.Errorf("index %s: %w", want, err)
	}
	got, err := ms.Put(ctx, m)
	if err != nil {
		return fmt.Errorf("store index %s: %w", want, err)
	}
	if got.String() != want.String() {
		return fmt.Errorf("storage named index %s %s: its bytes changed on the way, which must not happen", want, got)
	}
	if tag, ok := ref.(name.Tag); ok {
		if err := repo.Tags(ctx).Tag(ctx, tag.TagStr(), distribution.Descriptor{MediaType: string(mt), Digest: got, Size: int64(len(raw))}); err != nil {
			return fmt.Errorf("tag %s: %w", ref, err)
		}
	}
	return nil
}

// fromDockerSave adds every tagged image of a docker save tarball.
func fromDockerSave(path, repo string, todo map[name.Reference]remote.Taggable) error {
	opener := func() (io.ReadCloser, error) { return os.Open(path) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, d := range m {
		names := d.RepoTags
		if len(names) == 0 {
			names = []string{""}
		}
		for _, n := range names {
			ref, err := importName(n, repo)
			if err != nil {
				return fmt.Errorf("image %s: %w", d.Config, err)
			}
			var tag *name.Tag
			if n != "" {
				t, err := name.NewTag(n)
				if err != nil {
					return err
				}
				tag = &t
			}
			img, err := tarball.Image(opener, tag)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			todo[ref] = img
		}
		if len(names) == 1 && names[0] == "" && len(m) > 1 {
			return errors.New("the tarball holds several untagged images; import them one by one")
		}
	}
	return nil
}

// importName turns the name a file gives an image (a full reference, a bare
// tag, or nothing) and --repo into where it is stored. A full reference
// that names its registry keeps it, the way pull-through stores that
// upstream's content (registry.k8s.io/pause:3.10 → registry.k8s.io/pause,
// docker.io/nginx:1.25 → docker.io/library/nginx), so nodes asking with
// ns=registry.k8s.io get it; one without a registry host keeps its path
// (lab/app:1.0 → lab/app).
func importName(n, repo string) (name.Reference, error) {
	var repoPart, tag, pinned string
	if n != "" {
		if strings.ContainsAny(n, "/:") {
			ref, err := name.ParseReference(n)
			if err != nil {
				return nil, fmt.Errorf("%q is not an image name: %w", n, err)
			}
			repoPart = ref.Context().RepositoryStr()
			if host := registryHost(n); host != "" {
				repoPart = qualify(host, repoPart)
			}
			switch ref := ref.(type) {
			case name.Tag:
				tag = ref.TagStr()
			case name.Digest:
				pinned = ref.DigestStr() // a referrer: stored by digest, no tag
			}
		} else {
			tag = n
		}
	}
	if repo != "" {
		r, t, hasTag := strings.Cut(repo, ":")
		repoPart = r
		if hasTag {
			tag = t
		}
	}
	if repoPart == "" {
		return nil, fmt.Errorf("the file names this image only as %q: give its repository with --repo (e.g. --repo lab/app)", n)
	}
	if pinned != "" && tag == "" {
		return name.NewDigest(internalRegistry+"/"+repoPart+"@"+pinned, name.StrictValidation)
	}
	if tag == "" {
		tag = "latest"
	}
	return name.NewTag(internalRegistry+"/"+repoPart+":"+tag, name.StrictValidation)
}

// handlerTransport sends requests straight to an http.Handler in this
// process: import pushes through the registry's own handler chain without
// a socket or credentials. The response is complete when the handler has
// returned, as over HTTP, where distribution finishes an upload's
// bookkeeping after writing the status. Import's answers are small (blob
// bodies go the other way), so buffering them costs nothing.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.RemoteAddr = "127.0.0.1:0"
	req.RequestURI = req.URL.RequestURI()
	if req.Body == nil {
		req.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// registryHost is the registry a reference names explicitly (the first
// path element when it holds a dot or a colon, or is localhost), with
// Docker Hub's aliases as docker.io; "" when it names none.
func registryHost(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return ""
	}
	switch first {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return first
}
