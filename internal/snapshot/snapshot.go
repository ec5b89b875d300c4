// Package snapshot is the worker's store of SnapStart checkpoint images: a
// directory of sealed snapshots, one per function version, each verified
// piece by piece before a sandbox is restored from it.
//
// # Layout
//
//	<dir>/staging/<random>/                   checkpoints being written (Stage)
//	<dir>/trash/<random>/                     deleted snapshots being removed
//	<dir>/snapshots/<account>/<function>/<version>-<hex>/
//	        checkpoint.img pages.img ...      the checkpoint's files, read-only
//	        .kindling-manifest.json           written last: format, meta, piece hashes
//	        .kindling-deleted                 tombstone of a Delete still in use
//
// A snapshot's key is its path below snapshots/: account/function/
// version-<16 hex digits>. Every component is a safe path segment
// ([A-Za-z0-9._$-], not starting with a dot, at most 128 bytes).
//
// # Integrity
//
// Commit splits every file into pieces of PieceSize bytes and records the
// SHA-256 of each in the manifest. Open verifies every piece against it, in
// parallel (one goroutine per CPU), before it hands the directory out: a
// restored sandbox never runs on bytes that differ from what was
// checkpointed, whatever happened to the disk since.
//
// Why 4 MiB pieces: SHA-256 runs at about 1.5-2 GB/s per core with the SHA
// extensions, so a piece costs 2-3 ms: small enough to spread a 256 MiB
// image evenly over the CPUs (64 pieces) and to name where damage is, large
// enough that the manifest stays small (32 bytes per 4 MiB), that per-piece
// costs (a pread, a goroutine hand-off) vanish, and that one read fetches a
// useful amount from disk.
//
// # Verification cache
//
// Hashing a 256 MiB image takes tens of milliseconds, on the path of every
// restore. So the store remembers, in memory, which pieces it verified,
// keyed by the identity of the file they were read from: device, inode,
// size, mtime and ctime (nanoseconds), taken with fstat on the descriptor
// the pieces were read through. A later Open fstats each file again and
// re-verifies only the pieces of files whose identity changed: any write,
// truncation or replacement changes ctime (which no caller can set), the
// inode or the size. Commit records the hashes it just computed as verified.
//
// Timestamps are coarse (the kernel's clock tick) unless the file system
// has multigrain timestamps: a write in the same tick as the one before it
// could leave ctime unchanged. As git does for its index ("racy git"), an
// identity is only remembered once the coarse clock has moved past its
// ctime: Commit waits for that (at most a tick, a few ms); Open, finding a
// file changed that recently, verifies it but does not remember it.
// Stepping the wall clock backwards defeats this; so would a writer that
// restores ctime, which needs privileges the worker's sandboxes lack.
//
// The cache lives as long as the Store: after a restart the first Open of
// each snapshot verifies it completely. HashedBytes counts the bytes hashed,
// so tests (and metrics) can see the cache work.
//
// # Crash safety
//
// A checkpoint is written into a staging directory; Commit fsyncs its
// files, writes and fsyncs the manifest last, fsyncs the directory, and
// renames it into place (one rename, on the same file system), then fsyncs
// the parent. Open(dir) removes staging and trash leftovers, snapshot
// directories without a valid manifest (treated as corrupt) and those with
// a tombstone.
//
// # Lifetime
//
// Open hands out a directory and a release func. Delete makes new Opens
// fail at once (ErrNotFound) but removes the directory only once every
// release has been called, so a sandbox being restored can still open the
// files. (A gVisor sandbox restored with --background keeps reading its
// image's pages file until all its memory is loaded, through a descriptor
// opened during the restore: after that, unlinking is harmless, but the
// files must never be modified in place.)
package snapshot

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// PieceSize is the size of the pieces files are split into (the last piece
// of a file may be shorter). See the package documentation.
const PieceSize = 4 << 20

// FormatVersion is the manifest format this package writes and reads.
const FormatVersion = 1

// Names inside the store and inside a snapshot directory. The checkpoint's
// own files must not start with ".kindling-".
const (
	stagingDir   = "staging"
	trashDir     = "trash"
	snapshotsDir = "snapshots"
	manifestName = ".kindling-manifest.json"
	tombstone    = ".kindling-deleted"
	reserved     = ".kindling-"
)

