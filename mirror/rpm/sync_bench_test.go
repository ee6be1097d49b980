package rpm

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkSync syncs 100 packages of 1.5 MB from a file server on
// loopback into an empty data_dir, the way bench/mirror/run.sh does but in
// one process, so `go test -bench Sync -cpuprofile` shows where a sync's
// time goes (the upstream's sendfile shows up too).
func BenchmarkSync(b *testing.B) {
	const packages, size = 100, 1_500_000
	pkgs := map[string][]byte{}
	rng := rand.NewChaCha8([32]byte{1})
	for i := range packages {
		body := make([]byte, size)
		rng.Read(body)
		pkgs[fmt.Sprintf("bench%04d", i)] = body
	}
	up := b.TempDir()
	for rel, body := range newFakeRepo(pkgs, "").files {
		p := filepath.Join(up, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(up))}
	go srv.Serve(ln)
	defer srv.Close()

	b.SetBytes(packages * size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		cfg := DefaultConfig()
		cfg.Listen = "127.0.0.1:0"
		cfg.Repos = []Repo{{Name: "up", BaseURL: "http://" + ln.Addr().String() + "/"}}
		m, err := New(cfg, Deps{DataDir: b.TempDir(), Listen: "127.0.0.1:8081"})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := m.Sync(context.Background(), nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}
