package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newStore(tb testing.TB, dir string) *Store {
	tb.Helper()
	s, err := Open(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b) //nolint:errcheck // never fails
	return b
}

// testFiles are the files of a test checkpoint, by slash-separated name.
type testFiles map[string][]byte

func (f testFiles) size() int64 {
	var n int64
	for _, b := range f {
		n += int64(len(b))
	}
	return n
}

func defaultFiles() testFiles {
	return testFiles{
		"checkpoint.img": randomBytes(100_000, 1),
		"pages.img":      randomBytes(2*PieceSize+12345, 2), // 3 pieces
		"pages_meta.img": randomBytes(4096, 3),
		"sub/extra":      nil, // empty: no piece
	}
}

// commit stages files and commits them as account/function/version.
func commit(tb testing.TB, s *Store, files testFiles, account, function, version string) Info {
	tb.Helper()
	staged, err := s.Stage()
	if err != nil {
		tb.Fatal(err)
	}
	for name, b := range files {
		p := filepath.Join(staged, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	info, err := s.Commit(tb.Context(), staged, Meta{Account: account, Function: function, Version: version})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(staged); !errors.Is(err, os.ErrNotExist) {
		tb.Errorf("staged directory still there after Commit: %v", err)
	}
	return info
}

func open(t *testing.T, s *Store, key string) (string, func()) {
	t.Helper()
	dir, release, err := s.Open(key)
	if err != nil {
		t.Fatalf("Open(%s): %v", key, err)
	}
	return dir, release
}

func TestCommitOpen(t *testing.T) {
	s := newStore(t, t.TempDir())
	files := defaultFiles()
	info := commit(t, s, files, "123456789012", "my-func", "$LATEST")
	if !strings.HasPrefix(info.Key, "123456789012/my-func/$LATEST-") || info.Account != "123456789012" ||
		info.Function != "my-func" || info.Version != "$LATEST" || info.Pieces != 1+3+1 ||
		time.Since(info.Created) > time.Minute || info.Bytes < files.size() {
		t.Errorf("Info %+v", info)
	}
	dir, release := open(t, s, info.Key)
	defer release()
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", name, len(got), err, len(want))
		}
	}
	if filepath.Dir(filepath.Dir(filepath.Dir(dir))) != filepath.Join(s.dir, snapshotsDir) {
		t.Errorf("Open returned %s", dir)
	}
	// A second commit of the same version is another snapshot.
	if info2 := commit(t, s, files, "123456789012", "my-func", "$LATEST"); info2.Key == info.Key {
		t.Errorf("two commits, one key %s", info.Key)
	}
}