var (
	// ErrNotFound reports a snapshot that does not exist (or is deleted).
	ErrNotFound = errors.New("snapshot not found")
	// ErrCorrupt reports a snapshot whose files do not match their
	// manifest; the wrapping error names the file and piece.
	ErrCorrupt = errors.New("snapshot corrupt")
)

// Meta names the function version a snapshot belongs to.
type Meta struct{ Account, Function, Version string }

// Info describes a committed snapshot.
type Info struct {
	Key                        string // names the snapshot; safe as a path below the store
	Account, Function, Version string
	Bytes                      int64 // disk use of its files (allocated blocks), manifest included
	Pieces                     int
	Created                    time.Time
}

// manifest is the JSON written last into a snapshot directory.
type manifest struct {
	Format    int            `json:"format"`
	Key       string         `json:"key"`
	Account   string         `json:"account"`
	Function  string         `json:"function"`
	Version   string         `json:"version"`
	Created   time.Time      `json:"created"`
	PieceSize int64          `json:"piece_size"`
	Files     []manifestFile `json:"files"`
}

type manifestFile struct {
	Name   string   `json:"name"` // slash-separated, relative to the snapshot directory
	Size   int64    `json:"size"`
	SHA256 []string `json:"sha256"` // one hex digest per piece
}

func (m *manifest) pieces() int {
	n := 0
	for _, f := range m.Files {
		n += len(f.SHA256)
	}
	return n
}

// validate checks what a manifest read from disk must satisfy.
func (m *manifest) validate(key string) error {
	if m.Format != FormatVersion {
		return fmt.Errorf("manifest format %d, want %d", m.Format, FormatVersion)
	}
	if m.Key != key {
		return fmt.Errorf("manifest names key %q", m.Key)
	}
	if m.PieceSize <= 0 {
		return fmt.Errorf("manifest piece size %d", m.PieceSize)
	}
	for _, f := range m.Files {
		if !safeRelPath(f.Name) || strings.HasPrefix(filepath.Base(f.Name), reserved) {
			return fmt.Errorf("manifest names file %q", f.Name)
		}
		if f.Size < 0 || int64(len(f.SHA256)) != numPieces(f.Size, m.PieceSize) {
			return fmt.Errorf("manifest: %s: %d hashes for %d bytes", f.Name, len(f.SHA256), f.Size)
		}
		for _, h := range f.SHA256 {
			if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
				return fmt.Errorf("manifest: %s: bad hash %q", f.Name, h)
			}
		}
	}
	return nil
}

func numPieces(size, pieceSize int64) int64 { return (size + pieceSize - 1) / pieceSize }

// Store is a directory of snapshots. Its methods are safe for concurrent
// use; one directory must have one Store at a time.
type Store struct {
	dir string
	log *slog.Logger

	hashed atomic.Int64 // bytes hashed, by Commit and Open

	mu    sync.Mutex
	snaps map[string]*snap // open or deleted snapshots, and verification caches
}

// snap is the in-memory state of one snapshot.
type snap struct {
	refs    int  // outstanding Opens
	deleted bool // Delete called: new Opens fail, the directory goes at refs == 0

	vmu   sync.Mutex            // serializes verification, guards the rest
	files map[string]*fileCache // by manifest file name
	// The parsed manifest, its decoded hashes, and the identity of the
	// file it was read from: parsed again only when that changes.
	man   *manifest
	manID identity
	want  [][][sha256.Size]byte
}

// fileCache remembers which pieces of one file were verified, and the
// identity of the file they were read from.
type fileCache struct {
	id       identity
	verified []bool
}

// identity is what fstat says about a file; see the package documentation.
type identity struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // ns
}

func identityOf(st *unix.Stat_t) identity {
	return identity{
		dev: uint64(st.Dev), ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano(),
	}
}

