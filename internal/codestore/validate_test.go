package codestore

import (
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"kindling/internal/errdefs"
)

// validCases are zips every check accepts, with their unzipped size.
func validCases(t testing.TB) []struct {
	name     string
	zip      []byte
	unzipped int64
} {
	return []struct {
		name     string
		zip      []byte
		unzipped int64
	}{
		{"tree", buildZip(t,
			exe("bootstrap", "#!/bin/sh\necho hi\n"),
			dir("lib/"),
			file("lib/a.txt", "aaa"),
			file("lib/nested/deep/b.txt", "bb"), // parents implied
		), 18 + 3 + 2},
		{"dot prefix and double slash", buildZip(t, file("./a//b", "x"), dir("./")), 1},
		{"windows tool, no unix mode", buildZip(t, ent{name: "handler.py", body: "pass"}, ent{name: "pkg/"}), 4},
		{"explicit dir after implied", buildZip(t, file("d/x", "1"), dir("d/")), 1},
		{"symlink inside", buildZip(t,
			file("lib/x", "1"),
			link("x", "lib/x"),
			link("lib/self", "../lib"),
			link("lib/up", ".."),
			link("top", "lib/up/lib/x"),
		), 1 + 5 + 6 + 2 + 12},
		{"dangling symlink", buildZip(t, link("x", "missing/file")), 12},
		{"symlink through missing dir", buildZip(t, link("x", "missing/../y")), 12},
		{"empty file", buildZip(t, file("empty", "")), 0},
		{"only a directory", buildZip(t, dir("d/")), 0},
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, tc := range validCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Validate(tc.zip)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if n != tc.unzipped {
				t.Errorf("unzipped size %d, want %d", n, tc.unzipped)
			}
		})
	}
}

// invalidCases are zips Validate rejects with errdefs.ErrInvalid, and a
// substring of the message.
func invalidCases(t testing.TB) []struct {
	name string
	zip  []byte
	msg  string
} {
	chain := []ent{file("target", "x"), link("l0", "target")}
	for i := 1; i <= maxHops+1; i++ {
		chain = append(chain, link("l"+strconv.Itoa(i), "l"+strconv.Itoa(i-1)))
	}
	return []struct {
		name string
		zip  []byte
		msg  string
	}{
		{"not a zip", []byte("hello, world"), msgUnzip},
		{"nothing", nil, msgUnzip},
		{"truncated", buildZip(t, file("a", "aaaa"))[:40], msgUnzip},
		{"empty zip", buildZip(t), msgEmpty},
		{"header lies low", lieAboutSize(t, zeros(t, "z", 1<<20), 10), msgUnzip},
		{"header lies high", lieAboutSize(t, buildZip(t, file("a", "aaaa")), 1<<31), msgUnzipped},
		{"unsupported method", buildZip(t, ent{name: "a", body: "xx", raw: true, method: 12}), msgUnzip},
		{"encrypted", buildZip(t, ent{name: "a", body: "xx", raw: true, method: 0, flags: 1}), msgUnzip},
		{"parent traversal", buildZip(t, file("../x", "1")), `".." component`},
		{"absolute", buildZip(t, file("/abs", "1")), "absolute"},
		{"escape after clean", buildZip(t, file("a/../../x", "1")), `".." component`},
		{"dotdot inside", buildZip(t, file("a/../b", "1")), `".." component`},
		{"backslash", buildZip(t, file(`..\x`, "1")), "backslash"},
		{"NUL", buildZip(t, file("a\x00b", "1")), "NUL"},
		{"empty name", buildZip(t, file("", "1")), "empty"},
		{"root as file", buildZip(t, file(".", "1")), "root"},
		{"long component", buildZip(t, file(strings.Repeat("n", 256), "1")), "255"},
		{"duplicate", buildZip(t, file("a", "1"), file("a", "2")), "more than once"},
		{"duplicate after clean", buildZip(t, file("a/b", "1"), file("./a//b", "2")), "more than once"},
		{"duplicate dir", buildZip(t, dir("d/"), dir("d/")), "more than once"},
		{"file then child", buildZip(t, file("a", "1"), file("a/b", "2")), "is a file"},
		{"child then file", buildZip(t, file("a/b", "2"), file("a", "1")), "both a directory and"},
		{"symlink out", buildZip(t, link("l", "../etc")), "outside"},
		{"symlink absolute", buildZip(t, link("l", "/etc/passwd")), "absolute"},
		{"symlink out after clean", buildZip(t, link("d/l", "../../x")), "outside"},
		{"symlink out through link", buildZip(t, link("d/l", ".."), link("e", "d/l/..")), "outside"},
		{"symlink out through nested links", buildZip(t, link("a/b/up", "../.."), link("a/c", "b/up/a/b/up/..")), "outside"},
		{"file through symlink", buildZip(t, dir("d/"), link("l", "d"), file("l/x", "1")), "through the symbolic link"},
		{"symlink over implied dir", buildZip(t, file("l/x", "1"), link("l", "d")), "both a directory and"},
		{"symlink loop", buildZip(t, link("a", "b"), link("b", "a")), "loop"},
		{"symlink self loop", buildZip(t, link("a", "a/x")), "loop"},
		{"symlink chain too long", buildZip(t, chain...), "too many levels"},
		{"symlink empty target", buildZip(t, link("l", "")), "empty"},
		{"symlink NUL target", buildZip(t, link("l", "a\x00")), "NUL"},
		{"symlink long target", buildZip(t, link("l", strings.Repeat("a/", 2048))), "longer than 4095"},
		{"symlink dir", buildZip(t, ent{name: "l/", body: "", mode: fs.ModeSymlink | 0o777}), "both a directory and a symbolic link"},
		{"fifo", buildZip(t, ent{name: "p", mode: fs.ModeNamedPipe | 0o644}), "FIFOs"},
		{"socket", buildZip(t, ent{name: "s", mode: fs.ModeSocket | 0o644}), "sockets"},
		{"block device", buildZip(t, ent{name: "b", mode: fs.ModeDevice | 0o644}), "devices"},
		{"char device", buildZip(t, ent{name: "c", mode: fs.ModeDevice | fs.ModeCharDevice | 0o644}), "devices"},
	}
}

