package web

import (
	"fmt"
	"html/template"
	"math"
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
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" class="plot-empty">collecting samples (one every %s)…</text></svg>`, (w+left-right)/2, (h+top-bottom)/2, historyEvery)
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
	pad := (hi - lo) * 0.08
	hi += pad
	if lo != 0 {
		lo -= pad
	}
	t0, t1 := ps[0].At, ps[len(ps)-1].At
	span := t1.Sub(t0).Seconds()
	if span <= 0 {
		span = 1
	}
	x := func(t time.Time) float64 { return left + (w-left-right)*t.Sub(t0).Seconds()/span }
	y := func(v float64) float64 { return top + (h-top-bottom)*(1-(v-lo)/(hi-lo)) }
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" class="plot-frame"/>`, left, top, w-left-right, h-top-bottom)
	for i := 0; i <= 4; i++ {
		v := lo + (hi-lo)*float64(i)/4
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
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="plot-label">%s</text>`, left, h-8, t0.Local().Format("15:04:05"))
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end" class="plot-label">%s (last %s)</text>`, w-right, h-8, t1.Local().Format("15:04:05"), t1.Sub(t0).Round(time.Second))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
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

// formatSeconds prints an offset as chronyc does: +12us, -3.4ms.
func formatSeconds(v float64) string {
	sign := "+"
	if v < 0 {
		sign = "-"
	}
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a < 1e-3:
		return fmt.Sprintf("%s%.0fus", sign, a*1e6)
	case a < 1:
		return fmt.Sprintf("%s%.1fms", sign, a*1e3)
	}
	return fmt.Sprintf("%s%.2fs", sign, a)
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

func formatPercent(v float64) string { return fmt.Sprintf("%.0f%%", v) }

func bytesOf(n int64) string { return humanize.Bytes(n) }

// percentOf is done of total as a whole percent, held to 0–100 (a resumed
// download can count more than its total).
func percentOf(done, total int64) string {
	if total <= 0 {
		return "—"
	}
	return formatPercent(math.Min(100, math.Max(0, float64(done)*100/float64(total))))
}