// Open opens (creating) a store rooted at dir (e.g. DATA_DIR/snapshots).
// It removes staging and trash leftovers of earlier runs, and snapshot
// directories that have no valid manifest or a tombstone.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, log: log, snaps: map[string]*snap{}}
	for _, d := range []string{dir, s.path(stagingDir), s.path(trashDir), s.path(snapshotsDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("snapshot store: %w", err)
		}
	}
	for _, d := range []string{stagingDir, trashDir} {
		ents, err := os.ReadDir(s.path(d))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			p := filepath.Join(s.path(d), e.Name())
			if err := os.RemoveAll(p); err != nil {
				return nil, fmt.Errorf("snapshot store: remove leftover %s: %w", p, err)
			}
			log.Info("snapshot store: removed leftover", "path", p)
		}
	}
	keys, err := s.walk()
	if err != nil {
		return nil, err
	}
	for _, key := range keys {
		reason := ""
		if _, err := os.Lstat(filepath.Join(s.snapDir(key), tombstone)); err == nil {
			reason = "deleted"
		} else if _, err := s.readManifest(key); err != nil {
			reason = err.Error()
		}
		if reason == "" {
			continue
		}
		if err := s.removeDir(key); err != nil {
			return nil, err
		}
		log.Warn("snapshot store: removed snapshot", "key", key, "reason", reason)
	}
	return s, nil
}

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

func (s *Store) snapDir(key string) string {
	return filepath.Join(s.dir, snapshotsDir, filepath.FromSlash(key))
}

// walk lists the keys of the snapshot directories on disk.
func (s *Store) walk() ([]string, error) {
	var keys []string
	root := s.path(snapshotsDir)
	accounts, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	for _, a := range accounts {
		fns, err := os.ReadDir(filepath.Join(root, a.Name()))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		for _, f := range fns {
			vs, err := os.ReadDir(filepath.Join(root, a.Name(), f.Name()))
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return nil, err
			}
			for _, v := range vs {
				keys = append(keys, a.Name()+"/"+f.Name()+"/"+v.Name())
			}
		}
	}
	return keys, nil
}

// segment is a safe path segment: see the package documentation.
var segment = regexp.MustCompile(`^[A-Za-z0-9_$-][A-Za-z0-9._$-]{0,127}$`)

// versionPart is the last key component: version-<16 hex digits>.
var versionPart = regexp.MustCompile(`^(.+)-[0-9a-f]{16}$`)

// checkKey checks that key has the form account/function/version-<hex>
// with safe segments.
func checkKey(key string) error {
	parts := strings.Split(key, "/")
	if len(parts) != 3 {
		return fmt.Errorf("%w: bad snapshot key %q", ErrNotFound, key)
	}
	for _, p := range parts {
		if !segment.MatchString(p) {
			return fmt.Errorf("%w: bad snapshot key %q", ErrNotFound, key)
		}
	}
	if !versionPart.MatchString(parts[2]) {
		return fmt.Errorf("%w: bad snapshot key %q", ErrNotFound, key)
	}
	return nil
}

func checkSegment(what, v string) error {
	if !segment.MatchString(v) {
		return fmt.Errorf("snapshot: %s %q is not a safe path segment", what, v)
	}
	return nil
}

// safeRelPath accepts a clean, relative, slash-separated path.
func safeRelPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\x00") {
		return false
	}
	for _, e := range strings.Split(p, "/") {
		if e == "" || e == "." || e == ".." {
			return false
		}
	}
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// Stage returns a new empty directory for a checkpoint to be written into.
// Commit or Discard it.
func (s *Store) Stage() (string, error) {
	d := s.path(stagingDir, randomHex(8))
	if err := os.Mkdir(d, 0o700); err != nil {
		return "", fmt.Errorf("snapshot stage: %w", err)
	}
	return d, nil
}

// checkStaged checks that staged is a directory made by Stage.
func (s *Store) checkStaged(staged string) error {
	if filepath.Dir(filepath.Clean(staged)) != s.path(stagingDir) {
		return fmt.Errorf("snapshot: %s is not a staging directory of this store", staged)
	}
	return nil
}

// Discard removes a staged directory that will not be committed.
func (s *Store) Discard(staged string) error {
	if err := s.checkStaged(staged); err != nil {
		return err
	}
	return os.RemoveAll(staged)
}

// HashedBytes returns how many bytes Commit and Open have hashed since the
// store was opened: what the verification cache saves shows here.
func (s *Store) HashedBytes() int64 { return s.hashed.Load() }

