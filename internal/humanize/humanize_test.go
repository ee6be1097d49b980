package humanize

import "testing"

func TestBytes(t *testing.T) {
	cases := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}, {1 << 50, "1.0 PiB"},
	}
	for _, tc := range cases {
		if got := Bytes(tc.n); got != tc.want {
			t.Errorf("Bytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestCount(t *testing.T) {
	cases := []struct {
		n    int
		noun string
		want string
	}{
		{0, "package", "0 packages"}, {1, "package", "1 package"}, {37, "package", "37 packages"},
		{2, "repository", "2 repositories"}, {1, "repository", "1 repository"}, {3, "key", "3 keys"},
		{2, "address", "2 addresses"}, {4, "blob", "4 blobs"}, {2, "push", "2 pushes"}, {3, "query", "3 queries"}, {2, "miss", "2 misses"},
	}
	for _, tc := range cases {
		if got := Count(tc.n, tc.noun); got != tc.want {
			t.Errorf("Count(%d, %q) = %q, want %q", tc.n, tc.noun, got, tc.want)
		}
	}
}
