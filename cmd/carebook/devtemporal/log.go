package devtemporal

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// logPrefix marks every server line, so they can be told from carebook's
// own in a shared log.
const logPrefix = "temporal: "

// serverLogger hands the server's Warn and Error lines to an slog.Logger and
// drops Debug and Info, which report every shard, queue and service state
// change and would bury carebook's own logs.
//
// Once Stop begins, Warn lines are dropped too. Shutting down, the server's
// own system workers keep polling a frontend that is going away and warn
// about every failed poll and refused dial, for a moment even after Stop
// returns; none of it is news to someone who asked for the stop. Errors
// still pass.
//
// Tags bound with With are kept as they are and turned into attributes only
// when a line is written: the server binds tags for every shard, queue and
// workflow it touches, and nearly all of those loggers never write.
type serverLogger struct {
	slog     *slog.Logger
	stopping *atomic.Bool // shared by every logger derived with With
	tags     []tag.Tag
}

var (
	_ log.Logger     = serverLogger{}
	_ log.WithLogger = serverLogger{}
)

// newServerLogger returns a logger writing to l that goes quiet at Warn
// once stopping is set.
func newServerLogger(l *slog.Logger, stopping *atomic.Bool) serverLogger {
	return serverLogger{slog: l, stopping: stopping}
}

func (serverLogger) Debug(string, ...tag.Tag) {}
func (serverLogger) Info(string, ...tag.Tag)  {}

func (l serverLogger) Warn(msg string, tags ...tag.Tag) {
	if l.stopping.Load() {
		return
	}
	l.write(slog.LevelWarn, msg, tags)
}

func (l serverLogger) Error(msg string, tags ...tag.Tag) {
	l.write(slog.LevelError, msg, tags)
}

// DPanic is a development-only panic in zap; in a running server it is an
// error report.
func (l serverLogger) DPanic(msg string, tags ...tag.Tag) {
	l.write(slog.LevelError, msg, tags)
}

// Panic and Fatal keep their promise not to return: the server's code after
// such a call assumes it never runs. A fatal server error therefore ends
// `carebook dev` with a panic, as it would end a standalone server.
func (l serverLogger) Panic(msg string, tags ...tag.Tag) {
	l.write(slog.LevelError, msg, tags)
	panic(logPrefix + msg)
}

func (l serverLogger) Fatal(msg string, tags ...tag.Tag) {
	l.write(slog.LevelError, msg, tags)
	panic(logPrefix + msg)
}

// With returns a logger that adds tags to every line it writes.
func (l serverLogger) With(tags ...tag.Tag) log.Logger {
	all := make([]tag.Tag, 0, len(l.tags)+len(tags))
	all = append(append(all, l.tags...), tags...)
	return serverLogger{slog: l.slog, stopping: l.stopping, tags: all}
}

func (l serverLogger) write(level slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	if !l.slog.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, len(l.tags)+len(tags))
	for _, t := range l.tags {
		attrs = append(attrs, slog.Any(t.Key(), t.Value()))
	}
	for _, t := range tags {
		attrs = append(attrs, slog.Any(t.Key(), t.Value()))
	}
	l.slog.LogAttrs(ctx, level, logPrefix+msg, attrs...)
}
