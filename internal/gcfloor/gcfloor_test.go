package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	for _, c := range []struct {
		live, floor uint64
		want        int
	}{
		{0, 64 << 20, 100},              // nothing measured yet: the default
		{16 << 20, 64 << 20, 300},       // collect at 64 MB, not at 32
		{20 << 20, 64 << 20, 220},       // 20 MB × 3.2 = 64 MB
		{32 << 20, 64 << 20, 100},       // past half the floor: GOGC 100 again
		{500 << 20, 64 << 20, 100},      // a big heap: untouched
		{1 << 10, 64 << 20, maxPercent}, // near empty: bounded
	} {
		if got := percentFor(c.live, c.floor); got != c.want {
			t.Errorf("percentFor(%d, %d) = %d, want %d", c.live, c.floor, got, c.want)
		}
	}
}

// TestStartRetunesAfterCollections: with a small heap and a floor far
// above it, a collection raises GOGC again after it was put back to 100,
// and the next ones still do (the cleanup re-arms itself).
func TestStartRetunesAfterCollections(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(100)
	if !Start(1 << 30) {
		t.Fatal("Start refused with GOGC unset")
	}
	// Undo what Start set at once: only a collection's cleanup can set it
	// again.
	debug.SetGCPercent(100)
	deadline, rounds := time.Now().Add(5*time.Second), 0
	for {
		// SetGCPercent returns the value it replaces: read, then restore.
		got := debug.SetGCPercent(100)
		debug.SetGCPercent(got)
		if got == maxPercent {
			if rounds++; rounds == 3 {
				break
			}
			debug.SetGCPercent(100)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d after collections, want %d", got, maxPercent)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStartLeavesOperatorsGOGC(t *testing.T) {
	t.Setenv("GOGC", "150")
	if Start(1 << 30) {
		t.Error("Start took over although GOGC is set")
	}
}
