package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func sha(b []byte) Checksum {
	s := sha256.Sum256(b)
	return Checksum{Type: "sha256", Value: hex.EncodeToString(s[:])}
}

// TestPublishTreeFromPeer replicates a tree the way an HA follower would:
// PublishTree with FetchPlace from another instance's published tree. A
// file whose bytes do not match publishes nothing; the tree published
// before stays served.
func TestPublishTreeFromPeer(t *testing.T) {
	files := map[string][]byte{"repodata/index": []byte("index v1"), "pkgs/a.bin": []byte("aaaa")}
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path[len("/repos/x/"):]]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	defer peer.Close()
	tree := func() []TreeFile {
		var tf []TreeFile
		for p, b := range files {
			tf = append(tf, TreeFile{Path: p, Sum: sha(b), Size: int64(len(b))})
		}
		return tf
	}
	st := RepoStore(t.TempDir(), "x")
	f, err := NewFetcher(nil, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Attempts, f.Backoff = 1, time.Millisecond
	defer f.Close()
	place := st.FetchPlace(f, []string{peer.URL + "/repos/x/"})

	tests := []struct {
		name    string
		change  func([]TreeFile) []TreeFile
		wantErr error
		want    string // repodata/index served after
	}{
		{name: "first copy", change: func(tf []TreeFile) []TreeFile { return tf }, want: "index v1"},
		{name: "a damaged file publishes nothing", change: func(tf []TreeFile) []TreeFile {
			files["repodata/index"] = []byte("index v2")
			tf = tree()
			files["repodata/index"] = []byte("index v3") // the peer now serves other bytes
			return tf
		}, wantErr: ErrChecksum, want: "index v1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			unlock, err := st.Lock()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Lock(); !errors.Is(err, ErrBusy) {
				t.Errorf("second lock: %v, want ErrBusy", err)
			}
			_, err = st.PublishTree(context.Background(), tc.change(tree()), place)
			unlock()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("PublishTree: %v, want %v", err, tc.wantErr)
			}
			cur, err := st.Current()
			if err != nil || cur == "" {
				t.Fatalf("current %q, %v", cur, err)
			}
			if b, _ := os.ReadFile(filepath.Join(cur, "repodata", "index")); string(b) != tc.want {
				t.Errorf("served %q, want %q", b, tc.want)
			}
			if entries, _ := os.ReadDir(filepath.Join(st.Dir, "snap")); len(entries) != 1 {
				t.Errorf("snap/ holds %d entries, want the published one only", len(entries))
			}
		})
	}
}
