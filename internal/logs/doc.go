// Package logs is Kindling's function log store: what CloudWatch Logs keeps
// for Lambda. Per account, a log group per function (/aws/lambda/NAME) holds
// one log stream per execution environment; a stream holds events
// (timestamp, message, ingestion time), one per line of the runtime's output
// and one per platform line (START, END, REPORT keeps its tabs), each
// message with its trailing newline, as Lambda writes them.
//
// Write path: the worker calls Append (raw output chunks) and Platform (its
// own lines) from its goroutines; both only queue, never block, and drop
// and count what does not fit (Dropped). The writer goroutine splits lines
// (lines.go), journals each batch (journal.go) and indexes it in memory.
// Events are visible to queries once indexed, a few microseconds to
// milliseconds after the output was read: like CloudWatch, eventually.
//
// Bounds: a byte budget over all accounts (message + 26 bytes per event, as
// CloudWatch counts) with oldest-batch-first eviction; per-group retention
// in days (RetentionDays), measured on the configured clock, so a server
// with --time-scale 0.00001 expires a day in under a second. Expired events
// are hidden from queries at once and freed by the sweeper.
//
// Read path: ListGroups, ListStreams, GetEvents and Filter implement the
// semantics of DescribeLogGroups, DescribeLogStreams, GetLogEvents and
// FilterLogEvents (internal/logsapi puts them on the wire), with the
// tokens of token.go and the filter patterns of filter.go. Every query is
// scoped to an account: another account's group does not exist.
package logs