// Commit seals a staged checkpoint as the snapshot of a function version:
// it splits every file into pieces, hashes each (SHA-256), writes a
// manifest (JSON, with a format version), fsyncs, and moves the directory
// into place. The pieces are known good from here on. The staged directory
// is gone when Commit succeeds; on failure the caller Discards it.
func (s *Store) Commit(ctx context.Context, staged string, m Meta) (Info, error) {
	if err := s.checkStaged(staged); err != nil {
		return Info{}, err
	}
	for _, c := range []struct{ what, v string }{{"account", m.Account}, {"function", m.Function}, {"version", m.Version}} {
		if err := checkSegment(c.what, c.v); err != nil {
			return Info{}, err
		}
	}
	key := m.Account + "/" + m.Function + "/" + m.Version + "-" + randomHex(8)
	names, err := stagedFiles(staged)
	if err != nil {
		return Info{}, err
	}
	man := &manifest{
		Format: FormatVersion, Key: key,
		Account: m.Account, Function: m.Function, Version: m.Version,
		Created: time.Now().UTC(), PieceSize: PieceSize,
	}
	files := make([]*os.File, len(names))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	var jobs []piece
	man.Files = make([]manifestFile, len(names))
	sums := make([][][sha256.Size]byte, len(names))
	ids := make([]identity, len(names))
	settled := make([]bool, len(names))
	for i, name := range names {
		p := filepath.Join(staged, filepath.FromSlash(name))
		// Read-only from here on; chmod before the identity is taken
		// (it changes ctime).
		if err := os.Chmod(p, 0o400); err != nil {
			return Info{}, err
		}
		f, err := os.Open(p)
		if err != nil {
			return Info{}, err
		}
		files[i] = f
		if err := f.Sync(); err != nil {
			return Info{}, fmt.Errorf("snapshot commit: fsync %s: %w", name, err)
		}
		id, ok, err := settledIdentity(f)
		if err != nil {
			return Info{}, err
		}
		ids[i], settled[i] = id, ok
		n := numPieces(id.size, PieceSize)
		man.Files[i] = manifestFile{Name: name, Size: id.size}
		sums[i] = make([][sha256.Size]byte, n)
		for j := range n {
			jobs = append(jobs, piece{file: i, index: int(j), off: j * PieceSize, len: min(PieceSize, id.size-j*PieceSize)})
		}
	}
	if err := s.hashPieces(ctx, files, jobs, func(p piece, sum [sha256.Size]byte) error {
		sums[p.file][p.index] = sum
		return nil
	}); err != nil {
		return Info{}, fmt.Errorf("snapshot commit: %w", err)
	}
	for i, f := range files {
		id, err := fstatIdentity(f)
		if err != nil {
			return Info{}, err
		}
		if id != ids[i] {
			return Info{}, fmt.Errorf("snapshot commit: %s changed while it was hashed", names[i])
		}
		man.Files[i].SHA256 = make([]string, len(sums[i]))
		for j, sum := range sums[i] {
			man.Files[i].SHA256[j] = hex.EncodeToString(sum[:])
		}
	}
	if err := writeManifest(staged, man); err != nil {
		return Info{}, err
	}
	if err := syncDirs(staged, names); err != nil {
		return Info{}, err
	}

	dst := s.snapDir(key)
	s.mu.Lock()
	err = func() error {
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := os.Rename(staged, dst); err != nil {
			return err
		}
		return errors.Join(syncDir(filepath.Dir(dst)), syncDir(filepath.Dir(filepath.Dir(dst))), syncDir(s.path(stagingDir)))
	}()
	if err == nil {
		// The hashes just computed are the verification of these files.
		sn := &snap{files: map[string]*fileCache{}}
		for i, name := range names {
			fc := &fileCache{id: ids[i], verified: make([]bool, len(sums[i]))}
			for j := range fc.verified {
				fc.verified[j] = settled[i]
			}
			sn.files[name] = fc
		}
		s.snaps[key] = sn
	}
	s.mu.Unlock()
	if err != nil {
		return Info{}, fmt.Errorf("snapshot commit: %w", err)
	}
	info := s.info(man)
	info.Bytes, _ = diskUse(dst) // the snapshot is committed; a failed stat only misses the figure
	s.log.Info("snapshot committed", "key", key, "bytes", info.Bytes, "pieces", info.Pieces)
	return info, nil
}

func (s *Store) info(m *manifest) Info {
	return Info{
		Key: m.Key, Account: m.Account, Function: m.Function, Version: m.Version,
		Pieces: m.pieces(), Created: m.Created,
	}
}

