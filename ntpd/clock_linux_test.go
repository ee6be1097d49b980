package ntpd

import "testing"

// TestReadKernelClock only reads: adjtimex with modes = 0. No test calls
// Step, Slew or SetFrequency on the real clock.
func TestReadKernelClock(t *testing.T) {
	k, err := ReadKernelClock()
	if err != nil {
		t.Fatal(err)
	}
	if k.FrequencyPPM < -600 || k.FrequencyPPM > 600 {
		t.Errorf("kernel frequency %v ppm is outside what adjtimex allows", k.FrequencyPPM)
	}
}
