package ntpd

import (
	"testing"
	"time"
)

func TestSelectSources(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name      string
		cands     []candidate
		wantMarks string
		wantPeer  int
		wantOff   time.Duration // ± 1 µs
	}{
		{name: "none", wantMarks: "", wantPeer: -1},
		{name: "one", cands: []candidate{{offset: 5 * ms, dist: 10 * ms, stratum: 2}}, wantMarks: "*", wantPeer: 0, wantOff: 5 * ms},
		{
			name: "three agree, closest selected, all combined",
			cands: []candidate{
				{offset: 1 * ms, dist: 20 * ms, stratum: 2},
				{offset: 2 * ms, dist: 10 * ms, stratum: 2},
				{offset: 3 * ms, dist: 25 * ms, stratum: 2},
			},
			wantMarks: "+*+", wantPeer: 1,
			// weighted by 1/dist: (1/20 + 2/10 + 3/25) / (1/20 + 1/10 + 1/25)
			wantOff: time.Duration((1.0/20 + 2.0/10 + 3.0/25) / (1.0/20 + 1.0/10 + 1.0/25) * float64(ms)),
		},
		{
			name: "falseticker outside the majority",
			cands: []candidate{
				{offset: 1 * ms, dist: 5 * ms, stratum: 2},
				{offset: 500 * ms, dist: 5 * ms, stratum: 1},
				{offset: 2 * ms, dist: 5 * ms, stratum: 2},
			},
			wantMarks: "*x+", wantPeer: 0, wantOff: 1500 * time.Microsecond,
		},
		{
			name: "two disagree: no majority",
			cands: []candidate{
				{offset: 0, dist: 1 * ms, stratum: 2},
				{offset: 100 * ms, dist: 1 * ms, stratum: 2},
			},
			wantMarks: "xx", wantPeer: -1,
		},
		{
			name: "far distance not combined",
			cands: []candidate{
				{offset: 1 * ms, dist: 2 * ms, stratum: 2},
				{offset: 2 * ms, dist: 50 * ms, stratum: 2},
			},
			wantMarks: "*-", wantPeer: 0, wantOff: 1 * ms,
		},
		{
			name: "lower stratum wins a near tie",
			cands: []candidate{
				{offset: 1 * ms, dist: 10 * ms, stratum: 3},
				{offset: 1 * ms, dist: 10*ms + 500*time.Microsecond, stratum: 1},
			},
			wantMarks: "+*", wantPeer: 1, wantOff: 1 * ms,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := selectSources(tt.cands)
			if string(ch.marks) != tt.wantMarks || ch.peer != tt.wantPeer {
				t.Fatalf("marks %q peer %d; want %q %d", ch.marks, ch.peer, tt.wantMarks, tt.wantPeer)
			}
			if ch.peer >= 0 && (ch.offset-tt.wantOff).Abs() > time.Microsecond {
				t.Errorf("offset %s, want %s", ch.offset, tt.wantOff)
			}
		})
	}
}
