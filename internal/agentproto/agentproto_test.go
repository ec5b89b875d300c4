package agentproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHandshake(&buf); err != nil {
		t.Fatal(err)
	}
	enc := NewEncoder(&buf)
	if err := enc.Write(TypeInvoke, InvokeMeta{RequestID: "r1", DeadlineMs: 42}, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := enc.Write(TypeLog, nil, []byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if err := ReadHandshake(&buf); err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder(&buf)
	f, err := dec.Read()
	if err != nil {
		t.Fatal(err)
	}
	var m InvokeMeta
	if err := f.DecodeMeta(&m); err != nil || f.Type != TypeInvoke || m.RequestID != "r1" || m.DeadlineMs != 42 || string(f.Body) != `{"a":1}` {
		t.Fatalf("got %v %+v %q %v", f.Type, m, f.Body, err)
	}
	f, err = dec.Read()
	if err != nil || f.Type != TypeLog || f.Meta != nil || string(f.Body) != "hello\n" {
		t.Fatalf("got %v %q %q %v", f.Type, f.Meta, f.Body, err)
	}
	if _, err := dec.Read(); err != io.EOF {
		t.Fatalf("after last frame: %v, want EOF", err)
	}
}

func header(t Type, ml, bl uint32) []byte {
	h := make([]byte, HeaderSize)
	h[0] = byte(t)
	binary.BigEndian.PutUint32(h[4:8], ml)
	binary.BigEndian.PutUint32(h[8:12], bl)
	return h
}

func TestDecoderRejects(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"type zero", header(TypeInvalid, 0, 0), ErrBadType},
		{"type past end", header(typeEnd, 0, 0), ErrBadType},
		{"meta too large", header(TypeLog, MaxMeta+1, 0), ErrTooLarge},
		{"body too large", header(TypeLog, 0, MaxBody+1), ErrTooLarge},
		{"reserved bits", append([]byte{byte(TypeLog), 1}, make([]byte, 10)...), ErrBadReserve},
		{"truncated body", append(header(TypeLog, 0, 10), 'x'), io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		_, err := NewDecoder(bytes.NewReader(c.in)).Read()
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestHandshakeRejects(t *testing.T) {
	if err := ReadHandshake(bytes.NewReader([]byte("HTTP/1.1"))); !errors.Is(err, ErrBadMagic) {
		t.Errorf("bad magic: %v", err)
	}
	if err := ReadHandshake(bytes.NewReader([]byte{'K', 'A', 'G', 'T', 0, 9, 0, 0})); !errors.Is(err, ErrVersion) {
		t.Errorf("bad version: %v", err)
	}
	if err := ReadHandshake(bytes.NewReader([]byte{'K', 'A'})); err == nil {
		t.Error("short handshake accepted")
	}
}

func TestEncoderRefusesOversize(t *testing.T) {
	enc := NewEncoder(io.Discard)
	if err := enc.Write(TypeResponse, nil, make([]byte, MaxBody+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize body: %v", err)
	}
}

// FuzzDecoder feeds arbitrary bytes, as a hostile agent could send them, to
// the decoder: it must never panic nor return a frame over its bounds.
func FuzzDecoder(f *testing.F) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	enc.Write(TypeResponse, ResultMeta{RequestID: "x"}, []byte("ok"))
	enc.Write(TypeExit, ExitMeta{Code: -1, Signal: "killed"}, nil)
	f.Add(buf.Bytes())
	f.Add(header(TypeLog, 3, 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		dec := NewDecoder(bytes.NewReader(in))
		for {
			fr, err := dec.Read()
			if err != nil {
				return
			}
			if len(fr.Meta) > MaxMeta || len(fr.Body) > MaxBody {
				t.Fatalf("frame over bounds: %d %d", len(fr.Meta), len(fr.Body))
			}
			var m InvokeMeta
			_ = fr.DecodeMeta(&m) // errors are fine; panics are not
		}
	})
}
