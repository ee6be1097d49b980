package registry

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/distribution/distribution/v3/registry/api/errcode"
)

// TestDistributionLogLevels: distribution's "response completed with
// error" for a not-found answer (a client's existence check) is debug, not
// an error; other errors stay errors.
func TestDistributionLogLevels(t *testing.T) {
	cases := []struct {
		code      errcode.ErrorCode
		wantError bool
	}{
		{errcode.ErrorCodeUnknown, true},
		{errcode.ErrorCodeUnauthorized, true},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		entry := newLogrusEntry(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
		entry.WithField("err.code", c.code).Error("response completed with error")
		if got := strings.Contains(buf.String(), "level=ERROR"); got != c.wantError {
			t.Errorf("%s: logged %q; want an error line: %v", c.code, buf.String(), c.wantError)
		}
	}
	for _, code := range []errcode.ErrorCode{errcode.ErrorCodeBlobUnknown, errcode.ErrorCodeManifestUnknown, errcode.ErrorCodeNameUnknown, errcode.ErrorCodeBlobUploadUnknown} {
		var buf bytes.Buffer
		entry := newLogrusEntry(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
		entry.WithField("err.code", code).Error("response completed with error")
		if buf.Len() != 0 {
			t.Errorf("%s: logged %q at warn level; want it at debug", code, buf.String())
		}
	}
}
