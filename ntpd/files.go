package ntpd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/airgapd/airgapd/internal/atomicfile"
)

// Files ntpd keeps under data_dir/ntp.
const (
	driftFile   = "drift"   // like chrony's driftfile: "FREQ_PPM SKEW_PPM"
	settimeFile = "settime" // a pending `airgapd ntp settime`
)

// Dir is where ntpd keeps its files under data_dir.
func Dir(dataDir string) string { return filepath.Join(dataDir, "ntp") }

// readDrift reads a drift file: the system clock's frequency offset and
// its error, in ppm, as chrony's driftfile holds them. Positive: the
// system clock runs slow against the upstream.
func readDrift(path string) (ppm, skew float64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("%s: want two numbers, frequency and skew in ppm", path)
	}
	if ppm, err = strconv.ParseFloat(f[0], 64); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	if skew, err = strconv.ParseFloat(f[1], 64); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	return ppm, skew, nil
}

func writeDrift(path string, ppm, skew float64) error {
	return writeAtomic(path, fmt.Appendf(nil, "%20.6f %20.6f\n", ppm, skew))
}

// writeAtomic writes a file the way the config is written (temp, fsync,
// rename), creating its folder first.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o600)
}

// settimeRequest is the file `airgapd ntp settime` leaves for the server.
// WrittenAt is the system clock when the operator's time was read, so the
// request means the same whenever it is picked up: served time − system
// clock = Time − WrittenAt.
type settimeRequest struct {
	Time      time.Time `json:"time"`
	WrittenAt time.Time `json:"written_at"`
	Force     bool      `json:"force,omitempty"` // even while a source is selected
}

// WriteSetTime queues `airgapd ntp settime`: the running server applies it
// within a second; otherwise the next start does.
func WriteSetTime(dataDir string, to, now time.Time, force bool) error {
	b, err := json.Marshal(settimeRequest{Time: to, WrittenAt: now, Force: force})
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(Dir(dataDir), settimeFile), b)
}

// SetTimePending reports whether a settime request waits to be applied.
func SetTimePending(dataDir string) bool {
	_, err := os.Stat(filepath.Join(Dir(dataDir), settimeFile))
	return err == nil
}

// takeSetTime reads and removes a pending request; ok is false when none.
func takeSetTime(dir string) (settimeRequest, bool, error) {
	path := filepath.Join(dir, settimeFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return settimeRequest{}, false, nil
	}
	if err != nil {
		return settimeRequest{}, false, err
	}
	os.Remove(path)
	var r settimeRequest
	if err := json.Unmarshal(b, &r); err != nil || r.Time.IsZero() || r.WrittenAt.IsZero() {
		return settimeRequest{}, false, fmt.Errorf("%s: not a settime request (removed): %v", path, err)
	}
	return r, true, nil
}

// ParseTime reads the operator's time for settime, like `chronyc settime`:
// RFC 3339 ("2026-11-21T16:30:05+09:00"), "2026-11-21 16:30:05" or
// "16:30:05" (today), the last two in loc.
func ParseTime(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			y, m, d := now.In(loc).Date()
			return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, loc), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: write 2026-11-21T16:30:05+09:00, \"2026-11-21 16:30:05\" or 16:30:05", s)
}
