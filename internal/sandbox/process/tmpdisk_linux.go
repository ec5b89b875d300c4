package process

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Disk-backed /tmp. A tmpfs /tmp is charged to the memory cgroup of the
// process that writes it, so a function writing to /tmp spends its
// MemorySize, and cannot swap it out (Lambda's /tmp does not count against
// memory). Instead each sandbox gets a sparse ext4 image of EphemeralMB
// in its state directory, copied from a template formatted once per size,
// attached to a loop device and mounted at /tmp. Written pages are page
// cache, charged to the sandbox too but reclaimable: writeback frees them.
//
// All the work happens on the host in Create while the agent boots: copy,
// loop device, and the ext4 mount itself, made with the new mount API as a
// detached mount (fsopen, fsconfig, fsmount) that never appears in the
// server's mount namespace. Its descriptor travels to the agent with the
// go-ahead (SCM_RIGHTS) and the agent attaches it at /tmp with move_mount
// after pivot_root (~10 us instead of the ~0.5 ms of an ext4 mount on its
// critical path). The loop device detaches by itself (LO_FLAGS_AUTOCLEAR)
// once the file system is gone: with the sandbox's mount namespace, or
// when the last descriptor of a mount never attached is closed.

// tmpImageName is the per-sandbox /tmp image in StateDir/<id>.
const tmpImageName = "tmp.img"

// templatesDir holds one formatted image per size, in StateDir. Its name
// cannot be a sandbox id ([a-z0-9-]).
const templatesDir = ".tmp-templates"

// tmpImages makes and caches the templates.
type tmpImages struct {
	dir  string     // StateDir/.tmp-templates
	mu   sync.Mutex // guards made; held while a template is made
	made map[int]string
}

// template returns the template image of mb MiB, making it on first use.
func (t *tmpImages) template(mb int) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.made[mb]; ok {
		return p, nil
	}
	p := filepath.Join(t.dir, strconv.Itoa(mb)+".img")
	if _, err := os.Stat(p); err != nil {
		if err := makeTemplate(t.dir, p, mb); err != nil {
			return "", fmt.Errorf("/tmp template of %d MiB: %w", mb, err)
		}
	}
	if t.made == nil {
		t.made = map[int]string{}
	}
	t.made[mb] = p
	return p, nil
}

// makeTemplate formats an ext4 file system of mb MiB in path: no journal
// (the file system dies with its sandbox), no reserved blocks, no room to
// grow (resize_inode would reserve ~4 MiB of descriptor blocks for 10 GiB),
// 4 KiB blocks (loop direct I/O), lazily initialised inode tables. The
// image stays sparse: ~130 KiB of data for 512 MiB, ~230 KiB for 10 GiB.
// Its root is then made 1777 and emptied of lost+found, through a
// temporary mount.
func makeTemplate(dir, path string, mb int) (err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := path + ".new"
	// mkfs writes into an existing file without punching holes: start
	// from nothing, not from a crashed attempt.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	defer func() {
		if err != nil {
			if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
		}
	}()
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		return fmt.Errorf("%w (install e2fsprogs)", err)
	}
	out, err := exec.Command(mkfs, "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0",
		"-O", "^has_journal,^resize_inode", "-E", "lazy_itable_init=1,nodiscard", tmp, strconv.Itoa(mb)+"M").CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4: %v: %s", err, out)
	}
	loop, err := attachLoop(tmp)
	if err != nil {
		return err
	}
	defer loop.Close()
	mnt, err := os.MkdirTemp(dir, "mnt-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	if err := unix.Mount(loop.Name(), mnt, "ext4", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount template: %w", err)
	}
	err = errors.Join(os.Chmod(mnt, 0o1777), os.Remove(filepath.Join(mnt, "lost+found")))
	if uerr := unix.Unmount(mnt, 0); uerr != nil {
		err = errors.Join(err, fmt.Errorf("unmount template: %w", uerr))
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// prepare copies the template of mb MiB to dst, attaches it to a loop
// device and returns a detached mount of it (an O_PATH-like mount
// descriptor from fsmount), nosuid and nodev.
func (t *tmpImages) prepare(mb int, dst string) (*os.File, error) {
	tmpl, err := t.template(mb)
	if err != nil {
		return nil, err
	}
	if err := copySparse(tmpl, dst); err != nil {
		return nil, fmt.Errorf("copy /tmp image: %w", err)
	}
	loop, err := attachLoop(dst)
	if err != nil {
		return nil, err
	}
	defer loop.Close() // the superblock holds the device once created
	fsfd, err := unix.Fsopen("ext4", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, step(err, "fsopen ext4")
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "source", loop.Name()); err != nil {
		return nil, step(err, "fsconfig source %s", loop.Name())
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, step(err, "create ext4 on %s", loop.Name())
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return nil, step(err, "fsmount")
	}
	return os.NewFile(uintptr(mfd), "tmp-mount"), nil
}

// copySparse copies the data extents of src into a new file dst of the
// same size, leaving the holes as holes.
func copySparse(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := out.Truncate(fi.Size()); err != nil {
		return err
	}
	ifd, ofd := int(in.Fd()), int(out.Fd())
	for off := int64(0); off < fi.Size(); {
		data, err := unix.Seek(ifd, off, unix.SEEK_DATA)
		if err == unix.ENXIO { // no data after off
			return nil
		}
		if err != nil {
			return err
		}
		hole, err := unix.Seek(ifd, data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		roff, woff := data, data
		for n := hole - data; n > 0; {
			k, err := unix.CopyFileRange(ifd, &roff, ofd, &woff, int(n), 0)
			if err != nil {
				return err
			}
			if k == 0 {
				return io.ErrUnexpectedEOF
			}
			n -= int64(k)
		}
		off = hole
	}
	return nil
}

// attachLoop attaches image to a free loop device with LOOP_CONFIGURE
// (autoclear, direct I/O, 4 KiB blocks) and returns the device open.
func attachLoop(image string) (*os.File, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	img, err := os.OpenFile(image, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer img.Close() // the loop device holds its own reference
	for range 16 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
		}
		dev, err := os.OpenFile("/dev/loop"+strconv.Itoa(n), os.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(img.Fd()), Size: 4096}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR | unix.LO_FLAGS_DIRECT_IO
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if err == nil {
			return dev, nil
		}
		dev.Close()
		if err != unix.EBUSY { // EBUSY: another sandbox took it first
			return nil, fmt.Errorf("LOOP_CONFIGURE %s: %w", dev.Name(), err)
		}
	}
	return nil, errors.New("no free loop device")
}

// mountTmpDisk attaches the detached mount fd (received with the
// go-ahead) at /tmp, after pivot_root, and closes fd.
func mountTmpDisk(fd int) error {
	err := unix.MoveMount(fd, "", unix.AT_FDCWD, "/tmp", unix.MOVE_MOUNT_F_EMPTY_PATH)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = cerr
	}
	return step(err, "attach /tmp")
}
