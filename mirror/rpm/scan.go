package rpm

import (
	"context"
	"errors"
	"time"

	"github.com/airgapd/airgapd/mirror"
)

// scanLoop indexes local repos whose folder changed since their published
// index: once at start, then every index_every (re-read on each round, so a
// reload takes effect), until ctx ends; index_every: 0 scans never. A scan costs one stat per file; an
// index runs only when a name, size or mtime differs.
func (m *Mirror) scanLoop(ctx context.Context) {
	for {
		cfg := m.Config()
		for _, r := range cfg.Repos {
			if r.Mirrored() || cfg.IndexEvery <= 0 || ctx.Err() != nil {
				continue
			}
			res, err := m.indexRepo(ctx, cfg, r, true, nil)
			switch {
			case errors.Is(err, mirror.ErrBusy):
				// `airgapd mirror index` is at it; the next round looks again.
			case err != nil && ctx.Err() == nil:
				m.log.Warn("index failed", "repo", r.Name, "err", err)
			case err == nil && !res.UpToDate:
				m.log.Info("folder changed: re-indexed", "repo", r.Name, "headers_read", res.HeadersRead, "reused", res.Reused)
			}
		}
		every := cfg.IndexEvery.D()
		if every <= 0 {
			every = time.Minute // scanning off: see whether a reload turned it on
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
