package codestore

import (
	"fmt"

	"kindling/internal/errdefs"
)

// Lambda's limits on deployment packages uploaded as ZipFile, and the bounds
// this package adds (MaxEntries, MaxNameLen, MaxSymlinkTarget).
const (
	// MaxZipSize is the largest zip accepted, in bytes (Lambda's 50 MB).
	MaxZipSize = 52428800
	// MaxRequestSize is the request-size figure Lambda puts in its error
	// message for a zip over MaxZipSize: the base64 length of MaxZipSize
	// bytes, rounded up.
	MaxRequestSize = 69905067
	// MaxUnzippedSize bounds the sum of the decompressed bytes of every
	// entry, in bytes (Lambda's 250 MB).
	MaxUnzippedSize = 262144000
	// MaxEntries bounds both the records in the zip's central directory and
	// the filesystem objects created from them (files, directories, symlinks,
	// including parent directories the zip only implies). Lambda publishes
	// no such limit; 50000 holds the largest real node_modules and Python
	// trees that fit in 250 MB, while bounding the memory spent parsing a
	// hostile central directory (a 50 MB zip can declare a million entries)
	// and the number of inodes one upload creates.
	MaxEntries = 50000
	// MaxNameLen bounds the length of a cleaned entry name (Linux PATH_MAX
	// less the terminating NUL). Each component is further bounded by
	// NAME_MAX (255).
	MaxNameLen = 4095
	// MaxSymlinkTarget bounds the length of a symlink's target.
	MaxSymlinkTarget = 4095
)

// The messages Lambda gives for a rejected ZipFile.
const (
	msgUnzip    = "Could not unzip uploaded file. Please check your file, then try to upload again."
	msgUnzipped = "Unzipped size must be smaller than 262144000 bytes"
	msgEmpty    = "Uploaded file must be a non-empty zip"
)

// Error is the error every exported function of the package returns for a
// rejected package or a malformed key. Error() is the message shown to the
// user unchanged (Lambda's own text where Lambda has one); errors.Is sees
// Class (an errdefs class) and Cause (the underlying archive/zip or I/O
// error, if any, for logs).
type Error struct {
	Class error
	Msg   string
	Cause error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns Class and, when set, Cause.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Class}
	}
	return []error{e.Class, e.Cause}
}

// TooLargeError returns the ErrTooLarge error Lambda gives when a zip is over
// MaxZipSize in the named operation ("CreateFunction",
// "UpdateFunctionCode"). Put and Validate use "CreateFunction"; a caller
// serving another operation replaces their error with this one when
// errors.Is(err, errdefs.ErrTooLarge).
func TooLargeError(operation string) *Error {
	return &Error{
		Class: errdefs.ErrTooLarge,
		Msg:   fmt.Sprintf("Request must be smaller than %d bytes for the %s operation", MaxRequestSize, operation),
	}
}

// errUnzip is the generic rejection: not a zip, corrupt, encrypted or an
// unsupported compression method.
func errUnzip(cause error) *Error {
	return &Error{Class: errdefs.ErrInvalid, Msg: msgUnzip, Cause: cause}
}

func errUnzipped() *Error {
	return &Error{Class: errdefs.ErrInvalid, Msg: msgUnzipped}
}

func errTooManyEntries() *Error {
	return &Error{
		Class: errdefs.ErrInvalid,
		Msg:   fmt.Sprintf("Uploaded zip file must contain at most %d files, directories and symbolic links", MaxEntries),
	}
}

// errEntry rejects one entry; name is the entry's raw name from the zip,
// quoted (and shortened) so that hostile bytes cannot forge log lines or
// bloat the message.
func errEntry(name, why string) *Error {
	return &Error{
		Class: errdefs.ErrInvalid,
		Msg:   fmt.Sprintf("Uploaded zip file has an invalid entry %q: %s", shorten(name), why),
	}
}
