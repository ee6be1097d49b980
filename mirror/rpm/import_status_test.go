package rpm

import (
	"strings"
	"testing"
	"time"

	"github.com/airgapd/airgapd/mirror"
)

// TestImportProgressInStatus: the import under way shows in the mirror's
// status and its one-line summary; once it ends, the status keeps the
// outcome and the summary drops it.
func TestImportProgressInStatus(t *testing.T) {
	m, err := New(DefaultConfig(), Deps{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var heard []mirror.ImportProgress
	tr := mirror.NewTracker(mirror.ImportProgress{Bundle: "sha256:abc", Phase: "verify", Bytes: 200, Blobs: 4, Started: time.Now()},
		func(p mirror.ImportProgress) { heard = append(heard, p) }, m.SetImportProgress)
	cases := []struct {
		name        string
		change      func(*mirror.ImportProgress)
		wantPhase   string
		wantSummary string // "" = the summary mentions no import
	}{
		{name: "verifying", change: func(p *mirror.ImportProgress) { p.BytesDone, p.BlobsDone = 50, 1 }, wantPhase: "verify", wantSummary: "importing a bundle: 25% verified"},
		{name: "publishing", change: func(p *mirror.ImportProgress) { p.Phase, p.Item, p.BytesDone = "publish", "repo up", 200 }, wantPhase: "publish", wantSummary: "importing a bundle: publishing repo up"},
		{name: "done", change: func(p *mirror.ImportProgress) { p.Phase, p.Item = "done", "" }, wantPhase: "done"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr.Update(true, c.change)
			st := m.Status()
			if st.BundleImport == nil || st.BundleImport.Phase != c.wantPhase || st.BundleImport.Bundle != "sha256:abc" {
				t.Fatalf("status bundle_import %+v; want phase %s", st.BundleImport, c.wantPhase)
			}
			if c.wantSummary == "" && strings.Contains(st.Summary, "importing") || c.wantSummary != "" && !strings.Contains(st.Summary, c.wantSummary) {
				t.Errorf("summary %q; want %q", st.Summary, c.wantSummary)
			}
			if last := heard[len(heard)-1]; last.Phase != c.wantPhase {
				t.Errorf("progress callback last heard %+v", last)
			}
		})
	}
}
