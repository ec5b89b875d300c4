package codestore

import (
	"fmt"
	"io/fs"
	"os"
)

// Modes of everything extracted: owned by the server's uid, readable (and
// directories traversable) by any uid, writable by none but the owner, no
// setuid, setgid or sticky bits.
const (
	modeDir  fs.FileMode = 0o755
	modeExec fs.FileMode = 0o755
	modeFile fs.FileMode = 0o644
)

// extract creates the objects of p inside dir, an empty directory private to
// the caller, and makes dir itself modeDir.
//
// No write can leave dir or pass through a link: every operation goes
// through an os.Root opened on dir (which refuses paths leading outside it,
// even through symlinks); the plan guarantees that each object's parent is a
// real directory of the plan; files are created with O_CREATE|O_EXCL, which
// fails on any existing name, symlink or not, without following it; and
// symlinks are created last, when nothing remains to be written.
//
// Modes are set with chmod/fchmod after creation, so the process umask does
// not matter. File contents are decompressed again and counted against the
// same limit as in check.
func extract(p *plan, dir string) (err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := root.Close(); err == nil {
			err = cerr
		}
	}()
	room := p.lim.unzipped
	for _, n := range p.tree.order {
		switch n.kind {
		case kindDir:
			if err := root.Mkdir(n.path, modeDir); err != nil {
				return err
			}
			if err := root.Chmod(n.path, modeDir); err != nil {
				return err
			}
		case kindFile:
			k, err := writeFile(root, n, room)
			if err != nil {
				return err
			}
			room -= k
		}
	}
	for _, n := range p.tree.order {
		if n.kind == kindSymlink {
			if err := root.Symlink(n.target, n.path); err != nil {
				return err
			}
		}
	}
	return os.Chmod(dir, modeDir)
}

// writeFile creates file n under root with its decompressed contents and
// returns their length.
func writeFile(root *os.Root, n *node, room int64) (k int64, err error) {
	f, err := root.OpenFile(n.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	k, err = copyEntry(f, n.file, room)
	if err != nil {
		return k, fmt.Errorf("extracting %q: %w", n.path, err)
	}
	mode := modeFile
	if n.exec {
		mode = modeExec
	}
	return k, f.Chmod(mode)
}
