package ntpd

import (
	"math"
	"slices"
	"time"
)

// Source marks, as `chronyc sources` prints them after "^".
const (
	markSelected    = '*' // the system peer
	markCombined    = '+' // combined with it
	markNotCombined = '-' // acceptable but not combined
	markUnusable    = '?' // unreachable, or no valid sample yet
	markFalse       = 'x' // falseticker: outside the majority's interval
)

// combineLimit is chrony's combinelimit: sources whose distance is within
// this factor of the best one's are combined with it.
const combineLimit = 3

// stratumWeight is chrony's stratumweight: each stratum adds this much to
// a source's distance when choosing the system peer.
const stratumWeight = time.Millisecond

// candidate is one source that has a usable filtered sample.
type candidate struct {
	offset  time.Duration // filtered offset
	dist    time.Duration // root distance: half-width of its correctness interval
	stratum uint8
}

// choice is the outcome of selection over a list of candidates.
type choice struct {
	marks    []byte // per candidate: markSelected, markCombined, markNotCombined or markFalse
	peer     int    // index of the system peer, -1 when none
	offset   time.Duration
	combined int
}

// selectSources is chrony's selection, simplified but honest:
//  1. Marzullo's interval intersection over [offset − dist, offset + dist]
//     finds the largest group that agrees; sources outside it are
//     falsetickers, and without a majority nothing is selected;
//  2. the survivor with the smallest distance (plus stratumWeight per
//     stratum) becomes the system peer;
//  3. survivors within combineLimit of its distance are combined, weighted
//     by 1/distance.
func selectSources(cs []candidate) choice {
	ch := choice{marks: make([]byte, len(cs)), peer: -1}
	if len(cs) == 0 {
		return ch
	}
	type edge struct {
		at   time.Duration
		kind int // -1 interval starts, +1 ends; starts sort first at a tie
	}
	edges := make([]edge, 0, 2*len(cs))
	for _, c := range cs {
		edges = append(edges, edge{c.offset - c.dist, -1}, edge{c.offset + c.dist, +1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if a.at != b.at {
			return sign(a.at - b.at)
		}
		return a.kind - b.kind
	})
	best, depth := 0, 0
	var lo, hi time.Duration
	for i, e := range edges {
		depth -= e.kind
		if depth > best {
			best = depth
			lo = e.at
			hi = edges[min(i+1, len(edges)-1)].at
		}
	}
	if 2*best <= len(cs) {
		// No majority agrees (chronyd: "Can't synchronise: no majority").
		for i := range ch.marks {
			ch.marks[i] = markFalse
		}
		return ch
	}
	var survivors []int
	for i, c := range cs {
		if c.offset+c.dist >= lo && c.offset-c.dist <= hi {
			survivors = append(survivors, i)
		} else {
			ch.marks[i] = markFalse
		}
	}
	score := func(i int) time.Duration { return cs[i].dist + time.Duration(cs[i].stratum)*stratumWeight }
	ch.peer = slices.MinFunc(survivors, func(a, b int) int { return sign(score(a) - score(b)) })
	var wsum, osum float64
	for _, i := range survivors {
		if cs[i].dist <= combineLimit*cs[ch.peer].dist {
			ch.marks[i] = markCombined
			w := 1 / math.Max(cs[i].dist.Seconds(), 1e-9)
			wsum += w
			osum += w * cs[i].offset.Seconds()
			ch.combined++
		} else {
			ch.marks[i] = markNotCombined
		}
	}
	ch.marks[ch.peer] = markSelected
	ch.offset = time.Duration(osum / wsum * float64(time.Second))
	return ch
}

func sign(d time.Duration) int {
	switch {
	case d < 0:
		return -1
	case d > 0:
		return 1
	}
	return 0
}
