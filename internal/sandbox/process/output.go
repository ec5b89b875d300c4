package process

import (
	"fmt"
	"io"
	"sync"
)

// agentOutputTail is how much of the agent's own output each sandbox keeps.
const agentOutputTail = 8 << 10

// tailWriter keeps the last agentOutputTail bytes written to it and copies
// everything to an optional writer. Safe for concurrent use.
type tailWriter struct {
	mu   sync.Mutex // guards buf and copy
	buf  []byte
	copy io.Writer // may be nil; set to nil after its first error
}

// Write never fails: the agent's output is diagnostics, and a failing log
// sink must not block or kill the agent. A failing copy is dropped and its
// error noted in the tail.
func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if w.copy != nil {
		if _, err := w.copy.Write(p); err != nil {
			w.copy = nil
			w.buf = append(w.buf, fmt.Sprintf("\n[agent output copy stopped: %v]\n", err)...)
		}
	}
	if over := len(w.buf) - agentOutputTail; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

// Bytes returns a copy of the kept tail.
func (w *tailWriter) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.buf...)
}
