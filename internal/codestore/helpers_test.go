package codestore

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"io/fs"
	"strings"
	"testing"
)

// ent is one entry of a zip built by buildZip.
type ent struct {
	name string
	body string
	// mode, when set, is stored as a unix mode (creator unix); otherwise
	// the entry carries MS-DOS attributes only, as Windows tools write.
	mode fs.FileMode
	// raw writes body as the entry's stored data with method and flags as
	// given, bypassing archive/zip's compressors.
	raw    bool
	method uint16
	flags  uint16
}

func file(name, body string) ent { return ent{name: name, body: body, mode: 0o644} }
func exe(name, body string) ent  { return ent{name: name, body: body, mode: 0o755} }
func dir(name string) ent        { return ent{name: name, mode: fs.ModeDir | 0o755} }
func link(name, target string) ent {
	return ent{name: name, body: target, mode: fs.ModeSymlink | 0o777}
}

// buildZip writes entries into a zip in memory. Nothing about the entries is
// checked: names, duplicates and modes go in as given.
func buildZip(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		isDir := strings.HasSuffix(e.name, "/")
		if isDir || e.mode.IsDir() {
			h.Method = zip.Store
		}
		var err error
		var fw io.Writer
		if e.raw {
			h.Method, h.Flags = e.method, e.flags
			h.CRC32 = crc32.ChecksumIEEE([]byte(e.body))
			h.CompressedSize64 = uint64(len(e.body))
			h.UncompressedSize64 = uint64(len(e.body))
			fw, err = w.CreateRaw(h)
		} else {
			fw, err = w.CreateHeader(h)
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.body != "" && !isDir { // archive/zip refuses data for a directory
			if _, err := io.WriteString(fw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zeros builds a zip of one deflated file of n zero bytes whose headers tell
// the truth.
func zeros(t testing.TB, name string, n int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	fw, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for left := n; left > 0; left -= int64(len(chunk)) {
		if _, err := fw.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lieAboutSize rewrites the uncompressed size in every central-directory
// record of b (all entries must be small enough not to use zip64).
func lieAboutSize(t testing.TB, b []byte, size uint32) []byte {
	t.Helper()
	b = bytes.Clone(b)
	n := 0
	for i := 0; i+lenCentral <= len(b); i++ {
		if binary.LittleEndian.Uint32(b[i:]) == sigCentral {
			binary.LittleEndian.PutUint32(b[i+24:], size)
			n++
		}
	}
	if n == 0 {
		t.Fatal("no central directory record found")
	}
	return b
}

// manyRecords builds a zip whose central directory holds n records, all
// pointing at the same one-byte-named local header: the cheapest way to make
// archive/zip allocate a File per record.
func manyRecords(n int) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	local := make([]byte, 31)
	le.PutUint32(local, 0x04034b50)
	le.PutUint16(local[26:], 1)
	local[30] = 'a'
	b.Write(local)
	start := b.Len()
	rec := make([]byte, lenCentral+1)
	le.PutUint32(rec, sigCentral)
	le.PutUint16(rec[28:], 1)
	rec[lenCentral] = 'a'
	for range n {
		b.Write(rec)
	}
	size := b.Len() - start
	end := make([]byte, lenEnd)
	le.PutUint32(end, sigEnd)
	le.PutUint16(end[8:], uint16(n))
	le.PutUint16(end[10:], uint16(n))
	le.PutUint32(end[12:], uint32(size))
	le.PutUint32(end[16:], uint32(start))
	b.Write(end)
	return b.Bytes()
}
