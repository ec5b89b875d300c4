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
// # Checkpoint and restore
//
// Checkpoint writes an uncompressed image (`runsc checkpoint
// --compression=none`): checkpoint.img (the kernel's state), pages_meta.img
// and pages.img (the memory, page-aligned). Restore runs `runsc restore
// --detach --background`: the sentry loads the kernel's state, starts the
// function, and loads the memory from pages.img in the background, serving
// faults on pages not loaded yet first. runsc ignores --background for a
// compressed image, whose memory is inside checkpoint.img and must be
// decompressed whole before anything runs. The descriptors of the image
// files are opened by `runsc restore` and kept by the sandbox until its
// memory is loaded: the files must not be modified while sandboxes
// restored from them run (unlinking them is harmless), and any number of
// sandboxes may restore one image at the same time (TestRestoreConcurrent).
// A restored sandbox gets the memory limit from its spec (runsc creates
// its cgroups as for Create) and the CPU quotas once runsc restore returns,
// the stubs moved into the function cgroup as after Create: the restore
// itself runs at full speed, like a sandbox's start.
//
// A restore has two halves of similar cost: making the sandbox (the
// sandbox and gofer processes, their namespaces, seccomp, mounts: what
// `runsc create` does, ~100-130 ms here) and restoring into it (loading the
// kernel's state, ~100 ms). Backend.Restore does both with one runsc
// command. Backend.Prepare does the first half ahead of time (a Prepared
// holds an idle sandbox with its channel and memory limit, running
// nothing) and (*Prepared).Restore the second, with `runsc restore` on the
// created container: a worker that expects restores of a function version
// can keep one prepared.
//
// Measured (BenchmarkRestore, 2-CPU VM, image in the page cache, probe
// filled with random bytes, medians of 10, time from the call to the
// probe's answer to a read of 8 pages spread over that memory; runs vary by
// ±20 ms):
//
//	                                     64 MiB   256 MiB   (1 MiB)
//	Restore, flate (runsc's default)     245-280  330-340   240
//	Restore, none                        234-277  291-294   260
//	Restore, none --background           229-252  295-352   227
//	Prepared.Restore, flate              138      227
//	Prepared.Restore, none --background  131-135  235
//	  same with --direct (O_DIRECT)      151      348
//
// The fixed part dominates: ~225 ms even for 1 MiB of memory, ~135 ms
// after Prepare, of which the kernel state's load is ~40-50 ms and the
// sentry's platform and seccomp set-up ~20 ms. What grows with the image is
// not the copy on the critical path (--background takes it off) but CPU
// contention on this 2-CPU machine: this gVisor loads pages with 128
// parallel reads (stateio.pagesFileFDDefaultMaxParallel), whose copying
// starves the thread loading the kernel's state (136 ms instead of ~50 for
// 256 MiB, the end of page loading and of the kernel load coinciding in
// runsc's debug log). There is no flag for that; on more CPUs, or with a
// runsc whose page loader is bounded by the CPU count, the restore no
// longer grows with the image. flate costs the same on random bytes (it
// stores incompressible blocks as they are) but must decompress real
// memory whole before anything runs, and checkpoints slower (2.4 s against
// 2.0 s for 256 MiB); --direct reads from the disk instead of the page
// cache and makes the first faults wait.
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
// the CPU quotas while the sentry saves itself. Restore is `runsc restore`
// instead of `runsc run`; Prepare is `runsc create`, and Prepared.Restore
// `runsc restore` on that container; both set the CPU quotas afterwards
// (see "Checkpoint and restore"). Reap kills and removes
// every cgroup under the parent (the function children first, which runsc
// does not know), then deletes every container in runsc's root and empties
// StateDir.
package gvisor
