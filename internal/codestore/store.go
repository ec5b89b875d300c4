package codestore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"kindling/internal/errdefs"
)

// imageSuffix names the EROFS image of an unpacked tree that the gvisor
// sandbox backend makes beside it (unpacked/<key>.erofs, temporaries
// <key>.erofs.tmp-*): Delete and Open remove it with the tree.
const imageSuffix = ".erofs"

// Code describes one stored deployment package.
type Code struct {
	// Key names the package in the store: the lowercase hex SHA-256 of
	// the zip.
	Key string
	// Sha256 is the base64 (standard, padded) SHA-256 of the zip: Lambda's
	// CodeSha256.
	Sha256 string
	// Size is the length of the zip in bytes: Lambda's CodeSize.
	Size int64
	// UnzippedSize is the sum of the decompressed bytes of every entry.
	UnzippedSize int64
	// Dir is the absolute path of the unpacked tree, to be mounted
	// read-only at /var/task.
	Dir string
}

// Store is a content-addressed store of deployment packages in one
// directory. Its methods are safe for concurrent use; operations on the same
// key are serialised, operations on different keys run in parallel. One
// process at a time may own the directory: Put and Get are safe against a
// second process (everything appears by rename), Delete is not.
type Store struct {
	dir      string // absolute
	zips     string
	unpacked string
	tmp      string
	lim      limits

	mu sync.Mutex // guards locks and known; never held while a key lock is taken
	// locks holds one mutex per key in use, serialising Put, Get and Delete
	// of that key.
	locks map[string]*keyLock
	// known caches the Code of keys this process has put or got, so that
	// Get need not decompress the zip again to learn UnzippedSize.
	known map[string]Code
}

type keyLock struct {
	mu   sync.Mutex
	refs int // guarded by Store.mu
}

// Open opens the store in dir, creating dir and its subdirectories as
// needed. It discards what a crash may have left behind: everything in tmp/
// (staging directories, half-written zips, half-deleted trees) and any
// unpacked tree whose zip is gone.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{
		dir:      abs,
		zips:     filepath.Join(abs, "zips"),
		unpacked: filepath.Join(abs, "unpacked"),
		tmp:      filepath.Join(abs, "tmp"),
		lim:      defaultLimits,
		locks:    map[string]*keyLock{},
		known:    map[string]Code{},
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, err
	}
	for _, d := range []struct {
		path string
		mode fs.FileMode
	}{{s.zips, 0o700}, {s.unpacked, modeDir}, {s.tmp, 0o700}} {
		if err := os.Mkdir(d.path, d.mode); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return nil, err
		}
	}
	if err := s.clean(); err != nil {
		return nil, fmt.Errorf("codestore: recovering %s: %w", abs, err)
	}
	return s, nil
}

// clean empties tmp/ and removes orphaned unpacked trees.
func (s *Store) clean() error {
	ents, err := os.ReadDir(s.tmp)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(s.tmp, e.Name())); err != nil {
			return err
		}
	}
	ents, err = os.ReadDir(s.unpacked)
	if err != nil {
		return err
	}
	for _, e := range ents {
		key := e.Name()
		if k, _, tmp := strings.Cut(key, imageSuffix+".tmp-"); tmp && validKey(k) {
			// An image being made when a server stopped.
			if err := os.Remove(filepath.Join(s.unpacked, key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			continue
		}
		key = strings.TrimSuffix(key, imageSuffix)
		if !validKey(key) {
			continue
		}
		_, err := os.Lstat(s.zipPath(key))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.RemoveAll(filepath.Join(s.unpacked, e.Name())); err != nil {
				return err
			}
		case err != nil:
			return err
		}
	}
	return nil
}

// Put validates zip (see Validate), stores it and unpacks it, and returns its
// Code. Putting content already stored only restores what is missing (the
// unpacked tree, say); concurrent Puts of the same content all succeed with
// the same Code. The zip is durable (fsynced) when Put returns; the unpacked
// tree is too on Linux, and Get rebuilds it if it is ever lost.
func (s *Store) Put(zip []byte) (Code, error) {
	p, err := check(zip, s.lim)
	if err != nil {
		return Code{}, err
	}
	sum := sha256.Sum256(zip)
	key := hex.EncodeToString(sum[:])
	unlock := s.lock(key)
	defer unlock()
	if err := s.writeZip(key, zip); err != nil {
		return Code{}, fmt.Errorf("codestore: storing %s: %w", key, err)
	}
	if err := s.unpack(key, p); err != nil {
		return Code{}, fmt.Errorf("codestore: unpacking %s: %w", key, err)
	}
	c := s.code(key, sum, int64(len(zip)), p.unzipped)
	s.remember(c)
	return c, nil
}

// Get returns the Code of a stored package, unpacking its zip again if the
// unpacked tree is missing. It fails with errdefs.ErrNotFound if the store
// has no zip for key, and with errdefs.ErrInvalid if key is not a key.
func (s *Store) Get(key string) (Code, error) {
	if !validKey(key) {
		return Code{}, errBadKey(key)
	}
	unlock := s.lock(key)
	defer unlock()
	s.mu.Lock()
	c, ok := s.known[key]
	s.mu.Unlock()
	if ok && isDir(c.Dir) {
		return c, nil
	}
	zip, err := s.readZip(key)
	if err != nil {
		return Code{}, err
	}
	sum := sha256.Sum256(zip)
	if hex.EncodeToString(sum[:]) != key {
		return Code{}, fmt.Errorf("codestore: %s: the stored zip does not match its key", s.zipPath(key))
	}
	p, err := check(zip, s.lim)
	if err != nil {
		// %v: the error's class describes a tenant's upload, not this
		// server-side inconsistency.
		return Code{}, fmt.Errorf("codestore: %s: the stored zip no longer validates: %v", s.zipPath(key), err)
	}
	if err := s.unpack(key, p); err != nil {
		return Code{}, fmt.Errorf("codestore: unpacking %s: %w", key, err)
	}
	c = s.code(key, sum, int64(len(zip)), p.unzipped)
	s.remember(c)
	return c, nil
}

