package registry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"

	"github.com/sirupsen/logrus"
)

// distribution logs through logrus entries it finds in the context under
// its internal dcontext package's loggerKey, and falls back to logrus's
// process-wide standard logger when there is none. airgapd leaves that
// global alone: logrusContext answers distribution's key with a logrus
// logger of this instance's own, whose entries go to slog. (The key's type
// is internal to distribution, so it is recognised by its name.)
type logrusContext struct {
	context.Context
	entry *logrus.Entry
}

const dcontextPkg = "github.com/distribution/distribution/v3/internal/dcontext"

func (c logrusContext) Value(key any) any {
	if t := reflect.TypeOf(key); t != nil && t.Name() == "loggerKey" && t.PkgPath() == dcontextPkg {
		return c.entry
	}
	return c.Context.Value(key)
}

// withLogrus returns ctx carrying a logrus logger that writes to log.
// distribution's routine chatter (a line per request at info) goes to
// debug; its warnings and errors keep their level.
func withLogrus(ctx context.Context, log *slog.Logger) context.Context {
	return logrusContext{Context: ctx, entry: newLogrusEntry(log)}
}

// logRequests hands each request's context the same logger, so the
// request-scoped loggers distribution derives from it write to slog too.
func logRequests(entry *logrus.Entry, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		next.ServeHTTP(w, req.WithContext(logrusContext{Context: req.Context(), entry: entry}))
	})
}

func newLogrusEntry(log *slog.Logger) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.InfoLevel)
	if log.Enabled(context.Background(), slog.LevelDebug) {
		l.SetLevel(logrus.DebugLevel)
	}
	l.AddHook(slogHook{log: log.With("component", "distribution")})
	return logrus.NewEntry(l)
}

type slogHook struct{ log *slog.Logger }

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	switch {
	case routineMiss(e.Data["err.code"]):
		// A client asking whether it must upload a blob (HEAD → 404), or
		// for a tag not pushed yet: distribution logs those as errors,
		// and every push and import would fill the log with them.
	case e.Level <= logrus.ErrorLevel:
		level = slog.LevelError
	case e.Level == logrus.WarnLevel:
		level = slog.LevelWarn
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	if !h.log.Enabled(ctx, level) {
		return nil
	}
	attrs := make([]any, 0, 2*len(e.Data))
	for k, v := range e.Data {
		switch k {
		case "go.version", "instance.id", "http.request.useragent", "http.request.id", "http.response.contenttype":
			continue // noise in airgapd's log
		}
		attrs = append(attrs, k, v)
	}
	h.log.Log(ctx, level, e.Message, attrs...)
	return nil
}

// routineMiss reports whether an error code distribution logs is a
// not-found answer, the ordinary outcome of a client's existence check.
func routineMiss(code any) bool {
	name := fmt.Sprint(code)
	if s, ok := code.(fmt.Stringer); ok {
		name = s.String() // errcode.ErrorCode: BLOB_UNKNOWN (its Error() is the message)
	}
	switch name {
	case "BLOB_UNKNOWN", "MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UPLOAD_UNKNOWN":
		return true
	}
	return false
}
