//go:build unix

package codestore

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"kindling/internal/errdefs"
)

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// sample is a package with one of everything Put keeps.
func sample(t testing.TB) []byte {
	return buildZip(t,
		exe("bootstrap", "#!/bin/sh\n"),
		dir("lib/"),
		file("lib/a.txt", "aaa"),
		link("lib/link", "a.txt"),
		ent{name: "win.txt", body: "w"}, // MS-DOS attributes only
		ent{name: "suid", body: "s", mode: fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky | 0o777},
		ent{name: "groupwrite", body: "g", mode: 0o664},
		ent{name: "onlyowner", body: "o", mode: 0o700},
		dir("empty/"),
	)
}

// sampleTree is what sample unpacks to: mode and contents (or link target)
// by path.
var sampleTree = map[string]string{
	".":          "drwxr-xr-x",
	"bootstrap":  "-rwxr-xr-x #!/bin/sh\n",
	"lib":        "drwxr-xr-x",
	"lib/a.txt":  "-rw-r--r-- aaa",
	"lib/link":   "Lrwxrwxrwx -> a.txt",
	"win.txt":    "-rw-r--r-- w",
	"suid":       "-rwxr-xr-x s",
	"groupwrite": "-rw-r--r-- g",
	"onlyowner":  "-rwxr-xr-x o",
	"empty":      "drwxr-xr-x",
}

// readTree describes every object under root the way sampleTree does.
func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
			desc += " owner " + strconv.Itoa(int(st.Uid))
		}
		got[filepath.ToSlash(rel)] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wantTree(t *testing.T, root string, want map[string]string) {
	t.Helper()
	got := readTree(t, root)
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: got %q, want %q", p, got[p], w)
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected %q", p, g)
		}
	}
}

// wantEmpty fails unless dir exists and holds nothing.
func wantEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("%s: unexpected %s", dir, e.Name())
	}
}

func TestPut(t *testing.T) {
	// Modes must not depend on the server's umask.
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	dir := t.TempDir()
	s := openStore(t, dir)
	z := sample(t)
	c, err := s.Put(z)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	sum := sha256.Sum256(z)
	want := Code{
		Key:          hex.EncodeToString(sum[:]),
		Sha256:       base64.StdEncoding.EncodeToString(sum[:]),
		Size:         int64(len(z)),
		UnzippedSize: 10 + 3 + 5 + 1 + 1 + 1 + 1,
		Dir:          filepath.Join(dir, "unpacked", hex.EncodeToString(sum[:])),
	}
	if c != want {
		t.Fatalf("Put = %+v, want %+v", c, want)
	}
	wantTree(t, c.Dir, sampleTree)
	stored, err := os.ReadFile(filepath.Join(dir, "zips", c.Key+".zip"))
	if err != nil || string(stored) != string(z) {
		t.Fatalf("stored zip: %v", err)
	}
	wantEmpty(t, filepath.Join(dir, "tmp"))
}

