package server

import (
	"time"

	"kindling/internal/config"
	"kindling/internal/logs"
)

// logSink feeds the worker's function logs to the log store, in the
// function's account and log group.
type logSink struct{ store *logs.Store }

func (l logSink) Append(fn *config.Function, stream string, at time.Time, data []byte) {
	l.store.Append(fn.Account, logs.GroupName(fn.Name), stream, at, data)
}

func (l logSink) Platform(fn *config.Function, stream string, at time.Time, line string) {
	l.store.Platform(fn.Account, logs.GroupName(fn.Name), stream, at, line)
}
