package dnsd

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// answerFor is a reply to name with one A record whose address says i.
func answerFor(t testing.TB, name string, i int) *dns.Msg {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion(name, dns.TypeA)
	m := reply(req, dns.RcodeSuccess)
	rr, err := dns.NewRR(fmt.Sprintf("%s 300 A 10.%d.%d.%d", name, i>>16&255, i>>8&255, i&255))
	if err != nil {
		t.Fatal(err)
	}
	m.Answer = []dns.RR{rr}
	return m
}

func cachedAddr(t *testing.T, c *cache, name string) string {
	t.Helper()
	e, state := c.get(cacheKey{name: name, qtype: dns.TypeA, qclass: dns.ClassINET})
	if state != cacheFresh {
		return ""
	}
	m, err := e.reply()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(m.Answer) != 1 {
		t.Fatalf("%s: %d answers", name, len(m.Answer))
	}
	return m.Answer[0].(*dns.A).A.String()
}

// Entries stay whole through replacement, eviction and the compactions
// they cause, and a flush of one name leaves the others.
func TestCacheStoreKeepsEntriesThroughCompaction(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	cases := []struct {
		name        string
		limit, sets int
		evicts      bool
	}{
		{"below the limit", 5000, 3000, false},
		{"every shard full, evicting", 320, 4000, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(cacheLimits{maxEntries: tc.limit, maxTTL: time.Hour}, clk.now)
			want := map[string]string{}
			for i := range tc.sets {
				name := fmt.Sprintf("n%d.test.", i%2000) // names come back: replacements
				c.set(cacheKey{name: name, qtype: dns.TypeA, qclass: dns.ClassINET}, answerFor(t, name, i))
				want[name] = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
			}
			found := 0
			for name, addr := range want {
				switch got := cachedAddr(t, c, name); got {
				case "":
				case addr:
					found++
				default:
					t.Fatalf("%s: cached %s, last stored %s", name, got, addr)
				}
			}
			if found != c.len() {
				t.Errorf("%d entries found of %d in the cache", found, c.len())
			}
			if evicted := c.evictions.Load() > 0; evicted != tc.evicts || (!tc.evicts && found != len(want)) {
				t.Errorf("evictions %d, found %d of %d", c.evictions.Load(), found, len(want))
			}
			had, entries := cachedAddr(t, c, "n1.test.") != "", c.len()
			if n := c.flush("N1.test."); (had && n != 1) || (!had && n != 0) || c.len() != entries-n {
				t.Errorf("flush of one name (cached: %v) removed %d, entries %d → %d", had, n, entries, c.len())
			}
			if cachedAddr(t, c, "n1.test.") != "" {
				t.Error("n1.test. still cached after its flush")
			}
		})
	}
}

// An entry a lookup handed out stays readable while its shard compacts.
func TestCacheEntrySurvivesCompaction(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	c := newCache(cacheLimits{maxEntries: 100000, maxTTL: time.Hour}, clk.now)
	k := cacheKey{name: "kept.test.", qtype: dns.TypeA, qclass: dns.ClassINET}
	c.set(k, answerFor(t, k.name, 7))
	e, _ := c.get(k)
	before := string(e.wire)
	sh := c.shard(c.hashOf(k))
	compactions := 0
	for i := 0; compactions < 3 && i < 50000; i++ {
		arena := cap(sh.arena)
		name := fmt.Sprintf("fill%d.test.", i)
		c.set(cacheKey{name: name, qtype: dns.TypeA, qclass: dns.ClassINET}, answerFor(t, name, i))
		if cap(sh.arena) != arena {
			compactions++
		}
	}
	if compactions < 3 {
		t.Fatalf("%d compactions of the entry's shard", compactions)
	}
	c.flush("")
	if string(e.wire) != before {
		t.Fatal("a handed-out entry changed under compaction")
	}
}

// The point of the store: cached names cost the garbage collector no heap
// objects of their own, so a mark phase does not grow with the cache.
func TestCachedNamesAreNotHeapObjects(t *testing.T) {
	const names = 20000
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	c := newCache(cacheLimits{maxEntries: 2 * names, maxTTL: time.Hour}, clk.now)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range names {
		m := answerFor(t, fmt.Sprintf("host%d.test.", i), i)
		c.set(cacheKey{name: m.Question[0].Name, qtype: dns.TypeA, qclass: dns.ClassINET}, m)
	}
	runtime.GC() // the replies and the packing's garbage are gone; the cache is what is left
	runtime.ReadMemStats(&after)
	if c.len() != names {
		t.Fatalf("%d cached, want %d", c.len(), names)
	}
	// A store of a key, entry, reply and offsets per name grew by 80 000.
	grew := int64(after.HeapObjects) - int64(before.HeapObjects)
	t.Logf("heap objects grew by %d for %d cached names", grew, names)
	if grew > names/20 {
		t.Errorf("heap objects grew by %d for %d cached names", grew, names)
	}
	runtime.KeepAlive(c)
}
