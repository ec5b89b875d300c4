// Package gvisor is the strong-isolation sandbox backend: every sandbox is
// its own gVisor sandbox, run by runsc (the systrap platform) from a pinned
// gVisor built with the go command (scripts/build-runsc.sh, tools/runsc).
// The function's system calls are served by gVisor's user-space kernel (the
// sentry), which is itself confined by seccomp, namespaces and cgroups; the
// host kernel sees only the sentry and its file proxy (the gofer).
//
// # Sandbox layout
//
// Create writes one OCI bundle per sandbox, StateDir/<id>/config.json:
//
//	/              RootFS, the shared base userland (scripts/build-rootfs.sh), read-only
//	/var/task      Spec.CodeDir, read-only bind
//	/tmp           StateDir/<id>/tmp, empty, overlaid by runsc with a tmpfs of
//	               EphemeralMB whose pages live in an unlinked host file under
//	               StateDir/<id> (--overlay2=all:dir=...): limited like Lambda's
//	               /tmp, and page cache the kernel can write back rather than
//	               the function's memory
//	/srv           StateDir/.agent, read-only bind holding only kindling-agent
//	/proc /dev /sys  gVisor's own (sysfs read-only)
//	process        /srv/kindling-agent as PID 1, uid/gid 993, no capabilities,
//	               no new privileges, RLIMIT_NOFILE 1024, an OCI seccomp deny
//	               list applied inside the sentry (seccomp.go)
//	network        none: a loopback of its own and nothing else
//	limits         RLIMIT_NPROC 1024 (processes and threads, enforced by the
//	               sentry with EAGAIN)
//	cgroups (v1)   <CgroupParent>/<id> in every hierarchy: memory.limit =
//	               MemoryMB (sentry and gofer included), pids.max = 4096 (host
//	               tasks: sentry, gofer, one systrap stub per address space; the
//	               sentry panics if it cannot make a stub, so this stays above
//	               what RLIMIT_NPROC allows), cpu quota = MemoryMB/1769 of a
//	               CPU (set once the sandbox has started, see below)
//
// runsc keeps its state under StateDir/.runsc (its --root); the gofer's
// bind mounts live in its own mount namespace, so the host sees no mount.
// Mount points must exist in RootFS: runsc's gofer creates a missing one in
// the host tree, which the shared read-only userland must never get.
//
// # The channel
//
// The worker's channel to the agent is the agent's standard input: one end
// of a Unix stream socketpair that `runsc run` (or `runsc restore`) hands to
// the sandbox as the container's stdin. The agent finds it through
// KINDLING_AGENT_FD=0 and reads and writes it like the fd 3 of the process
// backend; its stdout and stderr go to a pipe whose tail the worker keeps
// (AgentOutput). Nothing listens anywhere: no host socket file, no
// --host-uds, no network device.
//
// Why stdio: a sandbox that listens on a host Unix socket cannot be
// checkpointed, and a failed checkpoint kills it. gVisor saves a donated
// stdio socket as a host-FD-backed endpoint and, on restore, binds it to the
// stdio of the restoring runsc at the same sentry descriptor (gVisor's
// startingStdioFD): the restored agent keeps reading and writing "its"
// descriptor, now connected to a fresh socketpair of the restoring worker.
// TestCheckpointRestore shows it with the probe agent: checkpoint ~60 ms,
// the old channel reads EOF, and each of two clones restored from one image
// answers on its own new channel (~200 ms after Restore began) with the
// memory and /tmp it had. Alternatives: an agent dialling out to a
// bind-mounted host socket (--host-uds=open) checkpoints too (tried: the
// connection is dropped at save and the agent must redial), but needs a
// socket file per sandbox, a flag that opens host sockets to the sandbox
// and a reconnect protocol; runsc's --pass-fd exists only on `run` and
// `restore` cannot donate the descriptor again (gVisor's host inode panics
// on restore without it); TCP over a veth gives up "no network but its own
// loopback".
//
// Caveat: bytes in flight in the host socket at checkpoint time are not
// part of the image. Checkpoint only when the channel is quiet both ways
// (the agent waits for the worker, the worker has read everything). The
// agent cannot tell it was restored: the worker says so with its first
// frame after Restore.
//
// # Lifecycle
//
// A Sandbox follows package sandbox's states. Create: bundle, socketpair and
// log pipe, `runsc run --detach` (create and start in one process), then the
// CPU quota is written to the sandbox's cpu cgroup. The quota comes last on
// purpose: with it in the spec, the sentry's own start (the Go runtime,
// seccomp compilation) runs at a small function's share of a CPU and took
// over a second at 128 MB instead of ~0.2 s. Done is driven by a pidfd of
// the sandbox process (runsc-sandbox) in Go's poller; the sandbox process
// exits when the agent does. Kill signals that process and everything in
// the sandbox's cgroups (no runsc involved, so a wedged sandbox dies too);
// Destroy kills, waits for Done, removes the cgroups, runsc's state (see
// runsc.forget: `runsc delete` would wait for the killed process to be
// reaped by init, seconds here) and the state directory. Checkpoint lifts
// the CPU quota while the sentry saves itself. Reap lists runsc's root and
// deletes every container in it, then empties the cgroup parent and
// StateDir.
package gvisor
