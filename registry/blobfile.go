package registry

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// tlsCopySize is how much of a blob's file one copy reads when the
// response goes over TLS. crypto/tls has no kernel TLS, so there the bytes
// pass through airgapd; net/http's own copy would move 32 KiB at a time,
// one pread and one trip down the writer chain per 32 KiB. With 1 MiB a TLS
// pull of a 1 GiB blob in the page cache ran about 1.2× as fast on the
// bench (docs/BENCHMARKS.md); 256 KiB and 4 MiB were no better.
const tlsCopySize = 1 << 20

// blobFiles serves blob GETs and HEADs straight from the filesystem
// driver's files, where distribution would copy them through its own
// buffered reader: http.ServeContent on the *os.File lets the kernel send
// the file (sendfile) on plain HTTP; on TLS it copies tlsCopySize at a time.
// It answers only when the repository links the blob exactly as
// distribution's linked blob store checks it; anything else (no link, a
// missing file, another digest algorithm) goes to distribution, which
// answers as it always does.
func blobFiles(root string, next http.Handler) http.Handler {
	base := filepath.Join(root, "docker", "registry", "v2")
	// TLS copy buffers, reused: one per blob being sent, not per request.
	copyBufs := sync.Pool{New: func() any { b := make([]byte, tlsCopySize); return &b }}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			next.ServeHTTP(w, req)
			return
		}
		rt := parseRoute(req.URL.Path)
		if rt.kind != routeBlob {
			next.ServeHTTP(w, req)
			return
		}
		d, err := digest.Parse(rt.ref)
		if err != nil || d.Algorithm() != digest.SHA256 {
			next.ServeHTTP(w, req)
			return
		}
		if _, err := reference.WithName(rt.repo); err != nil {
			next.ServeHTTP(w, req)
			return
		}
		hex := d.Encoded()
		link, err := os.ReadFile(filepath.Join(base, "repositories", filepath.FromSlash(rt.repo), "_layers", "sha256", hex, "link"))
		if err != nil || string(link) != d.String() {
			next.ServeHTTP(w, req)
			return
		}
		f, err := os.Open(filepath.Join(base, "blobs", "sha256", hex[:2], hex, "data"))
		if err != nil {
			next.ServeHTTP(w, req)
			return
		}
		defer f.Close()
		h := w.Header()
		h.Set("Docker-Distribution-API-Version", "registry/2.0")
		h.Set("Docker-Content-Digest", d.String())
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Etag", `"`+d.String()+`"`)
		h.Set("Cache-Control", "max-age=31536000")
		if req.TLS != nil && req.Method == http.MethodGet {
			buf := copyBufs.Get().(*[]byte)
			defer copyBufs.Put(buf)
			w = largeCopies{ResponseWriter: w, buf: *buf}
		}
		http.ServeContent(w, req, "", time.Time{}, f)
	})
}

// largeCopies makes http.ServeContent's copy of the file use buf instead
// of net/http's 32 KiB one. Only for TLS: on plain HTTP the writer's own
// ReadFrom is sendfile, which this would lose.
type largeCopies struct {
	http.ResponseWriter
	buf []byte
}

func (l largeCopies) ReadFrom(src io.Reader) (int64, error) {
	// Hide both sides' fast paths, or io.CopyBuffer would take them and
	// skip buf.
	return io.CopyBuffer(struct{ io.Writer }{l.ResponseWriter}, struct{ io.Reader }{src}, l.buf)
}

// Unwrap lets http.NewResponseController reach the connection's writer.
func (l largeCopies) Unwrap() http.ResponseWriter { return l.ResponseWriter }