func TestPutIdempotent(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	first, err := s.Put(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Put(sample(t))
	if err != nil || again != first {
		t.Fatalf("second Put = %+v, %v; want %+v", again, err, first)
	}
	// A Put of content already stored restores a missing tree.
	if err := os.RemoveAll(first.Dir); err != nil {
		t.Fatal(err)
	}
	if again, err = s.Put(sample(t)); err != nil || again != first {
		t.Fatalf("Put after removing the tree = %+v, %v", again, err)
	}
	wantTree(t, first.Dir, sampleTree)
	if keys, err := s.Keys(); err != nil || !slices.Equal(keys, []string{first.Key}) {
		t.Fatalf("Keys = %v, %v", keys, err)
	}
	wantEmpty(t, filepath.Join(dir, "tmp"))
}

func TestPutConcurrent(t *testing.T) {
	dir := t.TempDir()
	// Two stores on one directory stand for two processes racing.
	stores := []*Store{openStore(t, dir), openStore(t, dir)}
	z := sample(t)
	const n = 8
	same := make([]Code, n)
	errs := make([]error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { same[i], errs[i] = stores[i%2].Put(z) })
		wg.Go(func() {
			_, errs[n+i] = stores[i%2].Put(buildZip(t, file("f", strconv.Itoa(i))))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	for _, c := range same[1:] {
		if c != same[0] {
			t.Fatalf("concurrent Puts disagree: %+v and %+v", c, same[0])
		}
	}
	wantTree(t, same[0].Dir, sampleTree)
	if keys, err := stores[0].Keys(); err != nil || len(keys) != n+1 {
		t.Fatalf("Keys = %v, %v; want %d keys", keys, err, n+1)
	}
	wantEmpty(t, filepath.Join(dir, "tmp"))
}

func TestGet(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	c, err := s.Put(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(c.Key); err != nil || got != c {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, c)
	}

	// The unpacked tree is rebuilt from the zip.
	if err := os.RemoveAll(c.Dir); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(c.Key); err != nil || got != c {
		t.Fatalf("Get after removing the tree = %+v, %v", got, err)
	}
	wantTree(t, c.Dir, sampleTree)

	// A restarted store learns the unzipped size from the zip again.
	if got, err := openStore(t, dir).Get(c.Key); err != nil || got != c {
		t.Fatalf("Get from a new Store = %+v, %v", got, err)
	}

	missing := hex.EncodeToString(make([]byte, sha256.Size))
	if _, err := s.Get(missing); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "../../etc", c.Key[:63], c.Key + "0", "ABCDEF" + c.Key[6:]} {
		if _, err := s.Get(bad); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Get(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestGetDetectsCorruptZip(t *testing.T) {
	dir := t.TempDir()
	c, err := openStore(t, dir).Put(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "zips", c.Key+".zip"), sample(t)[1:], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openStore(t, dir).Get(c.Key); err == nil {
		t.Fatal("Get accepted a zip that does not match its key")
	}
}

func TestDelete(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	a, err := s.Put(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Put(buildZip(t, file("b", "b")))
	if err != nil {
		t.Fatal(err)
	}
	// The gvisor backend's image of the tree goes with it.
	if err := os.WriteFile(a.Dir+imageSuffix, []byte("img"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(a.Key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := os.Lstat(a.Dir + imageSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("image of the tree still there: %v", err)
	}
	if keys, err := s.Keys(); err != nil || !slices.Equal(keys, []string{b.Key}) {
		t.Fatalf("Keys = %v, %v; want [%s]", keys, err, b.Key)
	}
	if _, err := os.Lstat(a.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unpacked tree still there: %v", err)
	}
	if _, err := s.Get(a.Key); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(a.Key); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete("../x"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("Delete(bad key) = %v, want ErrInvalid", err)
	}
	if _, err := s.Get(b.Key); err != nil {
		t.Fatalf("Get(other) = %v", err)
	}
	wantEmpty(t, filepath.Join(dir, "tmp"))
}

func TestOpenRecovers(t *testing.T) {
	dir := t.TempDir()
	c, err := openStore(t, dir).Put(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(dir, "unpacked", hex.EncodeToString(make([]byte, sha256.Size)))
	for _, d := range []string{filepath.Join(dir, "tmp", "stage", "x"), orphan, filepath.Join(dir, "unpacked", "other")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Images: an orphan's and a half-made one go, the kept tree's stays.
	for _, f := range []string{orphan + imageSuffix, c.Dir + imageSuffix + ".tmp-123", c.Dir + imageSuffix} {
		if err := os.WriteFile(f, []byte("img"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	openStore(t, dir)
	wantEmpty(t, filepath.Join(dir, "tmp"))
	for _, gone := range []string{orphan, orphan + imageSuffix, c.Dir + imageSuffix + ".tmp-123"} {
		if _, err := os.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s survived Open: %v", gone, err)
		}
	}
	for _, keep := range []string{c.Dir, c.Dir + imageSuffix, filepath.Join(dir, "unpacked", "other")} {
		if _, err := os.Lstat(keep); err != nil {
			t.Errorf("Open removed %s: %v", keep, err)
		}
	}
}

func TestRejectedPutWritesNothing(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	cases := invalidCases(t)
	cases = append(cases, struct {
		name string
		zip  []byte
		msg  string
	}{"bomb", bomb(t), msgUnzipped})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Put(tc.zip)
			wantInvalid(t, err, tc.msg)
			_, verr := Validate(tc.zip)
			if verr == nil || verr.Error() != err.Error() {
				t.Fatalf("Validate says %v, Put says %v", verr, err)
			}
		})
	}
	if _, err := s.Put(make([]byte, MaxZipSize+1)); !errors.Is(err, errdefs.ErrTooLarge) {
		t.Fatalf("Put(too large) = %v", err)
	}
	for _, sub := range []string{"zips", "unpacked", "tmp"} {
		wantEmpty(t, filepath.Join(dir, sub))
	}
}

// TestExtractRefusesLinks checks extraction's own defences, under a plan
// that validation would never produce: links already in the staging
// directory must not be written through.
func TestExtractRefusesLinks(t *testing.T) {
	outside := t.TempDir()
	p, err := check(buildZip(t, dir("d/"), file("d/y", "1"), file("x", "1")), defaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	stage := t.TempDir()
	if err := os.Symlink(filepath.Join(outside, "x"), filepath.Join(stage, "x")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(stage, "d")); err != nil {
		t.Fatal(err)
	}
	// Without the directory, "d/y" would be created through the link "d".
	p.tree.order = slices.DeleteFunc(p.tree.order, func(n *node) bool { return n.path == "d" || n.path == "x" })
	err = extract(p, stage)
	if err == nil {
		t.Fatal("extract wrote d/y through a link")
	}
	t.Log(err)
	// And an existing link at a file's own name is not followed.
	p, _ = check(buildZip(t, file("x", "1")), defaultLimits)
	err = extract(p, stage)
	if err == nil {
		t.Fatal("extract wrote x through a link")
	}
	t.Log(err)
	wantEmpty(t, outside)
}
