// Package agentproto is the wire format between a worker and the agent that
// runs inside each sandbox.
//
// The agent is inside the trust boundary of the function: everything it sends
// is treated as hostile by the worker. Every read is bounded.
//
// Layout. The agent opens the channel with a handshake, then both sides send
// frames until the channel closes:
//
//	handshake (agent -> worker), 8 bytes:
//	+------+------+------+------+---------+---------+
//	| 'K'  | 'A'  | 'G'  | 'T'  | version (u16 BE)  | reserved (u16) |
//	+------+------+------+------+---------+---------+
//
//	frame, 12-byte header then two variable parts:
//	+---------+---------+--------------+---------------+---------------+
//	| type u8 | flags u8| reserved u16 | metaLen u32BE | bodyLen u32BE |
//	+---------+---------+--------------+---------------+---------------+
//	| meta: metaLen bytes of JSON (one of the *Meta types below)       |
//	| body: bodyLen raw bytes (payload, error body or log bytes)       |
//	+------------------------------------------------------------------+
//
// metaLen is at most MaxMeta and bodyLen at most MaxBody; a frame over either
// bound is an error and the channel must be closed.
package agentproto

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Version is the protocol version carried in the handshake.
const Version = 1

// Magic opens the handshake.
var Magic = [4]byte{'K', 'A', 'G', 'T'}

const (
	// HeaderSize is the fixed size of a frame header.
	HeaderSize = 12
	// MaxMeta bounds the JSON metadata of one frame.
	MaxMeta = 256 << 10
	// MaxBody bounds the body of one frame: a 6 MB payload plus slack for
	// error bodies that quote it.
	MaxBody = 7 << 20
)

// Type says what a frame carries.
type Type uint8

// Frame types. W->A are sent by the worker, A->W by the agent.
const (
	TypeInvalid Type = iota
	// TypeStart (W->A, once): start the runtime. Meta: StartMeta.
	TypeStart
	// TypeReady (A->W, once): the runtime asked for its first event, so
	// init is over. Meta: ReadyMeta.
	TypeReady
	// TypeInitError (A->W): the runtime posted /runtime/init/error. Meta:
	// ErrorMeta; body: the error document it posted.
	TypeInitError
	// TypeInvoke (W->A): an event for the runtime. Meta: InvokeMeta; body:
	// the payload.
	TypeInvoke
	// TypeResponse (A->W): the runtime's response. Meta: ResultMeta; body:
	// the response payload.
	TypeResponse
	// TypeError (A->W): the runtime posted an invocation error, or the
	// agent detected one (response too large). Meta: ErrorMeta; body: the
	// error document.
	TypeError
	// TypeLog (A->W): bytes the runtime wrote to stdout or stderr. Body
	// only.
	TypeLog
	// TypeExit (A->W): the runtime process exited. Meta: ExitMeta.
	TypeExit
	// TypeCheckpoint (A->W, once, only when StartMeta.Snapshot): the
	// runtime reached the checkpoint point, the end of init: it called
	// /runtime/restore/next (Hooks true; its before-snapshot hooks have
	// run) or, never having called it, its first /runtime/invocation/next
	// (Hooks false). Meta: CheckpointMeta. Every byte of output before it
	// was sent before it. From then on the agent sends nothing (it holds
	// back output) until the worker sends Restored: the channel is quiet
	// both ways, so the sandbox can be checkpointed. Ready is not sent for
	// this /next.
	TypeCheckpoint
	// TypeRestored (W->A, first frame after a restore): the sandbox was
	// restored from a checkpoint taken after TypeCheckpoint, and this
	// channel is a new one. Meta: RestoredMeta. The agent sends again:
	// held-back output first, then it answers a pending restore/next (200;
	// the runtime runs its after-restore hooks) and sends Ready at the
	// runtime's next /runtime/invocation/next, with InitNanos measured
	// from Restored; or, when the checkpoint was at a /next, it sends
	// Ready at once. A runtime that posts /runtime/restore/error gets
	// InitError sent with the error type it gave (Runtime.AfterRestoreError
	// by default) and the document.
	TypeRestored
	typeEnd
)

