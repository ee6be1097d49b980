package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/airgapd/airgapd/api"
)

// TestProgressViewLines: off a terminal the view prints a line for a step
// that asks for one, holds back the others within lineEvery, skips what the
// result line says, and prints nothing at all with -q.
func TestProgressViewLines(t *testing.T) {
	cases := []struct {
		name   string
		quiet  bool
		steps  []api.Progress
		want   []string
		absent []string
	}{
		{
			name: "a sync",
			steps: []api.Progress{
				{Repo: "up", Phase: "metadata"},
				{Repo: "up", Phase: "packages", ToFetch: 2, Fetched: 1, Bytes: 2048, BytesDone: 1024},
				{Repo: "up", Phase: "packages", ToFetch: 2, Fetched: 2, Bytes: 2048, BytesDone: 2048},
				{Repo: "up", Phase: "done"},
			},
			want:   []string{"up: metadata, ", "up: 2/2 packages, 2.0 KiB of 2.0 KiB"},
			absent: []string{"1/2 packages", "done"},
		},
		{
			name:   "quiet",
			quiet:  true,
			steps:  []api.Progress{{Repo: "up", Phase: "metadata"}},
			absent: []string{"up"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			v := newProgressView(&out, c.quiet)
			for _, p := range c.steps {
				v.show(syncStep(p))
			}
			v.finish("")
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range c.absent {
				if strings.Contains(out.String(), w) {
					t.Errorf("output has %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestServerAtNoSocket: no socket means no server, not an error.
func TestServerAtNoSocket(t *testing.T) {
	c, err := serverAt(t.TempDir() + "/api.sock")
	if c != nil || err != nil {
		t.Errorf("serverAt(missing) = %v, %v; want nil, nil", c, err)
	}
}