func TestCommitRejects(t *testing.T) {
	s := newStore(t, t.TempDir())
	staged, err := s.Stage()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []Meta{
		{Account: "..", Function: "f", Version: "1"},
		{Account: "a", Function: "f/g", Version: "1"},
		{Account: "a", Function: "f", Version: ""},
		{Account: ".hidden", Function: "f", Version: "1"},
	} {
		if _, err := s.Commit(t.Context(), staged, m); err == nil {
			t.Errorf("Commit %+v succeeded", m)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(staged, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(t.Context(), staged, Meta{Account: "a", Function: "f", Version: "1"}); err == nil {
		t.Error("Commit of a symlink succeeded")
	}
	if _, err := s.Commit(t.Context(), t.TempDir(), Meta{Account: "a", Function: "f", Version: "1"}); err == nil {
		t.Error("Commit of a directory outside the staging area succeeded")
	}
	if err := s.Discard(staged); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(staged); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Discard left %s: %v", staged, err)
	}
}

// writable makes a committed file writable again (its mode is 0400), as a
// non-root attacker or a disk fault would not need to.
func writable(t *testing.T, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

func wantCorrupt(t *testing.T, s *Store, key string, mention ...string) {
	t.Helper()
	_, release, err := s.Open(key)
	if err == nil {
		release()
		t.Fatalf("Open(%s) succeeded", key)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open(%s): %v, want ErrCorrupt", key, err)
	}
	for _, m := range mention {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("Open(%s): %q does not mention %q", key, err, m)
		}
	}
}

func TestFlippedByte(t *testing.T) {
	s := newStore(t, t.TempDir())
	info := commit(t, s, defaultFiles(), "a", "f", "1")
	dir, release := open(t, s, info.Key) // verified and remembered
	release()
	p := filepath.Join(dir, "pages.img")
	writable(t, p)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(PieceSize + 777) // piece 1
	b := make([]byte, 1)
	if _, err := (*os.File).ReadAt(mustOpen(t, p), b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wantCorrupt(t, s, info.Key, "pages.img piece 1")

	// The same through a store that never saw the snapshot, and with
	// os.WriteFile on another file.
	s2 := newStore(t, s.dir)
	cp := filepath.Join(dir, "checkpoint.img")
	writable(t, cp)
	data, err := os.ReadFile(cp)
	if err != nil {
		t.Fatal(err)
	}
	data[99_999] ^= 0x80
	if err := os.WriteFile(cp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	wantCorrupt(t, s2, info.Key, "piece")
}

func mustOpen(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestTruncatedOrRemoved(t *testing.T) {
	s := newStore(t, t.TempDir())
	info := commit(t, s, defaultFiles(), "a", "f", "1")
	dir, release := open(t, s, info.Key)
	release()
	p := filepath.Join(dir, "pages.img")
	writable(t, p)
	if err := os.Truncate(p, PieceSize+10); err != nil {
		t.Fatal(err)
	}
	wantCorrupt(t, s, info.Key, "pages.img piece 1")

	info2 := commit(t, s, defaultFiles(), "a", "f", "2")
	dir2, release := open(t, s, info2.Key)
	release()
	if err := os.Remove(filepath.Join(dir2, "pages_meta.img")); err != nil {
		t.Fatal(err)
	}
	wantCorrupt(t, s, info2.Key, "pages_meta.img piece 0")

	info3 := commit(t, s, defaultFiles(), "a", "f", "3")
	if err := os.Remove(filepath.Join(s.snapDir(info3.Key), manifestName)); err != nil {
		t.Fatal(err)
	}
	wantCorrupt(t, s, info3.Key, "manifest")
}

func TestNotFound(t *testing.T) {
	s := newStore(t, t.TempDir())
	for _, key := range []string{"a/f/1-0123456789abcdef", "../../etc", "a/f", "a/../1-0123456789abcdef", ""} {
		if _, _, err := s.Open(key); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open(%q): %v, want ErrNotFound", key, err)
		}
		if err := s.Delete(key); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete(%q): %v, want ErrNotFound", key, err)
		}
	}
}

func TestDeleteWhileOpen(t *testing.T) {
	s := newStore(t, t.TempDir())
	info := commit(t, s, defaultFiles(), "a", "f", "1")
	dir, release := open(t, s, info.Key)
	_, release2 := open(t, s, info.Key)
	if err := s.Delete(info.Key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(info.Key); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(info.Key); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
	if l, err := s.List(); err != nil || len(l) != 0 {
		t.Errorf("List after Delete: %v, %v", l, err)
	}
	release()
	release() // idempotent
	if _, err := os.ReadFile(filepath.Join(dir, "pages.img")); err != nil {
		t.Errorf("file gone before the last release: %v", err)
	}
	release2()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory still there after the last release: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.dir, snapshotsDir, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty account directory left: %v", err)
	}

	// A crash between Delete and release: the tombstone finishes it.
	info = commit(t, s, defaultFiles(), "a", "f", "1")
	_, release = open(t, s, info.Key)
	defer release()
	if err := s.Delete(info.Key); err != nil {
		t.Fatal(err)
	}
	newStore(t, s.dir)
	if _, err := os.Stat(s.snapDir(info.Key)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted snapshot survived a restart: %v", err)
	}
}

func TestDeleteFunction(t *testing.T) {
	s := newStore(t, t.TempDir())
	small := testFiles{"checkpoint.img": randomBytes(1000, 1)}
	a := commit(t, s, small, "acct", "f1", "1")
	b := commit(t, s, small, "acct", "f1", "2")
	c := commit(t, s, small, "acct", "f2", "1")
	_, release := open(t, s, b.Key)
	if err := s.DeleteFunction("acct", "f1"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{a.Key, b.Key} {
		if _, _, err := s.Open(k); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open(%s) after DeleteFunction: %v", k, err)
		}
	}
	_, rc := open(t, s, c.Key)
	rc()
	l, err := s.List()
	if err != nil || len(l) != 1 || l[0].Key != c.Key {
		t.Errorf("List: %+v, %v", l, err)
	}
	release()
	if _, err := os.Stat(filepath.Join(s.dir, snapshotsDir, "acct", "f1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("function directory left: %v", err)
	}
	if err := s.DeleteFunction("acct", "nothing"); err != nil {
		t.Errorf("DeleteFunction of a function without snapshots: %v", err)
	}
	if err := s.DeleteFunction("acct", "../x"); err == nil {
		t.Error("DeleteFunction with a bad name succeeded")
	}
}

func TestListBytes(t *testing.T) {
	s := newStore(t, t.TempDir())
	files := defaultFiles()
	info := commit(t, s, files, "a", "f", "1")
	l, err := s.List()
	if err != nil || len(l) != 1 {
		t.Fatalf("List: %+v, %v", l, err)
	}
	got := l[0]
	// Allocated blocks: the data, rounded up per file, plus the manifest.
	if got.Bytes < files.size() || got.Bytes > files.size()+64<<10 {
		t.Errorf("Bytes %d for %d bytes of files", got.Bytes, files.size())
	}
	got.Bytes = info.Bytes
	if !got.Created.Equal(info.Created) {
		t.Errorf("List Created %v, Commit %v", got.Created, info.Created)
	}
	got.Created = info.Created
	if got != info {
		t.Errorf("List %+v, Commit %+v", got, info)
	}
}

func TestVerificationCache(t *testing.T) {
	s := newStore(t, t.TempDir())
	files := defaultFiles()
	info := commit(t, s, files, "a", "f", "1")
	if h := s.HashedBytes(); h != files.size() {
		t.Errorf("Commit hashed %d bytes, want %d", h, files.size())
	}
	// Commit's hashes count as verified: Open reads no piece.
	before := s.HashedBytes()
	dir, release := open(t, s, info.Key)
	release()
	if h := s.HashedBytes() - before; h != 0 {
		t.Errorf("Open after Commit hashed %d bytes", h)
	}

	// A restarted store verifies everything once, then nothing.
	s = newStore(t, s.dir)
	_, release = open(t, s, info.Key)
	release()
	if h := s.HashedBytes(); h != files.size() {
		t.Errorf("first Open hashed %d bytes, want %d", h, files.size())
	}
	before = s.HashedBytes()
	_, release = open(t, s, info.Key)
	release()
	if h := s.HashedBytes() - before; h != 0 {
		t.Errorf("second Open hashed %d bytes", h)
	}

	// Rewriting one file with the same bytes changes its identity: only
	// its pieces are verified again.
	p := filepath.Join(dir, "checkpoint.img")
	writable(t, p)
	if err := os.WriteFile(p, files["checkpoint.img"], 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // past the racy window: remembered again
	before = s.HashedBytes()
	_, release = open(t, s, info.Key)
	release()
	if h := s.HashedBytes() - before; h != int64(len(files["checkpoint.img"])) {
		t.Errorf("Open after a rewrite hashed %d bytes, want %d", h, len(files["checkpoint.img"]))
	}
	before = s.HashedBytes()
	_, release = open(t, s, info.Key)
	release()
	if h := s.HashedBytes() - before; h != 0 {
		t.Errorf("Open after the re-verification hashed %d bytes", h)
	}
}

func TestOpenCleansUp(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	good := commit(t, s, testFiles{"checkpoint.img": randomBytes(1000, 1)}, "a", "f", "1")
	staged, err := s.Stage()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(staged, "pages.img"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A snapshot directory without a manifest (a crash, or damage).
	bad := "a/f/2-0123456789abcdef"
	if err := os.MkdirAll(s.snapDir(bad), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.snapDir(bad), "pages.img"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = newStore(t, dir)
	if _, err := os.Stat(staged); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging leftover survived: %v", err)
	}
	if _, err := os.Stat(s.snapDir(bad)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("snapshot without manifest survived: %v", err)
	}
	_, release := open(t, s, good.Key)
	release()
}

// BenchmarkOpen opens an already verified snapshot of 64 and 256 MiB (the
// time does not grow with the size: nothing is hashed), and, for
// comparison, the first Open of a store that never verified it ("cold":
// every piece hashed, in parallel).
func BenchmarkOpen(b *testing.B) {
	for _, mb := range []int{64, 256} {
		dir := b.TempDir()
		s := newStore(b, dir)
		files := testFiles{
			"checkpoint.img": randomBytes(2<<20, 1),
			"pages_meta.img": randomBytes(64<<10, 2),
			"pages.img":      randomBytes(mb<<20, 3),
		}
		info := commit(b, s, files, "a", "f", "1")
		b.Run(fmt.Sprintf("%dMiB/verified", mb), func(b *testing.B) {
			before := s.HashedBytes()
			for b.Loop() {
				_, release, err := s.Open(info.Key)
				if err != nil {
					b.Fatal(err)
				}
				release()
			}
			if h := s.HashedBytes() - before; h != 0 {
				b.Fatalf("hashed %d bytes", h)
			}
		})
		b.Run(fmt.Sprintf("%dMiB/cold", mb), func(b *testing.B) {
			b.SetBytes(files.size())
			for b.Loop() {
				b.StopTimer()
				s := newStore(b, dir)
				b.StartTimer()
				_, release, err := s.Open(info.Key)
				if err != nil {
					b.Fatal(err)
				}
				release()
			}
		})
	}
}