// stagedFiles lists the regular files below staged, slash-separated and
// sorted; anything else (symlinks, devices, reserved names) is an error.
func stagedFiles(staged string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(staged, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == staged {
			return nil
		}
		rel, err := filepath.Rel(staged, p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), reserved) {
			return fmt.Errorf("snapshot commit: reserved name %s", rel)
		}
		switch {
		case d.IsDir():
			return nil
		case d.Type().IsRegular():
			names = append(names, filepath.ToSlash(rel))
			return nil
		default:
			return fmt.Errorf("snapshot commit: %s is not a regular file", rel)
		}
	})
	sort.Strings(names)
	return names, err
}

func writeManifest(dir string, m *manifest) error {
	b, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, manifestName), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o400)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("snapshot commit: manifest: %w", err)
	}
	return nil
}

// syncDirs fsyncs dir and every directory holding one of names.
func syncDirs(dir string, names []string) error {
	seen := map[string]bool{}
	for _, n := range names {
		for d := filepath.Dir(filepath.Join(dir, filepath.FromSlash(n))); len(d) > len(dir); d = filepath.Dir(d) {
			seen[d] = true
		}
	}
	seen[dir] = true
	for d := range seen {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func fstatIdentity(f *os.File) (identity, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return identity{}, fmt.Errorf("fstat %s: %w", f.Name(), err)
	}
	return identityOf(&st), nil
}

// coarseNow is the clock file timestamps are taken from (without
// multigrain timestamps), in ns.
func coarseNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME_COARSE, &ts); err != nil {
		return time.Now().UnixNano()
	}
	return ts.Nano()
}

// racy reports whether id's ctime is not yet in the past of the coarse
// clock: a write now could leave it unchanged.
func racy(id identity) bool { return id.ctime >= coarseNow() }

// settleWait bounds how long Commit waits for the coarse clock to pass a
// fresh file's ctime (normally one tick, a few ms).
const settleWait = 100 * time.Millisecond

// settledIdentity returns f's identity once it is not racy; settled is
// false if it still was after settleWait (then it is not remembered).
func settledIdentity(f *os.File) (id identity, settled bool, err error) {
	deadline := time.Now().Add(settleWait)
	for {
		id, err := fstatIdentity(f)
		if err != nil || !racy(id) {
			return id, true, err
		}
		if time.Now().After(deadline) {
			return id, false, nil
		}
		time.Sleep(time.Millisecond)
	}
}

// piece is one piece of one of a set of open files.
type piece struct {
	file, index int
	off, len    int64
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, PieceSize); return &b }}

