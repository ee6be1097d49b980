package lockout

import (
	"testing"
	"time"
)

func TestLockout(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(3, time.Minute, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.Allowed("a"); !ok {
			t.Fatalf("attempt %d refused before the limit", i)
		}
		l.Failed("a")
	}
	ok, wait := l.Allowed("a")
	if ok || wait != time.Minute {
		t.Fatalf("after 3 failures: allowed %v, wait %v; want locked out for 1m", ok, wait)
	}
	if ok, _ := l.Allowed("b"); !ok {
		t.Error("another client is locked out too")
	}
	now = now.Add(61 * time.Second)
	if ok, _ := l.Allowed("a"); !ok {
		t.Error("still locked out after the window")
	}
	l.Failed("a")
	l.Succeeded("a")
	if ok, _ := l.Allowed("a"); !ok {
		t.Error("a success did not clear the count")
	}
}
