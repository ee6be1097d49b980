package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStartCleansInterruptedEdits: a config edit killed mid-write (kill -9
// between the temporary file and the rename) leaves an empty
// .airgapd.yaml.tmp-* beside the config; the next start removes it, and
// leaves everything else alone (issue 19 item 15).
func TestStartCleansInterruptedEdits(t *testing.T) {
	dir := t.TempDir()
	left := []string{".airgapd.yaml.tmp-123456", ".airgapd.yaml.prev.tmp-654321"}
	for _, n := range append(left, ".other.tmp-1") {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	in := start(t, dir, base)
	for _, n := range left {
		if _, err := os.Stat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Errorf("%s is still there after a start: %v", n, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".other.tmp-1")); err != nil {
		t.Errorf("a file that is not the config's temporary was removed: %v", err)
	}
	in.waitLog("removed what an interrupted config edit left", time.Second)
}
