package gvisor

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// EROFS images (see the package documentation, "File systems"): when the
// root filesystem has an image made from the same tree (RootFS+".erofs",
// made by scripts/build-rootfs.sh) and mkfs.erofs is installed, every file
// system of a sandbox is an EROFS image the sentry reads itself (the root,
// the agent, the code at /var/task, and an empty image under /tmp's
// overlay), and runsc starts no gofer process.
const (
	// imageSuffix names an image: RootFS+imageSuffix, CodeDir+imageSuffix.
	imageSuffix = ".erofs"
	// imagesDir, under StateDir, holds the backend's own images.
	imagesDir  = ".erofs"
	agentImage = "agent.erofs"
	tmpImage   = "tmp.erofs"
	// imageUUID is every image's file system UUID (see make).
	imageUUID = "6b696e64-6c69-6e67-0000-000000000000"
)

// images is the backend's EROFS layout; nil when it uses bind mounts served
// by a gofer.
type images struct {
	mkfs   string // mkfs.erofs
	rootfs string // RootFS's image
	agent  string // the agent, alone, at agentMount
	tmp    string // an empty directory (mode 1777), /tmp's lower layer

	// codeMu serialises the making of code images, striped by path.
	codeMu [16]sync.Mutex
}

// rootFSImage returns the EROFS image of rootfs if scripts/build-rootfs.sh
// made it from the tree as it is now (its stamp is a copy of the tree's).
func rootFSImage(rootfs string) (string, bool) {
	img := rootfs + imageSuffix
	want, err := os.ReadFile(filepath.Join(rootfs, stampFile))
	if err != nil {
		return "", false
	}
	got, err := os.ReadFile(img + ".stamp")
	if err != nil || !bytes.Equal(got, want) {
		return "", false
	}
	if fi, err := os.Stat(img); err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	return img, true
}

// goferlessPatch is the runsc patch without which runsc cannot start a
// sandbox whose submounts are EROFS images and no gofer (upstream passes
// the root's image only): scripts/build-runsc.sh names the patches it
// applied on the second line of runsc's stamp, "applied=a b c".
const goferlessPatch = "goferless-erofs-submounts"

// runscApplies reports whether the runsc at path was built by
// scripts/build-runsc.sh with the named patch (false without a stamp).
func runscApplies(path, patch string) bool {
	b, err := os.ReadFile(path + ".stamp")
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if names, ok := strings.CutPrefix(line, "applied="); ok {
			return slices.Contains(strings.Fields(names), patch)
		}
	}
	return false
}

// newImages sets up the EROFS layout for cfg, or returns nil (bind mounts
// and a gofer) when the root filesystem has no current image, mkfs.erofs
// is missing, or runsc lacks goferlessPatch. It makes the agent's and
// /tmp's images under StateDir.
func newImages(cfg Config) (*images, error) {
	rootfs, ok := rootFSImage(cfg.RootFS)
	if !ok || !runscApplies(cfg.Runsc, goferlessPatch) {
		return nil, nil
	}
	mkfs, err := exec.LookPath("mkfs.erofs")
	if err != nil {
		return nil, nil
	}
	im := &images{mkfs: mkfs, rootfs: rootfs}
	dir := filepath.Join(cfg.StateDir, imagesDir)
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	// The agent's image: a directory (0755) holding only the agent.
	src := filepath.Join(dir, "agent")
	if err := os.Mkdir(src, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(src, 0o755); err != nil { // whatever the umask
		return nil, err
	}
	if err := installAgent(filepath.Join(cfg.StateDir, agentDir, agentName), filepath.Join(src, agentName)); err != nil {
		return nil, err
	}
	im.agent = filepath.Join(dir, agentImage)
	if err := im.make(im.agent, src, 0); err != nil {
		return nil, err
	}
	// /tmp's lower layer: an empty directory, mode 1777 like /tmp.
	src = filepath.Join(dir, "tmp")
	if err := os.Mkdir(src, 0o777); err != nil {
		return nil, err
	}
	if err := os.Chmod(src, 0o1777); err != nil {
		return nil, err
	}
	im.tmp = filepath.Join(dir, tmpImage)
	if err := im.make(im.tmp, src, 0); err != nil {
		return nil, err
	}
	return im, nil
}

// make writes the image of directory src to img (through a temporary file
// renamed into place). Uncompressed and without inline data: gVisor's EROFS
// reader maps file data straight from the image, which it supports for
// block-aligned data only. The image is a function of src's content and
// mtime alone (every file, and the superblock, get that time; the UUID is
// fixed; the host files' extended attributes are left out), so that a
// remade image (a restarted server) is the same image:
// runsc restore checks that an EROFS mount's superblock is the one
// checkpointed.
func (im *images) make(img, src string, mtime int64) error {
	tmp, err := os.CreateTemp(filepath.Dir(img), filepath.Base(img)+".tmp-")
	if err != nil {
		return err
	}
	tmp.Close()
	out, err := exec.Command(im.mkfs, "--quiet", "-E", "noinline_data", "-x", "-1",
		"-T", strconv.FormatInt(mtime, 10), "-U", imageUUID, tmp.Name(), src).CombinedOutput()
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), img)
	}
	if err != nil {
		os.Remove(tmp.Name()) //nolint:errcheck // best effort; the mkfs error is the one to report
		return fmt.Errorf("mkfs.erofs %s: %w: %s", src, err, bytes.TrimSpace(out))
	}
	return nil
}

// code returns the image of a function's code directory, CodeDir+".erofs"
// beside it (internal/codestore removes it with the code), made on first
// use and remade if the directory changed since (for code directories
// outside the code store: the store's are never modified).
func (im *images) code(codeDir string) (string, error) {
	img := filepath.Clean(codeDir) + imageSuffix
	h := fnv.New32a()
	h.Write([]byte(img))
	mu := &im.codeMu[h.Sum32()%uint32(len(im.codeMu))]
	mu.Lock()
	defer mu.Unlock()
	dir, err := os.Stat(codeDir)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(img); err == nil && !fi.ModTime().Before(dir.ModTime()) {
		return img, nil
	}
	// Every file's time is 0 (1970), as in the agent's image: the image
	// depends on the code alone, so that a snapshot restores over a code
	// directory unpacked again (or a copy). A bind mount showed when the
	// code store unpacked the tree, which was not the zip's time either.
	if err := im.make(img, codeDir, 0); err != nil {
		return "", err
	}
	return img, nil
}
