// Package gcfloor keeps the Go collector from running over and over on a
// small heap. With GOGC's default of 100 the next collection comes when
// the heap has doubled: at 15 MB live that is every 15 MB allocated, a
// few seconds of forwarded DNS queries, and on one core each collection's
// mark phase (30–70 ms there) slows every query answered during it — the
// cache-miss p99 of bench/dns/miss.sh moved with whether a collection fell
// into the measured seconds. A floor lets the heap grow to a fixed size
// before collecting while it is small, and changes nothing once the live
// heap is past half the floor (GOGC 100 again); the cost is at most the
// floor in memory. A GOGC the operator set is left alone.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// maxPercent bounds the GOGC the floor sets (a near-empty heap would
// otherwise ask for a huge one).
const maxPercent = 1000

// Start keeps the heap's collection target at least floor bytes from now
// on, re-tuned after every collection. It reports false, doing nothing,
// when GOGC is set in the environment.
func Start(floor uint64) bool {
	if os.Getenv("GOGC") != "" {
		return false
	}
	tune(floor)
	arm(floor)
	return true
}

// sentinel is a heap object whose cleanup runs after the collection that
// finds it unreachable; it has a pointer so the tiny allocator, whose
// blocks can outlive one object, never takes it.
type sentinel struct{ _ *byte }

func arm(floor uint64) {
	runtime.AddCleanup(&sentinel{}, func(floor uint64) {
		tune(floor)
		arm(floor)
	}, floor)
}

// tune sets GOGC so that the next collection comes at floor bytes of heap
// while the live heap is below half of it, and at GOGC 100 after that.
func tune(floor uint64) {
	debug.SetGCPercent(percentFor(liveHeap(), floor))
}

func percentFor(live, floor uint64) int {
	if live == 0 || live >= floor/2 {
		return 100
	}
	return min(maxPercent, int(floor*100/live)-100)
}

func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
