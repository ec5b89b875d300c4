//go:build !linux

package codestore

// syncFS does nothing where syncfs(2) is missing. Kindling serves from Linux
// only; elsewhere (a developer's machine) a power loss may leave an unpacked
// tree incomplete, which is not worth an fsync per file. Zips are always
// fsynced.
func syncFS(dir string) error { return nil }
