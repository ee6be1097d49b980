package web

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/airgapd/airgapd/internal/humanize"
)

// plotSVG draws points as a small line chart, server-side: an inline
// <svg> needs no script and passes a CSP without 'unsafe-inline' (only
// presentation attributes, no style attributes). unit labels the axis;
// format prints a value.
func plotSVG(title string, ps []point, format func(float64) string) template.HTML {
	const w, h, left, right, top, bottom = 640.0, 170.0, 64.0, 12.0, 24.0, 26.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, w, h, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<text x="%.0f" y="16" class="plot-title">%s</text>`, left, template.HTMLEscapeString(title))
	if len(ps) < 2 {
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" class="plot-frame"/>`, left, top, w-left-right, h-top-bottom)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" class="plot-empty">collecting samples (one every %s)…</text></svg>`, (w+left-right)/2, (h+top-bottom)/2, humanDuration(historyEvery))
		return template.HTML(b.String())
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range ps {
		lo, hi = math.Min(lo, p.V), math.Max(hi, p.V)
	}
	if lo > 0 && lo < hi/2 || lo == hi && lo >= 0 {
		lo = 0
	}
	if hi == lo {
		hi = lo + 1
	}
	ticks := niceTicks(lo, hi, 4)
	lo, hi = ticks[0], ticks[len(ticks)-1]
	t0, t1 := ps[0].At, ps[len(ps)-1].At
	span := t1.Sub(t0).Seconds()
	if span <= 0 {
		span = 1
	}
	x := func(t time.Time) float64 { return left + (w-left-right)*t.Sub(t0).Seconds()/span }
	y := func(v float64) float64 { return top + (h-top-bottom)*(1-(v-lo)/(hi-lo)) }
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" class="plot-frame"/>`, left, top, w-left-right, h-top-bottom)
	for _, v := range ticks {
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" class="plot-grid"/>`, left, w-right, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end" class="plot-label">%s</text>`, left-6, y(v)+4, template.HTMLEscapeString(format(v)))
	}
	if lo < 0 && hi > 0 {
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" class="plot-zero"/>`, left, w-right, y(0), y(0))
	}
	var line, area strings.Builder
	for i, p := range ps {
		fmt.Fprintf(&line, "%.1f,%.1f ", x(p.At), y(p.V))
		if i == 0 {
			fmt.Fprintf(&area, "%.1f,%.1f ", x(p.At), y(math.Max(lo, 0)))
		}
		fmt.Fprintf(&area, "%.1f,%.1f ", x(p.At), y(p.V))
	}
	fmt.Fprintf(&area, "%.1f,%.1f", x(t1), y(math.Max(lo, 0)))
	fmt.Fprintf(&b, `<polygon points="%s" class="plot-area"/>`, area.String())
	fmt.Fprintf(&b, `<polyline points="%s" class="plot-line"/>`, strings.TrimSpace(line.String()))
	for _, p := range ps {
		if p.Mark {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" class="plot-mark"/>`, x(p.At), x(p.At), top, h-bottom)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" class="plot-mark-label">set by operator</text>`, x(p.At)+3, top+11)
		}
	}
	step, layout := timeStep(t1.Sub(t0))
	for t := t0.Truncate(step).Add(step); !t.After(t1); t = t.Add(step) {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" class="plot-grid"/>`, x(t), x(t), top, h-bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" class="plot-label">%s</text>`, x(t), h-8, t.Local().Format(layout))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="16" text-anchor="end" class="plot-label">last %s</text>`, w-right, humanDuration(t1.Sub(t0)))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceTicks are about n+1 round values (steps of 1, 2 or 5 × 10^k) that
// cover lo..hi, first and last outside or on the data.
func niceTicks(lo, hi float64, n int) []float64 {
	if hi <= lo {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step, best := mag, math.Inf(1)
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if d := math.Abs((hi-lo)/(m*mag) - float64(n)); d < best {
			step, best = m*mag, d
		}
	}
	decimals := max(0, 1-int(math.Floor(math.Log10(step))))
	first, last := math.Floor(lo/step)*step, math.Ceil(hi/step)*step
	var out []float64
	for i := 0; ; i++ {
		v := first + float64(i)*step
		if v > last+step/2 {
			break
		}
		// Round away float noise (0.30000000000000004).
		v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'f', decimals, 64), 64)
		out = append(out, v)
	}
	if len(out) < 2 {
		out = append(out, first+step)
	}
	return out
}

// timeSteps are the round intervals of the time axis.
var timeSteps = []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// timeStep is the smallest round interval giving at most 6 time labels
// over span, and the clock layout for them.
func timeStep(span time.Duration) (time.Duration, string) {
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= 6 {
			step = s
			break
		}
	}
	if step < time.Minute {
		return step, "15:04:05"
	}
	return step, "15:04"
}

// humanDuration is a span as people say it: 45 s, 12 min, 3 h 20 min.
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d%time.Hour < time.Minute:
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
}

// sparkSVG is a tiny plot for the overview cards.
func sparkSVG(ps []point) template.HTML {
	if len(ps) < 2 {
		return ""
	}
	const w, h = 160.0, 36.0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range ps {
		lo, hi = math.Min(lo, p.V), math.Max(hi, p.V)
	}
	if hi == lo {
		hi, lo = hi+1, lo-1
	}
	t0, span := ps[0].At, ps[len(ps)-1].At.Sub(ps[0].At).Seconds()
	if span <= 0 {
		span = 1
	}
	var line strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&line, "%.1f,%.1f ", w*p.At.Sub(t0).Seconds()/span, 2+(h-4)*(1-(p.V-lo)/(hi-lo)))
	}
	return template.HTML(fmt.Sprintf(`<svg class="spark" viewBox="0 0 %.0f %.0f" xmlns="http://www.w3.org/2000/svg" aria-hidden="true"><polyline points="%s" class="plot-line"/></svg>`, w, h, strings.TrimSpace(line.String())))
}

// formatSeconds prints an offset with its sign and unit: +12 µs,
// -3.4 ms, +1.25 s.
func formatSeconds(v float64) string {
	sign := "+"
	if v < 0 {
		sign = "-"
	}
	a := math.Abs(v)
	switch {
	case a < 0.5e-9:
		return "0"
	case a < 1e-6:
		return fmt.Sprintf("%s%s ns", sign, trimFloat(a*1e9, 0))
	case a < 1e-3:
		return fmt.Sprintf("%s%s µs", sign, trimFloat(a*1e6, 0))
	case a < 1:
		return fmt.Sprintf("%s%s ms", sign, trimFloat(a*1e3, 1))
	}
	return fmt.Sprintf("%s%s s", sign, trimFloat(a, 2))
}

// trimFloat prints v with at most prec decimals, no trailing zeros.
func trimFloat(v float64, prec int) string {
	s := fmt.Sprintf("%.*f", prec, v)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func formatFloat(v float64) string {
	switch {
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// formatPercent prints a percentage: whole above 10 (and for whole
// values), one decimal below.
func formatPercent(v float64) string {
	if math.Abs(v) >= 10 || v == math.Trunc(v) {
		return fmt.Sprintf("%.0f%%", v)
	}
	return trimFloat(v, 1) + "%"
}

func bytesOf(n int64) string { return humanize.Bytes(n) }

// percentOf is done of total as a whole percent, held to 0–100 (a resumed
// download can count more than its total).
func percentOf(done, total int64) string {
	if total <= 0 {
		return "—"
	}
	return formatPercent(math.Min(100, math.Max(0, float64(done)*100/float64(total))))
}
