package ntpd

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestDriftFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ntp", "drift")
	if err := writeDrift(path, -12.345678, 0.25); err != nil {
		t.Fatal(err)
	}
	ppm, skew, err := readDrift(path)
	if err != nil || ppm != -12.345678 || skew != 0.25 {
		t.Fatalf("readDrift = %v %v %v", ppm, skew, err)
	}
	os.WriteFile(path, []byte("garbage\n"), 0o644)
	if _, _, err := readDrift(path); err == nil {
		t.Error("garbage accepted")
	}
}

func TestSetTimeFile(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	to := now.Add(time.Hour)
	if err := WriteSetTime(dir, to, now, false); err != nil {
		t.Fatal(err)
	}
	if !SetTimePending(dir) {
		t.Fatal("not pending")
	}
	r, ok, err := takeSetTime(Dir(dir))
	if err != nil || !ok || !r.Time.Equal(to) || !r.WrittenAt.Equal(now) {
		t.Fatalf("takeSetTime = %+v %v %v", r, ok, err)
	}
	if SetTimePending(dir) {
		t.Error("still pending after take")
	}
	if _, ok, err := takeSetTime(Dir(dir)); ok || err != nil {
		t.Errorf("second take: %v %v", ok, err)
	}
}

func TestParseTime(t *testing.T) {
	seoul := time.FixedZone("KST", 9*3600)
	now := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC) // 12:00 KST
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "2026-11-21T16:30:05+09:00", want: time.Date(2026, 11, 21, 7, 30, 5, 0, time.UTC)},
		{in: "2026-11-21T07:30:05.5Z", want: time.Date(2026, 11, 21, 7, 30, 5, 5e8, time.UTC)},
		{in: "2026-11-21 16:30:05", want: time.Date(2026, 11, 21, 16, 30, 5, 0, seoul)},
		{in: "16:30:05", want: time.Date(2026, 11, 21, 16, 30, 5, 0, seoul)},
		{in: "16:30", want: time.Date(2026, 11, 21, 16, 30, 0, 0, seoul)},
		{in: "tomorrow", bad: true},
		{in: "25:00:00", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in, now, seoul)
		if tt.bad != (err != nil) || (!tt.bad && !got.Equal(tt.want)) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
