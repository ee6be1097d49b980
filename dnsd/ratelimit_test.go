package dnsd

import (
	"net/netip"
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l, err := newLimiter(RateLimitConfig{ResponsesPerSecond: 5, Slip: 2, IPv4PrefixLength: 24, IPv6PrefixLength: 56, Exempt: []string{"10.9.9.0/24"}}, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	flood := netip.MustParseAddr("10.0.0.1")
	neighbour := netip.MustParseAddr("10.0.0.200") // same /24: same bucket
	quiet := netip.MustParseAddr("10.0.1.1")
	exempt := netip.MustParseAddr("10.9.9.9")

	var got []verdict
	for range 9 {
		got = append(got, l.check(flood))
	}
	want := []verdict{allow, allow, allow, allow, allow, drop, slip, drop, slip}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("flood verdicts %v, want %v", got, want)
		}
	}
	if l.check(neighbour) == allow {
		t.Error("a neighbour in the same /24 was not limited with the flood")
	}
	if l.check(quiet) != allow {
		t.Error("a quiet client in another /24 was limited")
	}
	for range 50 {
		if l.check(exempt) != allow {
			t.Fatal("an exempt client was limited")
		}
	}
	clk.add(time.Second) // a second's worth of tokens comes back
	if l.check(flood) != allow {
		t.Error("the flood's network did not recover after a second")
	}
	if off, _ := newLimiter(RateLimitConfig{}, clk.now); off.check(flood) != allow {
		t.Error("a nil limiter limited")
	}
}
