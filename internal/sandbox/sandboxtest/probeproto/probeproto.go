// Package probeproto is the line protocol between the conformance suite
// (package sandboxtest) and its probe agent (sandboxtest/probeagent): after
// the agentproto handshake, the suite writes one Command as a JSON line and
// the probe answers with one Reply as a JSON line (except for "exit", and
// for "alloc" when the OOM killer strikes first).
package probeproto

// Command is one probe. Op selects it; the other fields are its arguments.
type Command struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Bytes int64  `json:"bytes,omitempty"`
	MB    int    `json:"mb,omitempty"`
	Addr  string `json:"addr,omitempty"`
	Code  int    `json:"code,omitempty"`
}

// Reply answers one Command. OK is false when the attempt failed; Errno
// then names the error number ("EPERM") when there is one.
type Reply struct {
	OK     bool              `json:"ok"`
	Errno  string            `json:"errno,omitempty"`
	Err    string            `json:"err,omitempty"`
	N      int64             `json:"n,omitempty"`
	Data   string            `json:"data,omitempty"`
	List   []string          `json:"list,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
}
