package codestore

import (
	"archive/zip"
	"fmt"
	"strings"
)

// kind is what an entry becomes on disk.
type kind uint8

const (
	kindDir kind = iota
	kindFile
	kindSymlink
)

// maxHops bounds how many symbolic links one path lookup may follow, as the
// kernel does (ELOOP after 40).
const maxHops = 40

// resolution states of a symlink node.
const (
	unresolved uint8 = iota
	resolving
	resolved
)

// node is one filesystem object of a package: declared by a zip entry
// (explicit) or a directory the entry names only imply.
type node struct {
	path     string // cleaned, relative to the root; "" for the root
	parent   *node  // nil for the root
	children map[string]*node
	kind     kind
	explicit bool
	exec     bool      // files: any execute bit in the zip's unix mode
	file     *zip.File // files and symlinks
	target   string    // symlinks: filled in by check once read

	// Symlink resolution, memoised by follow.
	state uint8
	to    *node // where the link leads; nil when the lookup would fail
	hops  int   // links followed to get there, this one included
}

// tree is the set of objects a package creates. order lists them so that
// every directory comes before what it contains. Not safe for concurrent use.
type tree struct {
	root   *node
	byPath map[string]*node
	order  []*node
	limit  int // most objects allowed, the root excluded
}

func newTree(limit int) *tree {
	root := &node{kind: kindDir, explicit: true, children: map[string]*node{}}
	return &tree{root: root, byPath: map[string]*node{"": root}, limit: limit}
}

// add declares the entry raw (its zip name), cleaned to name, as kind k. It
// rejects duplicates, a name declared both as a directory and as something
// else, and any entry below a file or a symlink (nothing is ever written
// through a link).
func (t *tree) add(raw, name string, k kind, f *zip.File, exec bool) error {
	if name == "" {
		if k == kindDir {
			return nil // "./" names the root, which exists
		}
		return errEntry(raw, "the name refers to the archive root")
	}
	if n := t.byPath[name]; n != nil {
		switch {
		case n.explicit:
			return errEntry(raw, "the name appears more than once")
		case k == kindSymlink:
			return errEntry(raw, "the name is both a directory and a symbolic link")
		case k != kindDir:
			return errEntry(raw, "the name is both a directory and a file")
		}
		n.explicit = true
		return nil
	}
	parent, err := t.dir(raw, parentOf(name))
	if err != nil {
		return err
	}
	n, err := t.create(parent, name, k)
	if err != nil {
		return err
	}
	n.explicit, n.file, n.exec = true, f, exec
	return nil
}

// dir returns the directory node p, creating it and its missing ancestors as
// implicit directories. Ancestors already present were checked when they were
// created, so the walk up stops at the first one found.
func (t *tree) dir(raw, p string) (*node, error) {
	if n := t.byPath[p]; n != nil {
		switch n.kind {
		case kindDir:
			return n, nil
		case kindSymlink:
			return nil, errEntry(raw, fmt.Sprintf("it would be written through the symbolic link %q", shorten(p)))
		default:
			return nil, errEntry(raw, fmt.Sprintf("its parent %q is a file", shorten(p)))
		}
	}
	parent, err := t.dir(raw, parentOf(p))
	if err != nil {
		return nil, err
	}
	return t.create(parent, p, kindDir)
}

func (t *tree) create(parent *node, p string, k kind) (*node, error) {
	if len(t.order) >= t.limit {
		return nil, errTooManyEntries()
	}
	n := &node{path: p, parent: parent, kind: k}
	if k == kindDir {
		n.children = map[string]*node{}
	}
	parent.children[baseOf(p)] = n
	t.byPath[p] = n
	t.order = append(t.order, n)
	return n, nil
}

// follow resolves symlink l the way the kernel's path lookup would, starting
// from the link's directory and following every link on the way. It returns
// the node reached (nil when the lookup would fail: a missing component or a
// file used as a directory, which is harmless since the tree is read-only),
// the number of links followed, and why the link is rejected: it leaves the
// root (".." above it), loops, or needs more than maxHops links. Results are
// memoised, so each link's target is walked once.
func (t *tree) follow(l *node, depth int) (*node, int, string) {
	switch l.state {
	case resolved:
		return l.to, l.hops, ""
	case resolving:
		return nil, 0, "the symbolic links form a loop"
	}
	if depth > maxHops {
		return nil, 0, "too many levels of symbolic links"
	}
	l.state = resolving
	to, hops, why := t.walk(l.parent, l.target, depth)
	if why != "" {
		return nil, 0, why
	}
	if hops++; hops > maxHops {
		return nil, 0, "too many levels of symbolic links"
	}
	l.state, l.to, l.hops = resolved, to, hops
	return to, hops, ""
}

// walk looks up the relative path rel from directory dir; see follow.
func (t *tree) walk(dir *node, rel string, depth int) (*node, int, string) {
	cur, hops := dir, 0
	for rest := rel; rest != ""; {
		var c string
		c, rest, _ = strings.Cut(rest, "/")
		switch c {
		case "", ".":
			continue
		case "..":
			if cur.parent == nil {
				return nil, 0, "the target leads outside the archive root"
			}
			cur = cur.parent
			continue
		}
		next := cur.children[c]
		if next != nil && next.kind == kindSymlink {
			to, h, why := t.follow(next, depth+1)
			if why != "" {
				return nil, 0, why
			}
			if hops += h; hops > maxHops {
				return nil, 0, "too many levels of symbolic links"
			}
			next = to
		}
		if next == nil {
			return nil, hops, "" // ENOENT
		}
		if next.kind == kindFile {
			if rest != "" {
				return nil, hops, "" // ENOTDIR
			}
			return next, hops, ""
		}
		cur = next
	}
	return cur, hops, ""
}

// shorten bounds a hostile name quoted inside a message.
func shorten(s string) string {
	const show = 120
	if len(s) > show {
		return s[:show] + "..."
	}
	return s
}
