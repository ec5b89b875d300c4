//go:build unix

package codestore

import (
	"archive/zip"
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kindling/internal/errdefs"
)

// addSeeds gives a fuzz target every zip of the table tests, and stored
// (uncompressed) ones, whose names, modes and links the fuzzer can mutate
// without breaking a CRC.
func addSeeds(f *testing.F) {
	for _, tc := range validCases(f) {
		f.Add(tc.zip)
	}
	for _, tc := range invalidCases(f) {
		f.Add(tc.zip)
	}
	f.Add(sample(f))
	stored := func(name, body string, mode fs.FileMode) ent {
		return ent{name: name, body: body, mode: mode, raw: true}
	}
	f.Add(buildZip(f,
		stored("bootstrap", "#!/bin/sh\n", 0o755),
		stored("d/f", "f", 0o644),
		stored("d/l", "../d/f", fs.ModeSymlink|0o777),
		stored("up", "d/..", fs.ModeSymlink|0o777),
		stored("e/", "", fs.ModeDir|0o755),
	))
	f.Add(buildZip(f, stored("a/l", "..", fs.ModeSymlink|0o777), stored("b", "a/l/a", fs.ModeSymlink|0o777)))
	f.Add(shortZip64())
	f.Add(manyRecords(100))
}

// FuzzValidate checks that Validate never panics and only fails with a
// classified *Error, and that the central-directory count that guards
// archive/zip is never below what archive/zip parses.
func FuzzValidate(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b))); err == nil || errors.Is(err, zip.ErrInsecurePath) {
			if n := centralRecords(b, math.MaxInt32); n < len(zr.File) {
				t.Fatalf("centralRecords = %d, archive/zip parsed %d", n, len(zr.File))
			}
		}
		n, err := Validate(b)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || !(errors.Is(err, errdefs.ErrInvalid) || errors.Is(err, errdefs.ErrTooLarge)) {
				t.Fatalf("Validate returned %v (%T), not a classified *Error", err, err)
			}
			return
		}
		if n < 0 || n > MaxUnzippedSize {
			t.Fatalf("accepted unzipped size %d", n)
		}
	})
}

// FuzzPut checks that nothing Put does, accepted or not, writes outside the
// store, and that an accepted tree holds only what the package promises.
//
// Put's coverage varies from run to run (temporary names are random), which
// sends the fuzzer minimising inputs that are not new and stalls it; run the
// Put targets with -fuzzminimizetime=0:
//
//	go test -run '^$' -fuzz '^FuzzPut$' -fuzzminimizetime=0 -fuzztime=20s ./internal/codestore
func FuzzPut(f *testing.F) {
	addSeeds(f)
	f.Fuzz(putAndCheck)
}

// FuzzPutTree is FuzzPut over zips built from a line-per-entry description,
// "<kind><name>=<body or link target>" with kind f (file), x (executable), d
// (directory), l (symlink) or anything else (no unix mode), so that the
// fuzzer explores names and symlink graphs rather than zip framing.
func FuzzPutTree(f *testing.F) {
	for _, spec := range []string{
		"xbootstrap=#!/bin/sh\nflib/a=a\nllib/l=a\ndlib/d/",
		"la/up=..\nlb=a/up/a/up/..",
		"ld/l=..\nle=d/l/..",
		"dd/\nll=d\nfl/x=1",
		"la=b\nlb=a",
		"ll=missing/../../x",
		"l./x=.\nfx/../y=1",
	} {
		f.Add(spec)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		var ents []ent
		for i, line := range strings.Split(spec, "\n") {
			if i == 64 || line == "" {
				break
			}
			name, body, _ := strings.Cut(line[1:], "=")
			e := ent{name: name, body: body}
			switch line[0] {
			case 'f':
				e.mode = 0o644
			case 'x':
				e.mode = 0o755
			case 'd':
				e.mode, e.body = fs.ModeDir|0o755, ""
			case 'l':
				e.mode = fs.ModeSymlink | 0o777
			}
			ents = append(ents, e)
		}
		putAndCheck(t, buildZip(t, ents...))
	})
}

// putAndCheck puts b into a new store next to an empty directory, and
// checks that the directory stays empty, that nothing else appears beside
// the store, that Put and check agree, and the tree (checkTree).
func putAndCheck(t *testing.T, b []byte) {
	parent := t.TempDir()
	outside := filepath.Join(parent, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, filepath.Join(parent, "store"))
	s.lim.unzipped = 1 << 20 // keep iterations fast
	s.lim.entries = 1000
	c, err := s.Put(b)
	if _, verr := check(b, s.lim); (verr == nil) != (err == nil) {
		t.Fatalf("Put says %v, check says %v", err, verr)
	}
	if ents, rerr := os.ReadDir(parent); rerr != nil || len(ents) != 2 {
		t.Fatalf("written next to the store: %v %v", ents, rerr)
	}
	wantEmpty(t, outside)
	wantEmpty(t, filepath.Join(s.dir, "tmp"))
	if err != nil {
		wantEmpty(t, filepath.Join(s.dir, "zips"))
		wantEmpty(t, filepath.Join(s.dir, "unpacked"))
		return
	}
	checkTree(t, c.Dir)
}

// checkTree checks every object under root: directories 0755, files 0644 or
// 0755, symlinks that dangle or resolve inside root, nothing else.
func checkTree(t *testing.T, root string) {
	t.Helper()
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch m := fi.Mode(); {
		case m.IsDir():
			if m.Perm() != modeDir || m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
				t.Errorf("%s: directory mode %v", p, m)
			}
		case m.IsRegular():
			if m != modeFile && m != modeExec {
				t.Errorf("%s: file mode %v", p, m)
			}
		case m&fs.ModeSymlink != 0:
			to, err := filepath.EvalSymlinks(p)
			if err != nil {
				return nil // dangling: the lookup fails inside the tree
			}
			if to != real && !strings.HasPrefix(to, real+string(filepath.Separator)) {
				t.Errorf("%s: resolves to %s, outside %s", p, to, real)
			}
		default:
			t.Errorf("%s: unexpected mode %v", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
