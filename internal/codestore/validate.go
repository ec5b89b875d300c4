package codestore

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"

	"kindling/internal/errdefs"
)

// limits are the bounds check enforces. Tests lower them; everything else
// uses defaultLimits.
type limits struct {
	zip      int64 // bytes of zip
	unzipped int64 // decompressed bytes, all entries together
	entries  int   // central-directory records, and objects created
}

var defaultLimits = limits{zip: MaxZipSize, unzipped: MaxUnzippedSize, entries: MaxEntries}

// plan is a validated package: what to create, read from the zip it holds.
type plan struct {
	tree     *tree
	unzipped int64 // decompressed bytes counted while validating
	lim      limits
}

// flagEncrypted is bit 0 of the general-purpose flags: traditional PKWARE or
// strong encryption, which archive/zip cannot read.
const flagEncrypted = 0x1

// Validate runs every check Put runs, decompressing each entry to count its
// bytes and verify its CRC, without writing anything. It returns the
// unzipped size. Errors are *Error values of class errdefs.ErrTooLarge or
// errdefs.ErrInvalid.
func Validate(zip []byte) (unzippedSize int64, err error) {
	p, err := check(zip, defaultLimits)
	if err != nil {
		return 0, err
	}
	return p.unzipped, nil
}

// check validates b and returns the plan to extract it. In order: the size
// of b; the number of central-directory records (before archive/zip parses
// them); the archive's structure; the sizes the headers declare (only ever
// used to reject early, never to accept); each entry's name, type and
// method; then every file and link is decompressed, its bytes counted
// against the limit as they come out; last, symlink targets are resolved.
func check(b []byte, lim limits) (*plan, error) {
	if int64(len(b)) > lim.zip {
		return nil, TooLargeError("CreateFunction")
	}
	if centralRecords(b, lim.entries) > lim.entries {
		return nil, errTooManyEntries()
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // names are checked below
		return nil, errUnzip(err)
	}
	switch {
	case len(zr.File) == 0:
		return nil, &Error{Class: errdefs.ErrInvalid, Msg: msgEmpty}
	case len(zr.File) > lim.entries:
		return nil, errTooManyEntries()
	}
	var declared uint64
	for _, f := range zr.File {
		if f.UncompressedSize64 > uint64(lim.unzipped)-declared {
			return nil, errUnzipped()
		}
		declared += f.UncompressedSize64
	}

	t := newTree(lim.entries)
	for _, f := range zr.File {
		if err := addEntry(t, f); err != nil {
			return nil, err
		}
	}
	p := &plan{tree: t, lim: lim}
	for _, n := range t.order {
		switch n.kind {
		case kindFile:
			k, err := copyEntry(io.Discard, n.file, lim.unzipped-p.unzipped)
			if err != nil {
				return nil, err
			}
			p.unzipped += k
		case kindSymlink:
			if err := readTarget(n, lim.unzipped-p.unzipped); err != nil {
				return nil, err
			}
			p.unzipped += int64(len(n.target))
		}
	}
	for _, n := range t.order {
		if n.kind != kindSymlink {
			continue
		}
		if targetEscapes(n.path, n.target) {
			return nil, errEntry(n.file.Name, "the symbolic link's target leads outside the archive root")
		}
		if _, _, why := t.follow(n, 0); why != "" {
			return nil, errEntry(n.file.Name, why)
		}
	}
	return p, nil
}

// addEntry classifies f and adds it to t.
func addEntry(t *tree, f *zip.File) error {
	name, dirSuffix, why := cleanName(f.Name)
	if why != "" {
		return errEntry(f.Name, why)
	}
	if f.Flags&flagEncrypted != 0 || (f.Method != zip.Store && f.Method != zip.Deflate) {
		return errUnzip(zip.ErrAlgorithm)
	}
	// Mode decodes the unix mode when the creator was unix or macOS, and
	// the MS-DOS attributes otherwise (which carry no execute bit).
	m := f.Mode()
	var k kind
	switch {
	case m&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
		return errEntry(f.Name, "devices, FIFOs and sockets are not allowed")
	case m&fs.ModeSymlink != 0 && (dirSuffix || m.IsDir()):
		return errEntry(f.Name, "the entry is both a directory and a symbolic link")
	case m&fs.ModeSymlink != 0:
		k = kindSymlink
	case dirSuffix || m.IsDir():
		k = kindDir
	default:
		k = kindFile
	}
	return t.add(f.Name, name, k, f, m.Perm()&0o111 != 0)
}

// errOverLimit marks a copy cut short by a limit.
var errOverLimit = errors.New("over limit")

// copyEntry decompresses f into w, counting the bytes that come out and
// failing with the unzipped-size error once more than room have (at most
// room reach w). archive/zip itself fails an entry whose data runs past its
// declared size or whose CRC does not match; the count here does not rely on
// that. Decompression failures are unzip errors; failures of w are returned
// unclassified.
func copyEntry(w io.Writer, f *zip.File, room int64) (int64, error) {
	n, over, err := drain(w, f, room)
	if over {
		return n, errUnzipped()
	}
	return n, err
}

// drain is copyEntry reporting the limit as over rather than as an error.
func drain(w io.Writer, f *zip.File, room int64) (n int64, over bool, err error) {
	rc, err := f.Open()
	if err != nil {
		return 0, false, errUnzip(err)
	}
	defer rc.Close()
	src := &sourceReader{r: rc, room: room}
	n, err = io.Copy(w, src)
	switch {
	case errors.Is(src.err, errOverLimit):
		return n, true, nil
	case src.err != nil:
		return n, false, errUnzip(src.err)
	}
	return n, false, err
}

// sourceReader reads at most room bytes from r and then fails with
// errOverLimit if more remain. It remembers its own error so that a copy
// can tell reading from writing failures.
type sourceReader struct {
	r    io.Reader
	room int64
	err  error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if int64(len(p)) > s.room+1 {
		p = p[:s.room+1]
	}
	n, err := s.r.Read(p)
	if int64(n) > s.room {
		n, err = int(s.room), errOverLimit
	}
	s.room -= int64(n)
	if err != nil {
		s.err = err
		if err == io.EOF {
			s.err = nil
		}
	}
	return n, err
}

// readTarget reads the target of symlink n from its entry and checks it;
// room is what remains of the unzipped-size limit.
func readTarget(n *node, room int64) error {
	var b bytes.Buffer
	_, over, err := drain(&b, n.file, min(room, MaxSymlinkTarget))
	switch {
	case over && room > MaxSymlinkTarget:
		return errEntry(n.file.Name, "the symbolic link's target is longer than 4095 bytes")
	case over:
		return errUnzipped()
	case err != nil:
		return err
	}
	target := b.String()
	switch {
	case target == "":
		return errEntry(n.file.Name, "the symbolic link's target is empty")
	case strings.IndexByte(target, 0) >= 0:
		return errEntry(n.file.Name, "the symbolic link's target contains a NUL byte")
	case target[0] == '/':
		return errEntry(n.file.Name, "the symbolic link's target is an absolute path")
	}
	n.target = target
	return nil
}
