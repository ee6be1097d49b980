package web

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestNiceTicks(t *testing.T) {
	cases := []struct {
		lo, hi float64
		want   string
	}{
		{0, 1, "[0 0.25 0.5 0.75 1]"},
		{0, 0.78, "[0 0.2 0.4 0.6 0.8]"},
		{0, 37, "[0 10 20 30 40]"},
		{-0.00023, 0.00041, "[-0.0004 -0.0002 0 0.0002 0.0004 0.0006]"},
		{12, 12, "[12 12.25 12.5 12.75 13]"},
		{0, 100, "[0 25 50 75 100]"},
	}
	for _, tc := range cases {
		got := niceTicks(tc.lo, tc.hi, 4)
		if s := fmt.Sprint(got); s != tc.want {
			t.Errorf("niceTicks(%v, %v) = %s, want %s", tc.lo, tc.hi, s, tc.want)
		}
	}
}

func TestHumanFormats(t *testing.T) {
	cases := []struct{ got, want string }{
		{formatSeconds(37e-6), "+37 µs"}, {formatSeconds(-3.4e-3), "-3.4 ms"}, {formatSeconds(0), "0"},
		{formatSeconds(1.25), "+1.25 s"}, {formatSeconds(2e-4), "+200 µs"}, {formatSeconds(5e-3), "+5 ms"},
		{formatPercent(0.4), "0.4%"}, {formatPercent(37.4), "37%"}, {formatPercent(1), "1%"},
		{percentOf(1010, 1000), "100%"}, {percentOf(1, 0), "—"},
		{humanDuration(45 * time.Second), "45 s"}, {humanDuration(12 * time.Minute), "12 min"}, {humanDuration(200 * time.Minute), "3 h 20 min"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestPlotTimeLabels: a 20-minute plot is labelled at round times
// (every 5 minutes), its value axis at round values.
func TestPlotTimeLabels(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 3, 17, 0, time.Local)
	var ps []point
	for i := 0; i <= 240; i++ {
		ps = append(ps, point{At: t0.Add(time.Duration(i) * 5 * time.Second), V: float64(i%7) * 0.13, Mark: i == 120})
	}
	svg := string(plotSVG("x", ps, formatFloat))
	for _, want := range []string{">10:05<", ">10:10<", ">10:15<", ">10:20<", ">0.00<", ">0.20<", ">0.80<", "last 20 min"} {
		if !strings.Contains(svg, want) {
			t.Errorf("plot has no %s:\n%s", want, svg)
		}
	}
	// The operator's step at the middle point is marked there, once.
	if n := strings.Count(svg, `class="plot-mark"`); n != 1 || !strings.Contains(svg, `x1="346.0" x2="346.0"`) || !strings.Contains(svg, "set by operator") {
		t.Errorf("%d operator marks, want one at x=346 (the middle):\n%s", n, svg)
	}
}
