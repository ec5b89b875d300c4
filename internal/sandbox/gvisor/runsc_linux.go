package gvisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runscTimeout bounds runsc commands that do not start a sandbox (delete,
// list, checkpoint): they talk to a sandbox over its control socket and
// must not hang a teardown.
const runscTimeout = 30 * time.Second

// runsc runs the runsc binary with the backend's global flags.
type runsc struct {
	path  string
	root  string   // --root: runsc's state directory
	extra []string // Config.RunscFlags
}

// globalFlags are the flags of every runsc command. They must be the same
// for every command on one container: runsc reads its configuration from
// them, not from its state.
func (r *runsc) globalFlags() []string {
	return append([]string{
		"--root=" + r.root,
		// The platform that works here without KVM, and the default; named
		// so that a changed default cannot surprise.
		"--platform=systrap",
		// A loopback of its own and no other network device.
		"--network=none",
		// Apply the spec's seccomp profile (seccomp.go) inside the sentry.
		"--oci-seccomp",
	}, r.extra...)
}

// command returns a runsc command with the global flags, then flags (more
// global flags for this command only), then args; the caller sets its I/O.
func (r *runsc) command(ctx context.Context, flags []string, args ...string) *exec.Cmd {
	all := append(append(r.globalFlags(), flags...), args...)
	cmd := exec.CommandContext(ctx, r.path, all...)
	cmd.WaitDelay = time.Second
	return cmd
}

// run runs a runsc command to completion, returning its output in the
// error when it fails.
func (r *runsc) run(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, runscTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := r.command(ctx, nil, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("runsc %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return out.Bytes(), nil
}

// delete removes container id whatever its state (killing it if it runs).
// A container runsc does not know is not an error.
func (r *runsc) delete(ctx context.Context, id string) error {
	out, err := r.run(ctx, "delete", "--force", id)
	if err != nil && bytes.Contains(out, []byte("does not exist")) {
		return nil
	}
	return err
}

// forget removes container id from runsc's root. When its sandbox process
// is known to have exited (gone, its gofer killed with its cgroups), the
// state is removed directly: `runsc delete` would first wait, polling every
// 100 ms, until the exited sandbox process is reaped, and its new parent
// (init, since `runsc run` exits at once) may take seconds to do so (1.5 to
// 1.8 s with this machine's init). The files are those of the pinned runsc
// (sandbox.go, container/state_file.go); if they are not where expected,
// or the sandbox may still run, `runsc delete --force` does it.
func (r *runsc) forget(ctx context.Context, id string, exited bool) error {
	base := filepath.Join(r.root, id+"_sandbox:"+id)
	sock := filepath.Join(r.root, "runsc-"+id+".sock")
	if !exited || !exists(base+".state") || !exists(sock) {
		return r.delete(ctx, id)
	}
	var errs []error
	for _, f := range []string{sock, base + ".state", base + ".lock"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// list returns the ids of the containers in runsc's root.
func (r *runsc) list(ctx context.Context) ([]string, error) {
	out, err := r.run(ctx, "list", "--quiet")
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// version returns the first line of `runsc --version`.
func (r *runsc) version(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, runscTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, r.path, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w: %s", r.path, err, bytes.TrimSpace(out))
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line), nil
}
