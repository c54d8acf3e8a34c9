package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
)

// newLogger returns a logger writing to w at level ("debug", "info", "warn",
// "error" or "off") in format ("text" or "json").
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lvl = slog.LevelDebug
	case "info", "":
		lvl = slog.LevelInfo
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	case "off", "none":
		return slog.New(slog.DiscardHandler), nil
	default:
		return nil, usageErrorf("--log-level %q: want debug, info, warn, error or off", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErrorf("--log-format %q: want text or json", format)
}

// logFlags are the logging flags every long-running command takes.
type logFlags struct {
	level, format string
}

func (l *logFlags) register(f *flagSet, defLevel string) {
	f.StringVar(&l.level, "log-level", defLevel, "log level: debug, info, warn, error or off")
	f.StringVar(&l.format, "log-format", "text", "log format: text or json (one JSON object per line)")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	return newLogger(w, l.level, l.format)
}

// mutableHandler drops every record once muted: the demo silences the expected
// complaints of components it is tearing down.
type mutableHandler struct {
	slog.Handler
	muted *atomic.Bool
}

func (h mutableHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return !h.muted.Load() && h.Handler.Enabled(ctx, l)
}

func (h mutableHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return mutableHandler{h.Handler.WithAttrs(as), h.muted}
}

func (h mutableHandler) WithGroup(name string) slog.Handler {
	return mutableHandler{h.Handler.WithGroup(name), h.muted}
}
