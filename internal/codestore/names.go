package codestore

import (
	"path"
	"strings"
)

// maxComponent is NAME_MAX: the longest single path component Linux accepts.
const maxComponent = 255

// cleanName turns a zip entry name into the slash-separated path, relative to
// the package root, that extraction creates, or returns why the name is
// rejected. dir reports a trailing slash (the zip convention for a directory
// entry). The root itself cleans to "".
//
// Accepted: "a/b", "./a/b", "a//b/" (empty and "." components are dropped).
// Rejected: empty names, NUL bytes, backslashes (Windows tools write them as
// separators, and a consumer that honours them would see "..\..\x" as a
// traversal), absolute names, any ".." component (even one that would clean
// away inside the root), components over NAME_MAX and cleaned names over
// MaxNameLen. Nothing accepted can name a location outside the root.
func cleanName(raw string) (name string, dir bool, why string) {
	switch {
	case raw == "":
		return "", false, "the name is empty"
	case strings.IndexByte(raw, 0) >= 0:
		return "", false, "the name contains a NUL byte"
	case strings.IndexByte(raw, '\\') >= 0:
		return "", false, "the name contains a backslash; use / as the path separator"
	case raw[0] == '/':
		return "", false, "the name is an absolute path"
	}
	dir = strings.HasSuffix(raw, "/")
	parts := strings.Split(raw, "/")
	kept := parts[:0]
	for _, p := range parts {
		switch {
		case p == "" || p == ".":
			continue
		case p == "..":
			return "", false, `the name has a ".." component`
		case len(p) > maxComponent:
			return "", false, "a path component is longer than 255 bytes"
		}
		kept = append(kept, p)
	}
	name = strings.Join(kept, "/")
	if len(name) > MaxNameLen {
		return "", false, "the name is longer than 4095 bytes"
	}
	return name, dir, ""
}

// targetEscapes reports whether a symlink at name (a cleaned entry name) with
// the given target names, read lexically, a location outside the root. The
// physical walk in tree.resolve catches the cases where following links makes
// ".." go somewhere the lexical reading does not.
func targetEscapes(name, target string) bool {
	p := path.Join(path.Dir(name), target)
	return p == ".." || strings.HasPrefix(p, "../")
}

// parentOf returns the cleaned name of p's parent directory ("" for the root).
func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// baseOf returns the last component of p.
func baseOf(p string) string {
	return p[strings.LastIndexByte(p, '/')+1:]
}