// hashPieces hashes pieces of files, in parallel, calling done (from any
// goroutine) with each sum; the first error of done or of a read stops it.
func (s *Store) hashPieces(ctx context.Context, files []*os.File, pieces []piece, done func(piece, [sha256.Size]byte) error) error {
	if len(pieces) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan piece)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(pieces)) {
		wg.Go(func() {
			bp := bufPool.Get().(*[]byte)
			defer bufPool.Put(bp)
			for p := range work {
				buf := (*bp)[:p.len]
				n, err := files[p.file].ReadAt(buf, p.off)
				if err == io.EOF && int64(n) < p.len {
					err = fmt.Errorf("%w: %s: piece %d: short (%d of %d bytes)", ErrCorrupt, files[p.file].Name(), p.index, n, p.len)
				} else if err == io.EOF {
					err = nil
				}
				if err != nil {
					cancel(err)
					continue
				}
				s.hashed.Add(p.len)
				if err := done(p, sha256.Sum256(buf)); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for _, p := range pieces {
		select {
		case work <- p:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && ctx.Err() != nil {
		return err
	}
	return nil
}

// readManifest reads and validates the manifest of key.
func (s *Store) readManifest(key string) (*manifest, error) {
	f, err := s.openManifest(key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseManifest(key, f)
}

func (s *Store) openManifest(key string) (*os.File, error) {
	f, err := os.Open(filepath.Join(s.snapDir(key), manifestName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(s.snapDir(key)); errors.Is(serr, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
			}
		}
		return nil, fmt.Errorf("%w: %s: manifest: %v", ErrCorrupt, key, err)
	}
	return f, nil
}

func parseManifest(key string, f *os.File) (*manifest, error) {
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: manifest: %v", ErrCorrupt, key, err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: manifest: %v", ErrCorrupt, key, err)
	}
	if err := m.validate(key); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, key, err)
	}
	return &m, nil
}

// loadManifest returns key's manifest and its decoded piece hashes,
// parsing the file only when its identity changed. sn.vmu is held.
func (s *Store) loadManifest(key string, sn *snap) (*manifest, [][][sha256.Size]byte, error) {
	f, err := s.openManifest(key)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	id, err := fstatIdentity(f)
	if err != nil {
		return nil, nil, err
	}
	if sn.man != nil && sn.manID == id {
		return sn.man, sn.want, nil
	}
	m, err := parseManifest(key, f)
	if err != nil {
		return nil, nil, err
	}
	want := make([][][sha256.Size]byte, len(m.Files))
	for i, mf := range m.Files {
		want[i] = make([][sha256.Size]byte, len(mf.SHA256))
		for j, h := range mf.SHA256 {
			hex.Decode(want[i][j][:], []byte(h)) //nolint:errcheck // validated
		}
	}
	if !racy(id) {
		sn.man, sn.manID, sn.want = m, id, want
	}
	return m, want, nil
}

// Open returns the directory of a verified snapshot for a restore, and a
// release func to call when the restored sandbox no longer reads it (it
// may be called more than once). Every piece is verified against its hash
// before Open returns it, in parallel, skipping pieces verified before
// from files whose identity has not changed (see the package
// documentation). ErrNotFound when the snapshot does not exist; ErrCorrupt
// (wrapped, naming the file and piece) when a piece is missing, short or
// does not match.
func (s *Store) Open(key string) (dir string, release func(), err error) {
	if err := checkKey(key); err != nil {
		return "", nil, err
	}
	s.mu.Lock()
	sn := s.snaps[key]
	if sn != nil && sn.deleted {
		s.mu.Unlock()
		return "", nil, fmt.Errorf("%w: %s (deleted)", ErrNotFound, key)
	}
	if _, err := os.Stat(s.snapDir(key)); err != nil {
		s.mu.Unlock()
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil, fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return "", nil, err
	}
	if sn == nil {
		sn = &snap{files: map[string]*fileCache{}}
		s.snaps[key] = sn
	}
	sn.refs++
	s.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { s.release(key, sn) }) }

	if err := s.verify(key, sn); err != nil {
		release()
		return "", nil, err
	}
	return s.snapDir(key), release, nil
}

// verify checks every piece of key not verified before.
func (s *Store) verify(key string, sn *snap) error {
	sn.vmu.Lock()
	defer sn.vmu.Unlock()
	m, want, err := s.loadManifest(key, sn)
	if err != nil {
		return err
	}
	dir := s.snapDir(key)
	files := make([]*os.File, len(m.Files))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	ids := make([]identity, len(m.Files))
	var jobs []piece
	for i, mf := range m.Files {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(mf.Name)))
		if err != nil {
			return fmt.Errorf("%w: %s: file %s piece 0 (of %d): %v", ErrCorrupt, key, mf.Name, len(mf.SHA256), err)
		}
		files[i] = f
		id, err := fstatIdentity(f)
		if err != nil {
			return err
		}
		ids[i] = id
		if id.size != mf.Size {
			// Report the first piece that cannot be whole.
			p := min(id.size, mf.Size) / m.PieceSize
			return fmt.Errorf("%w: %s: file %s piece %d: file has %d bytes, want %d", ErrCorrupt, key, mf.Name, p, id.size, mf.Size)
		}
		fc := sn.files[mf.Name]
		if fc == nil || fc.id != id || len(fc.verified) != len(mf.SHA256) {
			fc = &fileCache{id: id, verified: make([]bool, len(mf.SHA256))}
			sn.files[mf.Name] = fc
		}
		for j := range mf.SHA256 {
			if !fc.verified[j] {
				off := int64(j) * m.PieceSize
				jobs = append(jobs, piece{file: i, index: j, off: off, len: min(m.PieceSize, mf.Size-off)})
			}
		}
	}
	var mu sync.Mutex
	ok := make([][]bool, len(m.Files))
	for i := range ok {
		ok[i] = make([]bool, len(want[i]))
	}
	err = s.hashPieces(context.Background(), files, jobs, func(p piece, sum [sha256.Size]byte) error {
		if sum != want[p.file][p.index] {
			return fmt.Errorf("%w: %s: file %s piece %d (bytes %d-%d): SHA-256 mismatch", ErrCorrupt, key, m.Files[p.file].Name, p.index, p.off, p.off+p.len)
		}
		mu.Lock()
		ok[p.file][p.index] = true
		mu.Unlock()
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrCorrupt) && !strings.Contains(err.Error(), key) {
			err = fmt.Errorf("%s: %w", key, err)
		}
		return err
	}
	// Remember the pieces verified, for files that stayed the same while
	// they were read and whose identity is settled.
	for i, f := range files {
		id, err := fstatIdentity(f)
		if err != nil {
			return err
		}
		if id != ids[i] {
			return fmt.Errorf("%w: %s: file %s changed while it was verified", ErrCorrupt, key, m.Files[i].Name)
		}
		if racy(id) {
			continue
		}
		fc := sn.files[m.Files[i].Name]
		for j, v := range ok[i] {
			fc.verified[j] = fc.verified[j] || v
		}
	}
	return nil
}

