package cli

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// zipEpoch is the modification time of every entry ZipDir writes (the
// earliest an MS-DOS timestamp can hold), so archives are reproducible.
var zipEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// ZipDir builds a Lambda deployment package in memory from the tree rooted at
// dir. Paths in the archive are relative to dir with forward slashes; each
// entry records its Unix mode in the external attributes (creator Unix), so
// an executable `bootstrap` stays executable when Lambda unpacks it.
// Symbolic links are followed when they point at a regular file inside dir
// and refused otherwise. Entries are written in lexical order so that the
// same tree always gives the same archive bytes (modification times are
// fixed), and so the same CodeSha256.
func ZipDir(dir string) ([]byte, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	var files []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == root {
			return nil
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, path := range files {
		if err := addToZip(zw, root, path); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func addToZip(zw *zip.Writer, root, path string) error {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return err
	}
	name := filepath.ToSlash(rel)
	linfo, err := os.Lstat(path)
	if err != nil {
		return err
	}
	info := linfo
	if linfo.Mode()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if r, err := filepath.Rel(root, target); err != nil || r == ".." || len(r) > 2 && r[:3] == ".."+string(filepath.Separator) {
			return fmt.Errorf("%s: symbolic link points outside %s", name, root)
		}
		if info, err = os.Stat(target); err != nil {
			return err
		}
		if info.IsDir() {
			return fmt.Errorf("%s: symbolic links to directories are not supported", name)
		}
		path = target
	}
	if !info.IsDir() && !info.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file or directory", name)
	}

	hdr := &zip.FileHeader{Name: name, Method: zip.Deflate}
	hdr.Modified = zipEpoch
	if info.IsDir() {
		hdr.Name += "/"
		hdr.Method = zip.Store
		hdr.SetMode(fs.ModeDir | info.Mode().Perm())
	} else {
		hdr.SetMode(info.Mode().Perm())
	}
	w, err := zw.CreateHeader(hdr)
	if err != nil {
		return err
	}
	if info.IsDir() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// ReadPackage returns the deployment package at path: a directory is zipped
// with ZipDir, a file is taken as a ready zip (and checked to be one).
func ReadPackage(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return ZipDir(path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if _, err := zip.NewReader(bytes.NewReader(data), int64(len(data))); err != nil {
		return nil, fmt.Errorf("%s: not a zip archive: %w", path, err)
	}
	return data, nil
}
