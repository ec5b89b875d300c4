package e2e

// Finding a function's sandbox on the host when the server runs gVisor
// sandboxes (KINDLING_E2E_SANDBOX=gvisor). The function's processes live in
// gVisor's user-space kernel: the host sees only each sandbox's sentry
// (runsc-sandbox), its gofer (runsc-gofer) and the systrap stubs that run
// the function's instructions, none of which carries the function's
// environment. So the environment is read from inside: `runsc exec` runs
// cat over /proc/*/environ in the sandbox (once per sandbox; a sandbox's
// processes and their environments are cached once its runtime is there),
// and a sandbox whose processes carry the assignment counts with all its
// host processes, the stubs first (their cpu cgroup is the one that caps
// the function's own share).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// gvisorSandbox is one running gVisor sandbox of this test run.
type gvisorSandbox struct {
	sentry int
	id     string
	flags  []string // runsc's global flags, as the sandbox was started with
}

var gvisorEnvs struct {
	mu sync.Mutex // held for all of gvisorProcessesWith
	// env caches, per sentry pid and sandbox id, the environment
	// assignments of the sandbox's processes.
	env map[string]map[string]bool
}

// gvisorProcessesWith returns the host processes of the gVisor sandboxes of
// this run in which a process has the environment assignment kv. For the
// run's own marker (E2E_RUN_ID), every sandbox of the run counts, whether or
// not it can still be asked.
func gvisorProcessesWith(kv string) []int {
	var pids []int
	for _, sb := range gvisorSandboxesWith(kv) {
		pids = append(pids, sb.hostProcesses()...)
	}
	return pids
}

// gvisorSandboxesWith returns the gVisor sandboxes of this run in which a
// process has the environment assignment kv (every sandbox of the run for
// the run's own marker).
func gvisorSandboxesWith(kv string) []gvisorSandbox {
	gvisorEnvs.mu.Lock()
	defer gvisorEnvs.mu.Unlock()
	if gvisorEnvs.env == nil {
		gvisorEnvs.env = map[string]map[string]bool{}
	}
	var out []gvisorSandbox
	for _, sb := range gvisorSandboxes() {
		if kv != "E2E_RUN_ID="+runID {
			key := fmt.Sprintf("%d/%s", sb.sentry, sb.id)
			env, ok := gvisorEnvs.env[key]
			if !ok {
				env = sb.environment()
				if env["E2E_RUN_ID="+runID] { // the runtime has started
					gvisorEnvs.env[key] = env
				}
			}
			if !env[kv] {
				continue
			}
		}
		out = append(out, sb)
	}
	return out
}

// gvisorSandboxes lists the sentries on the host whose runsc root is under
// this run's directory.
func gvisorSandboxes() []gvisorSandbox {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []gvisorSandbox
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.HasPrefix(cmdline, []byte("runsc-sandbox\x00")) {
			continue
		}
		// runsc-sandbox GLOBAL-FLAGS... boot BOOT-FLAGS... ID
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")[1:]
		sb := gvisorSandbox{sentry: pid, id: args[len(args)-1]}
		ours := false
		for _, a := range args {
			if a == "boot" {
				break
			}
			if root, ok := strings.CutPrefix(a, "--root="); ok && strings.HasPrefix(root, workDir+"/") {
				ours = true
			}
			sb.flags = append(sb.flags, a)
		}
		if ours {
			out = append(out, sb)
		}
	}
	return out
}

// environment returns the environment assignments of every process in the
// sandbox that it may read (nil if runsc exec fails: the sandbox is being
// made or destroyed).
func (sb gvisorSandbox) environment() map[string]bool {
	sb.thaw()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append(append([]string{}, sb.flags...), "exec", sb.id,
		"/bin/sh", "-c", "cat /proc/[0-9]*/environ 2>/dev/null; exit 0")
	// The sentry's own executable is the server's runsc.
	out, err := exec.CommandContext(ctx, fmt.Sprintf("/proc/%d/exe", sb.sentry), args...).Output()
	if err != nil {
		return nil
	}
	env := map[string]bool{}
	for _, v := range bytes.Split(out, []byte{0}) {
		env[string(v)] = true
	}
	return env
}

// hostProcesses lists the sandbox's host processes from its memory cgroup:
// the systrap stubs first, then the sentry and the gofer.
func (sb gvisorSandbox) hostProcesses() []int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", sb.sentry))
	if err != nil {
		return nil
	}
	var path string
	for _, line := range strings.Split(string(data), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && parts[1] == "memory" {
			path = parts[2]
		}
	}
	procs, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", path, "cgroup.procs"))
	if path == "" || err != nil {
		return []int{sb.sentry}
	}
	var stubs, runsc []int
	for _, f := range strings.Fields(string(procs)) {
		pid, _ := strconv.Atoi(f)
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if pid == sb.sentry || bytes.HasPrefix(cmd, []byte("runsc-")) {
			runsc = append(runsc, pid)
		} else {
			stubs = append(stubs, pid)
		}
	}
	return append(stubs, runsc...)
}

// freezerCgroup is the sandbox's cgroup v1 freezer directory ("" if the
// sentry is gone or there is no freezer hierarchy).
func (sb gvisorSandbox) freezerCgroup() string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", sb.sentry))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && parts[1] == "freezer" {
			return filepath.Join("/sys/fs/cgroup/freezer", parts[2])
		}
	}
	return ""
}

// freezerState is the sandbox's freezer.state (THAWED, FREEZING, FROZEN),
// "" if it cannot be read.
func (sb gvisorSandbox) freezerState() string {
	dir := sb.freezerCgroup()
	if dir == "" {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(dir, "freezer.state"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// thaw thaws the sandbox if the server froze it while idle (runsc exec
// needs a running sentry); the server's next Acquire thaws it anyway.
func (sb gvisorSandbox) thaw() {
	if dir := sb.freezerCgroup(); dir != "" {
		os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0o644) //nolint:errcheck // best effort
	}
}