func TestValidateRejects(t *testing.T) {
	for _, tc := range invalidCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate(tc.zip)
			wantInvalid(t, err, tc.msg)
		})
	}
}

// wantInvalid checks that err is an *Error of class ErrInvalid whose message
// is msg, if msg is one of Lambda's, or contains msg otherwise.
func wantInvalid(t *testing.T, err error, msg string) {
	t.Helper()
	var e *Error
	switch {
	case err == nil:
		t.Fatal("accepted")
	case !errors.Is(err, errdefs.ErrInvalid) || !errors.As(err, &e):
		t.Fatalf("error %v (%T) is not an invalid *Error", err, err)
	}
	switch msg {
	case msgUnzip, msgUnzipped, msgEmpty:
		if err.Error() != msg {
			t.Fatalf("message %q, want %q", err.Error(), msg)
		}
	default:
		if !strings.Contains(err.Error(), msg) {
			t.Fatalf("message %q does not mention %q", err.Error(), msg)
		}
	}
}

func TestValidateTooLarge(t *testing.T) {
	_, err := Validate(make([]byte, MaxZipSize+1))
	if !errors.Is(err, errdefs.ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
	if want := "Request must be smaller than 69905067 bytes for the CreateFunction operation"; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
	if got, want := TooLargeError("UpdateFunctionCode").Error(),
		"Request must be smaller than 69905067 bytes for the UpdateFunctionCode operation"; got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
}

// bomb returns a zip of one entry of 300 MB of zeros, built once.
func bomb(t testing.TB) []byte {
	bombCache.Lock()
	defer bombCache.Unlock()
	if bombCache.zip == nil {
		bombCache.zip = zeros(t, "bomb", 300<<20)
	}
	return bombCache.zip
}

var bombCache struct {
	sync.Mutex
	zip []byte
}

func TestZipBomb(t *testing.T) {
	z := bomb(t)
	if len(z) > 1<<20 {
		t.Fatalf("bomb is %d bytes; the test wants a high ratio", len(z))
	}
	_, err := Validate(z)
	wantInvalid(t, err, msgUnzipped)

	// Several entries, each under the limit, together over it.
	lim := defaultLimits
	lim.unzipped = 1000
	_, err = check(buildZip(t, file("a", strings.Repeat("x", 600)), file("b", strings.Repeat("y", 600))), lim)
	wantInvalid(t, err, msgUnzipped)
	lim.unzipped = 1200
	if _, err := check(buildZip(t, file("a", strings.Repeat("x", 600)), file("b", strings.Repeat("y", 600))), lim); err != nil {
		t.Fatalf("exactly at the limit: %v", err)
	}
}

// endless is a reader that never ends, like a decompressor fed a bomb whose
// headers are not believed.
type endless struct{}

func (endless) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestSourceReaderStopsAtLimit(t *testing.T) {
	var w countingWriter
	src := &sourceReader{r: endless{}, room: 1000}
	n, err := io.Copy(&w, src)
	if !errors.Is(err, errOverLimit) || n != 1000 || w.n != 1000 {
		t.Fatalf("copied %d (wrote %d), err %v; want 1000 then errOverLimit", n, w.n, err)
	}
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

func TestTooManyEntries(t *testing.T) {
	lim := defaultLimits
	lim.entries = 10
	var ten []ent
	for i := range 10 {
		ten = append(ten, file("f"+strconv.Itoa(i), ""))
	}
	if _, err := check(buildZip(t, ten...), lim); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err := check(buildZip(t, append(ten, file("one-more", ""))...), lim)
	wantInvalid(t, err, "at most 50000")
	// Implied parent directories count too.
	_, err = check(buildZip(t, file(strings.Repeat("d/", 10)+"f", "")), lim)
	wantInvalid(t, err, "at most 50000")

	// The real limit.
	many := make([]ent, MaxEntries+1)
	for i := range many {
		many[i] = ent{name: strconv.Itoa(i), raw: true}
	}
	_, err = Validate(buildZip(t, many...))
	wantInvalid(t, err, "at most 50000")
}

func TestManyRecordsRejectedBeforeParsing(t *testing.T) {
	z := manyRecords(MaxZipSize / (lenCentral + 1) * 9 / 10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Validate(z)
	runtime.ReadMemStats(&after)
	wantInvalid(t, err, "at most 50000")
	// archive/zip would allocate ~250 MB for these records.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("rejecting allocated %d bytes", alloc)
	}
}

func TestCentralRecords(t *testing.T) {
	three := buildZip(t, file("a", "1"), file("b", "2"), dir("c/"))
	withPrefix := append([]byte(strings.Repeat("#!/bin/sh self-extractor\n", 40)), three...)
	var zip64 []ent
	for i := range 0x10000 {
		zip64 = append(zip64, ent{name: strconv.Itoa(i), raw: true})
	}
	for _, tc := range []struct {
		name  string
		zip   []byte
		limit int
		want  int
	}{
		{"plain", three, 100, 3},
		{"prefixed", withPrefix, 100, 3},
		{"crafted", manyRecords(500), 1000, 500},
		{"stops after limit", manyRecords(500), 10, 11},
		{"zip64", buildZip(t, zip64...), 1 << 20, 0x10000},
		{"garbage", []byte("PK\x05\x06 nothing"), 100, 0},
		{"zip64 locator past the end", shortZip64(), 100, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := centralRecords(tc.zip, tc.limit); got != tc.want {
				t.Fatalf("centralRecords = %d, want %d", got, tc.want)
			}
		})
	}
}

// shortZip64 is 50 bytes: a zip64 locator pointing 40 bytes in, then an end
// record with saturated fields whose size field, at byte 40, holds the zip64
// end record's signature. The 56-byte zip64 end record cannot fit there.
func shortZip64() []byte {
	b := make([]byte, 8+lenEnd64Loc+lenEnd)
	le := binary.LittleEndian
	loc := b[8:]
	le.PutUint32(loc, sigEnd64Loc)
	le.PutUint64(loc[8:], 40)
	le.PutUint32(loc[16:], 1)
	end := b[8+lenEnd64Loc:]
	le.PutUint32(end, sigEnd)
	le.PutUint16(end[10:], 0xffff)
	le.PutUint32(end[12:], sigEnd64) // at offset 40, where the locator points
	le.PutUint32(end[16:], 0xffffffff)
	return b
}