func (t Type) String() string {
	switch t {
	case TypeStart:
		return "start"
	case TypeReady:
		return "ready"
	case TypeInitError:
		return "init-error"
	case TypeInvoke:
		return "invoke"
	case TypeResponse:
		return "response"
	case TypeError:
		return "error"
	case TypeLog:
		return "log"
	case TypeExit:
		return "exit"
	case TypeCheckpoint:
		return "checkpoint"
	case TypeRestored:
		return "restored"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// StartMeta tells the agent how to start the runtime.
type StartMeta struct {
	// Path is the executable to start, e.g. /var/task/bootstrap.
	Path string `json:"path"`
	// Args are its arguments, Args[0] included.
	Args []string `json:"args"`
	// Env is the full environment of the runtime, KEY=VALUE.
	Env []string `json:"env"`
	// Dir is the working directory.
	Dir string `json:"dir"`
	// Snapshot says the sandbox will be checkpointed at the end of init
	// (SnapStart): the agent serves /runtime/restore/next and sends
	// Checkpoint instead of Ready (see TypeCheckpoint).
	Snapshot bool `json:"snapshot,omitempty"`
}

// CheckpointMeta reports that the runtime reached the checkpoint point.
type CheckpointMeta struct {
	// InitNanos is the time from the runtime's start to this point.
	InitNanos int64 `json:"initNanos"`
	// Hooks is true when the runtime called /runtime/restore/next (and so
	// runs after-restore hooks when that call returns), false when the
	// checkpoint point is its first /runtime/invocation/next.
	Hooks bool `json:"hooks"`
}

// RestoredMeta tells a restored agent about its new life.
type RestoredMeta struct {
	// Seed is fresh randomness from the worker, different for every
	// restore, for whatever state the agent keeps that must differ
	// between clones of one snapshot.
	Seed []byte `json:"seed,omitempty"`
}

// ReadyMeta reports the end of init.
type ReadyMeta struct {
	// InitNanos is the time from the runtime's start to its first /next.
	InitNanos int64 `json:"initNanos"`
}

// InvokeMeta carries the Runtime API headers of one event.
type InvokeMeta struct {
	RequestID       string `json:"requestId"`
	DeadlineMs      int64  `json:"deadlineMs"`
	FunctionARN     string `json:"functionArn"`
	TraceID         string `json:"traceId,omitempty"`
	ClientContext   string `json:"clientContext,omitempty"`
	CognitoIdentity string `json:"cognitoIdentity,omitempty"`
}

// ResultMeta identifies the invocation a response belongs to.
type ResultMeta struct {
	RequestID string `json:"requestId"`
}

// ErrorMeta describes an init or invocation error.
type ErrorMeta struct {
	RequestID string `json:"requestId,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
}

// ExitMeta describes how the runtime process ended.
type ExitMeta struct {
	// Code is the exit status, or -1 when killed by a signal.
	Code int `json:"code"`
	// Signal names the signal that killed it ("killed"), if any.
	Signal string `json:"signal,omitempty"`
	// Undelivered is the request id of an event the runtime exited
	// without fetching, if any: it never reached the function.
	Undelivered string `json:"undelivered,omitempty"`
	// Taken is the request id of the last event the runtime fetched with
	// /next, if any. An event sent after it never reached the function
	// either: it was still on its way to the agent when the runtime
	// exited.
	Taken string `json:"taken,omitempty"`
}

// Frame is one decoded frame. Meta and Body alias the reader's buffers only
// until the next Read on the same Reader when read with ReadFrame; callers
// that keep them must copy.
type Frame struct {
	Type Type
	Meta []byte
	Body []byte
}

// Errors returned by the decoder.
var (
	ErrBadMagic   = errors.New("agentproto: bad handshake magic")
	ErrVersion    = errors.New("agentproto: unsupported protocol version")
	ErrTooLarge   = errors.New("agentproto: frame exceeds size bound")
	ErrBadType    = errors.New("agentproto: unknown frame type")
	ErrBadReserve = errors.New("agentproto: reserved bits set")
)

// WriteHandshake writes the agent's handshake.
func WriteHandshake(w io.Writer) error {
	var b [8]byte
	copy(b[:4], Magic[:])
	binary.BigEndian.PutUint16(b[4:6], Version)
	_, err := w.Write(b[:])
	return err
}

// ReadHandshake reads and checks the agent's handshake.
func ReadHandshake(r io.Reader) error {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return err
	}
	if [4]byte(b[:4]) != Magic {
		return ErrBadMagic
	}
	if v := binary.BigEndian.Uint16(b[4:6]); v != Version {
		return fmt.Errorf("%w: %d", ErrVersion, v)
	}
	if binary.BigEndian.Uint16(b[6:8]) != 0 {
		return ErrBadReserve
	}
	return nil
}

// Encoder writes frames. It is not safe for concurrent use; callers
// serialise (the worker and the agent each hold a mutex around it).
type Encoder struct {
	w   *bufio.Writer
	hdr [HeaderSize]byte
}

// NewEncoder returns an Encoder writing to w.
func NewEncoder(w io.Writer) *Encoder {
	return &Encoder{w: bufio.NewWriterSize(w, 64<<10)}
}

// Write sends one frame and flushes it. meta is marshalled to JSON when not
// nil.
func (e *Encoder) Write(t Type, meta any, body []byte) error {
	var mb []byte
	if meta != nil {
		var err error
		if mb, err = json.Marshal(meta); err != nil {
			return err
		}
	}
	if len(mb) > MaxMeta || len(body) > MaxBody {
		return ErrTooLarge
	}
	e.hdr[0] = byte(t)
	e.hdr[1] = 0
	e.hdr[2], e.hdr[3] = 0, 0
	binary.BigEndian.PutUint32(e.hdr[4:8], uint32(len(mb)))
	binary.BigEndian.PutUint32(e.hdr[8:12], uint32(len(body)))
	if _, err := e.w.Write(e.hdr[:]); err != nil {
		return err
	}
	if _, err := e.w.Write(mb); err != nil {
		return err
	}
	if _, err := e.w.Write(body); err != nil {
		return err
	}
	return e.w.Flush()
}

// Decoder reads frames. It is not safe for concurrent use: one goroutine
// reads each channel.
type Decoder struct {
	r *bufio.Reader
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 64<<10)}
}

// Read reads the next frame. Meta and Body are freshly allocated and owned by
// the caller.
func (d *Decoder) Read() (Frame, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(d.r, hdr[:]); err != nil {
		return Frame{}, err
	}
	t := Type(hdr[0])
	if t == TypeInvalid || t >= typeEnd {
		return Frame{}, fmt.Errorf("%w: %d", ErrBadType, hdr[0])
	}
	if hdr[1] != 0 || hdr[2] != 0 || hdr[3] != 0 {
		return Frame{}, ErrBadReserve
	}
	ml := binary.BigEndian.Uint32(hdr[4:8])
	bl := binary.BigEndian.Uint32(hdr[8:12])
	if ml > MaxMeta || bl > MaxBody {
		return Frame{}, ErrTooLarge
	}
	f := Frame{Type: t}
	if ml > 0 {
		f.Meta = make([]byte, ml)
		if _, err := io.ReadFull(d.r, f.Meta); err != nil {
			return Frame{}, unexpected(err)
		}
	}
	if bl > 0 {
		f.Body = make([]byte, bl)
		if _, err := io.ReadFull(d.r, f.Body); err != nil {
			return Frame{}, unexpected(err)
		}
	}
	return f, nil
}

// DecodeMeta unmarshals a frame's metadata into v. Unknown fields are
// ignored; missing metadata leaves v zero.
func (f Frame) DecodeMeta(v any) error {
	if len(f.Meta) == 0 {
		return nil
	}
	return json.Unmarshal(f.Meta, v)
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
