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
//	               what RLIMIT_NPROC allows); CPU quotas in the cpu hierarchy,
//	               set once the sandbox has started (see "CPU" below):
//	               <id> = the whole sandbox, <id>/function = the stubs
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
// # CPU
//
// Lambda gives a function CPU in proportion to its memory: one vCPU at
// 1769 MB, 7% of one at 128 MB. In a Firecracker microVM that share caps the
// vCPU, on which the guest kernel also runs: a system call costs the tenant
// a few hundred nanoseconds of its own share, and the VMM's device
// emulation is small next to it. In gVisor the guest kernel is the sentry, a
// host process: each system call of the function is a systrap round trip of
// several microseconds, and the sentry has fixed costs of its own. Measured
// here: ~1.5 ms of host CPU per warm invoke of an aws-lambda-go echo
// function (process backend: ~0.3 ms), ~2.5% of a CPU for an idle sandbox
// (the sentry's timers and Go runtime; the same with /bin/sleep inside).
// With the whole sandbox under a 128 MB share (7.2 ms per 100 ms period), a
// warm echo invoke took 1 ms or 80-90 ms, alternately (CFS throttling), the
// runtime's init ~500 ms, and a shell runtime missed the init limit.
//
// So the sentry is accounted separately, on top of the function's share:
//
//	<cpu>/<CgroupParent>/<id>           sandboxQuota: share + max(share, 25% of a CPU)
//	<cpu>/<CgroupParent>/<id>/function  cpuQuota: share = MemoryMB/1769 of a CPU
//
// The function's own instructions run natively in the systrap stub
// processes, which Create moves into the child cgroup (every later stub is
// cloned from the first one, so it is born there): the tenant never gets
// more than its Lambda share of computation. The sentry and the gofer stay
// in the parent, whose quota bounds the whole sandbox: the function's share
// plus as much again for the sentry (the tax of a user-space kernel, paid by
// the platform rather than the tenant, the way the VMM's is), with a floor
// of a quarter CPU so that a small function's fixed costs fit in one period.
// A syscall-heavy function can thus make its sandbox use up to twice its
// share (at least share + 25%); capacity planning counts that (the worker
// sells memory, and CPU follows it at 1769 MB per CPU, plus this overhead).
// Measured after the change at 128 MB: warm echo invokes 1-2 ms, init
// ~70 ms.
//
// # Lifecycle
//
// A Sandbox follows package sandbox's states. Create: bundle, socketpair and
// log pipe, `runsc run --detach` (create and start in one process), then the
// CPU quotas are written and the stubs moved (see "CPU"). The quotas come
// last on purpose: with them in the spec, the sentry's own start (the Go
// runtime, seccomp compilation) runs at a small function's share of a CPU
// and took over a second at 128 MB instead of ~0.2 s. Done is driven by a pidfd of
// the sandbox process (runsc-sandbox) in Go's poller; the sandbox process
// exits when the agent does. Kill signals that process and everything in
// the sandbox's cgroups (no runsc involved, so a wedged sandbox dies too);
// Destroy kills, waits for Done, removes the cgroups, runsc's state (see
// runsc.forget: `runsc delete` would wait for the killed process to be
// reaped by init, seconds here) and the state directory. Checkpoint lifts
// the CPU quotas while the sentry saves itself. Reap kills and removes
// every cgroup under the parent (the function children first, which runsc
// does not know), then deletes every container in runsc's root and empties
// StateDir.
package gvisor
