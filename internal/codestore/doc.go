// Package codestore stores Lambda deployment packages (the zip files
// uploaded as ZipFile to CreateFunction and UpdateFunctionCode) by content,
// and unpacks each into a directory that sandboxes mount read-only at
// /var/task.
//
// # Layout on disk
//
//	<dir>/                    created 0755 if missing
//	  zips/                   0700
//	    <key>.zip             0600, the uploaded bytes; fsynced before Put returns
//	  unpacked/               0755
//	    <key>/                0755, the package tree (mounted at /var/task)
//	      bootstrap           0755 or 0644 files, 0755 directories, symlinks
//	    <key>.erofs           0644, an EROFS image of <key>/, made by the gvisor
//	                          backend on first use; removed with the tree
//	  tmp/                    0700, staging; emptied by Open
//	    <key>-<random>/       a tree being extracted, renamed to unpacked/<key>
//	    <key>-<random>.zip    a zip being written, renamed to zips/<key>.zip
//	    delete-<key>-<random>/  a tree being removed by Delete
//
// <key> is the lowercase hex SHA-256 of the zip. The zip is the source of
// truth; unpacked/<key> is derived from it, appears only complete (by rename
// of a staging directory), and is rebuilt by Get if missing. Open removes
// staging leftovers and unpacked trees whose zip is gone.
//
// # Trust boundary
//
// The zip comes from a tenant and is hostile. Nothing is written before the
// whole archive has been validated (Validate), which decompresses every entry
// once to count its real bytes; extraction then decompresses again and counts
// again. What a validated package may contain:
//
//   - names relative to the root: no "..", no leading "/", no backslash, no
//     NUL, no duplicates after dropping "." and empty components, no name
//     that is both a directory and something else, and no entry below a file
//     or a symlink;
//   - regular files, directories and symbolic links, nothing else (no
//     devices, FIFOs or sockets);
//   - symlinks with a relative target that stays inside the root, both read
//     lexically from the link's directory and followed through the other
//     links of the package the way the kernel would ("d/l/.." where d/l is a
//     link to ".." is caught); dangling targets are allowed.
//
// Extraction writes only through an os.Root on the staging directory, creates
// files with O_EXCL and symlinks last, so that nothing is written through a
// link or outside the directory even if validation missed something. Every
// object is owned by the server's uid. Files are 0755 if the zip gave them any
// execute bit in a unix mode and 0644 otherwise; directories are 0755; no
// setuid, setgid, sticky or group/other write bits survive, and the umask does
// not matter. An unprivileged uid in a sandbox can read everything and change
// nothing.
//
// # Concurrency
//
// A Store serialises Put, Get and Delete of one key with a per-key mutex and
// runs different keys in parallel. Lock order: a key's mutex, then Store.mu
// (which guards only the map of key mutexes and the cache of Codes); never
// the reverse. Two processes may Put and Get in one directory (everything
// appears by rename, and the loser of a race drops its copy), but Open and
// Delete assume one owner.
//
// # Limits
//
//   - MaxZipSize (50 MB) of zip: errdefs.ErrTooLarge, "Request must be
//     smaller than 69905067 bytes for the CreateFunction operation"
//     (TooLargeError for other operations).
//   - MaxUnzippedSize (250 MB) of decompressed bytes, files and symlink
//     targets together: errdefs.ErrInvalid, "Unzipped size must be smaller
//     than 262144000 bytes". Counted as bytes come out of the decompressor;
//     the sizes in the headers only reject early, never accept.
//   - MaxEntries (50000) records in the central directory, counted before
//     archive/zip parses it, and objects created including implied parent
//     directories.
//   - MaxNameLen (4095) bytes of cleaned name, 255 per component, and
//     MaxSymlinkTarget (4095) bytes of link target.
//   - Stored and deflated entries only; encrypted entries are refused.
//
// A zip that is not one, is corrupt (bad CRC, truncated, sizes that lie) or
// uses another method is errdefs.ErrInvalid with Lambda's message "Could not
// unzip uploaded file. Please check your file, then try to upload again.",
// an empty one "Uploaded file must be a non-empty zip". Other rejections name
// the entry. Every rejection is an *Error whose Error() is the text for the
// user.
package codestore
