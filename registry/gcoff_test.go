package registry

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// A host whose config says gc.enabled: false refuses every collection,
// dry or not, and says where to run it; a reload turning it on applies
// in place.
func TestGCOffRefuses(t *testing.T) {
	off, on := false, true
	cfg := testConfig("127.0.0.0/8")
	cfg.GC.Enabled = &off
	tr := newTestRegistry(t, cfg)
	img, _, _ := images(t)
	if err := remote.Write(tr.ref(t, "lab/a:v1"), img, remote.WithAuth(pusher)); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		_, err := tr.GC(context.Background(), dry)
		if !errors.Is(err, ErrGCOff) {
			t.Fatalf("GC(dry=%v) with gc off: %v, want ErrGCOff", dry, err)
		}
		if !strings.Contains(err.Error(), "registry.gc.enabled: true") {
			t.Errorf("the refusal does not say where gc runs: %v", err)
		}
	}
	if !strings.Contains(tr.Status().Summary, "gc off on this host") {
		t.Errorf("summary %q does not say gc is off here", tr.Status().Summary)
	}
	cfg.GC.Enabled = &on
	if err := tr.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.GC(context.Background(), true); err != nil {
		t.Fatalf("GC after a reload with gc on: %v", err)
	}
}
