package gvisor

import (
	"io"
	"sync"
)

// agentOutputTail is how much of the agent's own output each sandbox keeps.
const agentOutputTail = 8 << 10

// tailWriter keeps the last agentOutputTail bytes written to it and copies
// everything to an optional writer. Safe for concurrent use.
type tailWriter struct {
	mu   sync.Mutex // guards buf
	buf  []byte
	copy io.Writer // may be nil; its errors are ignored (diagnostics only)
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - agentOutputTail; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	w.mu.Unlock()
	if w.copy != nil {
		w.copy.Write(p) //nolint:errcheck // diagnostics: a failing log sink must not stop the agent
	}
	return len(p), nil
}

// Bytes returns a copy of the kept tail.
func (w *tailWriter) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.buf...)
}
