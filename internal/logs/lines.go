package logs

import "bytes"

// MaxMessageBytes bounds one event's message. A longer line is cut into
// several events, as CloudWatch Logs' event size limit (256 KiB including
// 26 bytes of overhead per event) forces agents to do.
const MaxMessageBytes = 256<<10 - EventOverhead

// EventOverhead is what CloudWatch Logs counts per event on top of its
// message, for batch and stored sizes.
const EventOverhead = 26

// splitLines splits a function's output into events the way Lambda does for
// a runtime's stdout and stderr: one event per line, the line's '\n' kept at
// the end of its message. carry is the unfinished last line of the previous
// chunk of the same stream; rest is the unfinished last line of this one,
// to be carried into the next (it is never longer than MaxMessageBytes:
// longer runs are emitted in pieces). Neither carry nor data is retained.
func splitLines(carry, data []byte) (lines []string, rest []byte) {
	buf := data
	if len(carry) > 0 {
		buf = make([]byte, 0, len(carry)+len(data))
		buf = append(append(buf, carry...), data...)
	}
	for len(buf) > 0 {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		line := buf[:i+1]
		buf = buf[i+1:]
		for len(line) > MaxMessageBytes {
			lines = append(lines, string(line[:MaxMessageBytes]))
			line = line[MaxMessageBytes:]
		}
		lines = append(lines, string(line))
	}
	for len(buf) > MaxMessageBytes {
		lines = append(lines, string(buf[:MaxMessageBytes]))
		buf = buf[MaxMessageBytes:]
	}
	if len(buf) > 0 {
		rest = bytes.Clone(buf)
	}
	return lines, rest
}

// clampMessage cuts a platform line to MaxMessageBytes.
func clampMessage(s string) string {
	if len(s) > MaxMessageBytes {
		return s[:MaxMessageBytes]
	}
	return s
}
