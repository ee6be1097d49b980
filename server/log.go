package server

import (
	"io"
	"log/slog"
)

// NewLogger builds the process logger from the log section. Text is the
// journald-friendly default (no timestamps twice: journald adds its own only
// in its metadata, so slog's stay useful when run by hand).
func NewLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
