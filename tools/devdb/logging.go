package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
)

// newLogger returns the logger given to FerretDB and used by the front.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(quietResponses{slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})})
}

// quietResponses demotes FerretDB's dumps of failed command responses from warn to debug.
//
// FerretDB v1 logs every response with ok != 1 (duplicate keys, unsupported endSessions, …)
// as two warn records holding the whole message; those are ordinary application-level
// errors that the client receives anyway.
type quietResponses struct {
	slog.Handler
}

func (h quietResponses) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && isResponseDump(r.Message) {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}

	return h.Handler.Handle(ctx, r)
}

func (h quietResponses) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietResponses{h.Handler.WithAttrs(attrs)}
}

func (h quietResponses) WithGroup(name string) slog.Handler {
	return quietResponses{h.Handler.WithGroup(name)}
}

func isResponseDump(msg string) bool {
	return strings.HasPrefix(msg, "Response header: ") || strings.HasPrefix(msg, "Response message:")
}
