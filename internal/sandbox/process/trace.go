package process

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Stage timing of Create, for finding where a cold start's time goes. The
// host side always records its stages (a few time.Now calls); the agent's
// set-up reports its own only when the backend's trace flag is set (tests
// and benchmarks), as "kindling-trace <stage> <unix nanoseconds>" lines on
// its stderr, which end up in AgentOutput.

// stageMark is the moment a stage ended.
type stageMark struct {
	name string
	at   time.Time
}

const tracePrefix = "kindling-trace "

// initTracer writes the agent's stage marks; the zero value is off.
type initTracer struct {
	w io.Writer
}

func (t initTracer) mark(stage string) {
	if t.w != nil {
		fmt.Fprintf(t.w, "%s%s %d\n", tracePrefix, stage, time.Now().UnixNano())
	}
}

// parseTrace extracts the agent's stage marks from its output.
func parseTrace(out []byte) []stageMark {
	var marks []stageMark
	for line := range strings.SplitSeq(string(out), "\n") {
		rest, ok := strings.CutPrefix(line, tracePrefix)
		if !ok {
			continue
		}
		name, ns, ok := strings.Cut(rest, " ")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil {
			continue
		}
		marks = append(marks, stageMark{name: name, at: time.Unix(0, n)})
	}
	return marks
}
