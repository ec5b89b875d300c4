package codestore

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes the filesystem holding dir (every file written under it
// included) with one syncfs(2), far cheaper than an fsync per file of a tree
// that may hold tens of thousands.
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = unix.Syncfs(int(d.Fd()))
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