// release ends one Open; the last one of a deleted snapshot removes it.
func (s *Store) release(key string, sn *snap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn.refs--
	if sn.refs > 0 || !sn.deleted {
		return
	}
	if err := s.removeDir(key); err != nil {
		s.log.Error("snapshot store: remove deleted snapshot", "key", key, "err", err)
	}
	if s.snaps[key] == sn {
		delete(s.snaps, key)
	}
}

// removeDir moves key's directory to the trash (atomic), removes it there,
// and removes the function and account directories if they are empty.
func (s *Store) removeDir(key string) error {
	dir := s.snapDir(key)
	trash := s.path(trashDir, randomHex(8))
	if err := os.Rename(dir, trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	// Read-only files in read-only directories are still removable by
	// their owner: RemoveAll needs write permission on directories only.
	err := os.RemoveAll(trash)
	fn := filepath.Dir(dir)
	if os.Remove(fn) == nil { // fails (ENOTEMPTY) while other versions exist
		os.Remove(filepath.Dir(fn)) //nolint:errcheck // likewise
	}
	return err
}

// Delete deletes a snapshot: new Opens fail with ErrNotFound at once; the
// directory goes once the last Open is released (a tombstone in it makes a
// crash before then finish the job at the next Open of the store).
func (s *Store) Delete(key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.snaps[key]
	if sn != nil && sn.deleted {
		return fmt.Errorf("%w: %s (deleted)", ErrNotFound, key)
	}
	if _, err := os.Stat(s.snapDir(key)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrNotFound, key)
		}
		return err
	}
	if sn == nil || sn.refs == 0 {
		delete(s.snaps, key)
		return s.removeDir(key)
	}
	sn.deleted = true
	f, err := os.OpenFile(filepath.Join(s.snapDir(key), tombstone), os.O_CREATE|os.O_WRONLY, 0o400)
	if err == nil {
		err = errors.Join(f.Sync(), f.Close(), syncDir(s.snapDir(key)))
	}
	if err != nil {
		s.log.Warn("snapshot store: tombstone", "key", key, "err", err)
	}
	return nil
}

// DeleteFunction deletes every snapshot of the function (as Delete).
func (s *Store) DeleteFunction(account, function string) error {
	if err := checkSegment("account", account); err != nil {
		return err
	}
	if err := checkSegment("function", function); err != nil {
		return err
	}
	ents, err := os.ReadDir(s.path(snapshotsDir, account, function))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		key := account + "/" + function + "/" + e.Name()
		if err := s.Delete(key); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// List describes every snapshot (not the deleted ones), sorted by key, for
// disk use reporting. Snapshots whose manifest cannot be read are left out
// (and logged): Open reports them.
func (s *Store) List() ([]Info, error) {
	keys, err := s.walk()
	if err != nil {
		return nil, err
	}
	sort.Strings(keys)
	var out []Info
	for _, key := range keys {
		s.mu.Lock()
		sn := s.snaps[key]
		deleted := sn != nil && sn.deleted
		s.mu.Unlock()
		if deleted || checkKey(key) != nil {
			continue
		}
		m, err := s.readManifest(key)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				s.log.Warn("snapshot store: list", "key", key, "err", err)
			}
			continue
		}
		info := s.info(m)
		if info.Bytes, err = diskUse(s.snapDir(key)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// diskUse sums the allocated blocks of the files below dir.
func diskUse(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		n += st.Blocks * 512
		return nil
	})
	return n, err
}
