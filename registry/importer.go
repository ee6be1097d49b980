package registry

import (
	"archive/tar"
	"context"
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

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

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
