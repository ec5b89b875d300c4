package gvisor

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRunscApplies(t *testing.T) {
	dir := t.TempDir()
	runsc := filepath.Join(dir, "runsc")
	if runscApplies(runsc, goferlessPatch) {
		t.Error("no stamp: applies")
	}
	for stamp, want := range map[string]bool{
		"gvisor.dev/gvisor v0 go1 seccomp=precompiled patches=abc\n":                                             false,
		"gvisor.dev/gvisor v0 go1 seccomp=precompiled patches=abc\napplied=a goferless-erofs-submounts b\n":      true,
		"gvisor.dev/gvisor v0 go1 seccomp=precompiled patches=abc\napplied=goferless-erofs-submounts-not-this\n": false,
	} {
		if err := os.WriteFile(runsc+".stamp", []byte(stamp), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := runscApplies(runsc, goferlessPatch); got != want {
			t.Errorf("stamp %q: %v, want %v", stamp, got, want)
		}
	}
}

// TestRootFSImage: the image counts only with a stamp equal to the tree's.
func TestRootFSImage(t *testing.T) {
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(rootfs, stampFile), "format=2\nbuilt=1\n")
	if _, ok := rootFSImage(rootfs); ok {
		t.Error("no image: found")
	}
	write(rootfs+imageSuffix, "img")
	write(rootfs+imageSuffix+".stamp", "format=2\nbuilt=0\n")
	if _, ok := rootFSImage(rootfs); ok {
		t.Error("image of an older tree: found")
	}
	write(rootfs+imageSuffix+".stamp", "format=2\nbuilt=1\n")
	if img, ok := rootFSImage(rootfs); !ok || img != rootfs+imageSuffix {
		t.Errorf("current image: %q %v", img, ok)
	}
}