// Delete removes a stored package: its zip, then its unpacked tree (moved
// out of unpacked/ first, so that it never appears half-removed). The caller
// makes sure no sandbox is using the tree. It fails with errdefs.ErrNotFound
// if neither existed.
func (s *Store) Delete(key string) error {
	if !validKey(key) {
		return errBadKey(key)
	}
	unlock := s.lock(key)
	defer unlock()
	s.mu.Lock()
	delete(s.known, key)
	s.mu.Unlock()

	err := os.Remove(s.zipPath(key))
	found := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("codestore: %w", err)
	}
	dir := filepath.Join(s.unpacked, key)
	if err := os.Remove(dir + imageSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("codestore: %w", err)
	}
	if _, err := os.Lstat(dir); err == nil {
		found = true
		trash, err := os.MkdirTemp(s.tmp, "delete-"+key+"-")
		if err != nil {
			return fmt.Errorf("codestore: %w", err)
		}
		if err := os.Rename(dir, filepath.Join(trash, key)); err != nil {
			return fmt.Errorf("codestore: %w", err)
		}
		if err := os.RemoveAll(trash); err != nil {
			return fmt.Errorf("codestore: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("codestore: %w", err)
	}
	if !found {
		return fmt.Errorf("codestore: package %s: %w", key, errdefs.ErrNotFound)
	}
	return nil
}

// Keys returns the keys of every stored zip, sorted.
func (s *Store) Keys() ([]string, error) {
	ents, err := os.ReadDir(s.zips)
	if err != nil {
		return nil, fmt.Errorf("codestore: %w", err)
	}
	var keys []string
	for _, e := range ents {
		if key, ok := strings.CutSuffix(e.Name(), ".zip"); ok && validKey(key) && e.Type().IsRegular() {
			keys = append(keys, key)
		}
	}
	return keys, nil
}

// writeZip stores zip as zips/<key>.zip unless a file of that size is
// there: written to tmp/, fsynced, renamed into place, directory fsynced.
func (s *Store) writeZip(key string, zip []byte) error {
	final := s.zipPath(key)
	if fi, err := os.Lstat(final); err == nil && fi.Mode().IsRegular() && fi.Size() == int64(len(zip)) {
		return nil
	}
	f, err := os.CreateTemp(s.tmp, key+"-*.zip")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(zip)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return syncDir(s.zips)
}

// Zip returns the stored deployment package of key, as it was uploaded
// (GetFunction's Code.Location serves it). Errors as Get's.
func (s *Store) Zip(key string) ([]byte, error) {
	if !validKey(key) {
		return nil, errBadKey(key)
	}
	return s.readZip(key)
}

// readZip reads zips/<key>.zip, refusing anything larger than a zip can be.
func (s *Store) readZip(key string) ([]byte, error) {
	f, err := os.Open(s.zipPath(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("codestore: package %s: %w", key, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("codestore: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("codestore: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > s.lim.zip {
		return nil, fmt.Errorf("codestore: %s is not a stored zip", f.Name())
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("codestore: %w", err)
	}
	return b, nil
}

// unpack makes unpacked/<key> hold the tree of p unless it is there already:
// extracted into a staging directory in tmp/, flushed to disk, then renamed
// into place. If another process renamed its copy first, ours is dropped.
func (s *Store) unpack(key string, p *plan) error {
	final := filepath.Join(s.unpacked, key)
	fi, err := os.Lstat(final)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil: // not ours; replace it
		if err := os.RemoveAll(final); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	stage, err := os.MkdirTemp(s.tmp, key+"-")
	if err != nil {
		return err
	}
	err = extract(p, stage)
	if err == nil {
		err = syncFS(stage)
	}
	if err == nil {
		err = os.Rename(stage, final)
		if err != nil && isDir(final) {
			err = nil // lost the race to another process
		}
	}
	if rerr := os.RemoveAll(stage); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

func (s *Store) code(key string, sum [sha256.Size]byte, size, unzipped int64) Code {
	return Code{
		Key:          key,
		Sha256:       base64.StdEncoding.EncodeToString(sum[:]),
		Size:         size,
		UnzippedSize: unzipped,
		Dir:          filepath.Join(s.unpacked, key),
	}
}

func (s *Store) remember(c Code) {
	s.mu.Lock()
	s.known[c.Key] = c
	s.mu.Unlock()
}

// lock takes the lock of key and returns its release.
func (s *Store) lock(key string) (unlock func()) {
	s.mu.Lock()
	l := s.locks[key]
	if l == nil {
		l = &keyLock{}
		s.locks[key] = l
	}
	l.refs++
	s.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.locks, key)
		}
		s.mu.Unlock()
	}
}

func (s *Store) zipPath(key string) string { return filepath.Join(s.zips, key+".zip") }

// validKey reports whether key is 64 lowercase hex digits.
func validKey(key string) bool {
	if len(key) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func errBadKey(key string) error {
	return &Error{Class: errdefs.ErrInvalid, Msg: fmt.Sprintf("codestore: %q is not a package key", shorten(key))}
}

func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}

// syncDir flushes a directory's entries to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
