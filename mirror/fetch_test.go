package mirror

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
)

// chunkReader returns its chunks one Read at a time, then end.
type chunkReader struct {
	chunks [][]byte
	end    error
}

func (c *chunkReader) Read(b []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, c.end
	}
	n := copy(b, c.chunks[0])
	if c.chunks[0] = c.chunks[0][n:]; len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// TestCopyHashedKeepsEveryByte: copyHashed batches reads into one write per
// full buffer, and whatever it holds when the body fails still reaches the
// file (a resume asks only for the rest); a body cut short is an error,
// never a clean end.
func TestCopyHashedKeepsEveryByte(t *testing.T) {
	boom := errors.New("connection reset")
	tests := []struct {
		name    string
		chunks  []int // sizes of the reads the body returns
		end     error
		buf     int
		writes  int // file writes expected
		wantErr error
	}{
		{"whole body, small reads batched", []int{3, 5, 7, 1, 9}, io.EOF, 8, 4, nil},
		{"one read fills the buffer exactly", []int{8, 8}, io.EOF, 8, 2, nil},
		{"reset mid-buffer: the held bytes are written", []int{4, 3}, boom, 16, 1, boom},
		{"cut short (Content-Length not reached)", []int{6}, io.ErrUnexpectedEOF, 16, 1, io.ErrUnexpectedEOF},
		{"nothing before the reset", nil, boom, 16, 0, boom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			r := &chunkReader{end: tc.end}
			for i, n := range tc.chunks {
				c := bytes.Repeat([]byte{byte('a' + i)}, n)
				body = append(body, c...)
				r.chunks = append(r.chunks, c)
			}
			var out countingWriter
			h := sha256.New()
			n, err := copyHashed(&out, h, r, make([]byte, tc.buf))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if n != int64(len(body)) || !bytes.Equal(out.b, body) {
				t.Errorf("wrote %d bytes %q, want every byte read: %q", n, out.b, body)
			}
			if want := sha256.Sum256(body); !bytes.Equal(h.Sum(nil), want[:]) {
				t.Errorf("hash is not of the bytes written")
			}
			if out.writes != tc.writes {
				t.Errorf("%d writes, want %d", out.writes, tc.writes)
			}
		})
	}
}

type countingWriter struct {
	b      []byte
	writes int
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.writes++
	w.b = append(w.b, b...)
	return len(b), nil
}
