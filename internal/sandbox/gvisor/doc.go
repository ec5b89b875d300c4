// Package gvisor is the strong-isolation sandbox backend: every sandbox is
// its own gVisor sandbox, run by runsc (the systrap platform) from a pinned
// gVisor built with the go command (scripts/build-runsc.sh, tools/runsc).
// The function's system calls are served by gVisor's user-space kernel (the
// sentry), which is itself confined by seccomp, namespaces and cgroups; the
// host kernel sees only the sentry and, when the root filesystem has no
// EROFS image, its file proxy (the gofer; see "File systems").
//
// # Sandbox layout
//
// Create writes one OCI bundle per sandbox, StateDir/<id>/config.json:
//
//	/              RootFS, the shared base userland (scripts/build-rootfs.sh), read-only
//	               (its EROFS image RootFS.erofs in the EROFS layout, below)
//	/var/task      Spec.CodeDir, read-only bind (EROFS: CodeDir.erofs)
//	/tmp           StateDir/<id>/tmp, empty, overlaid by runsc with a tmpfs of
//	               EphemeralMB whose pages live in an unlinked host file under
//	               StateDir/<id> (--overlay2=all:dir=...): limited like Lambda's
//	               /tmp, and page cache the kernel can write back rather than
//	               the function's memory (EROFS: the same overlay over
//	               StateDir/.erofs/tmp.erofs, an empty image)
//	/srv           StateDir/.agent, read-only bind holding only kindling-agent
//	               (EROFS: StateDir/.erofs/agent.erofs)
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
// # File systems
//
// New picks one of two layouts. The EROFS layout, when RootFS has an image
// made from the tree as it is (RootFS.erofs, whose RootFS.erofs.stamp is a
// copy of the tree's stamp: scripts/build-rootfs.sh makes both), mkfs.erofs
// (Debian's erofs-utils, which the script installs) is on PATH and runsc
// was built with goferless-erofs-submounts.patch (its stamp from
// scripts/build-runsc.sh names the patches applied; without that patch
// runsc would start such a sandbox with its root image only, and fail):
// every file system of a sandbox is an EROFS image, and runsc starts no
// gofer process. Otherwise the bind layout: host directories bound into
// the sandbox and served by a gofer, as before (erofs_linux.go, spec.go).
//
//	/          RootFS.erofs, through runsc's rootfs hint (the annotations
//	           dev.gvisor.spec.rootfs.source and .type=erofs; Root.Path
//	           stays the tree, unused)
//	/var/task  CodeDir.erofs, beside the code store's tree, made by the
//	           backend at the first sandbox of a code version (mkfs.erofs,
//	           ~60 ms for the 8 MB aws-lambda-go echo function on this
//	           loaded machine; it grows with the code: the first cold start
//	           of a large version pays it once) and removed with the tree by
//	           internal/codestore; if it cannot be made, /var/task is a
//	           bind mount and that sandbox has a gofer
//	/srv       StateDir/.erofs/agent.erofs, made at New
//	/tmp       StateDir/.erofs/tmp.erofs, an empty directory (1777) made
//	           at New, under the same --overlay2 upper layer as before: a
//	           tmpfs of EphemeralMB in an unlinked host file of
//	           StateDir/<id>
//
// The images are uncompressed and without inline data (gVisor maps file
// data straight from the image, block-aligned data only) and reproducible:
// every file's time is 0 and the UUID fixed, so that an image made again
// (a restarted server, the code unpacked again) is byte for byte the same:
// runsc restore refuses an EROFS mount whose superblock differs from the
// checkpointed one (a snapshot that no longer matches fails to restore, and
// the worker falls back to a normal init and remakes it).
//
// What serves files then is the sentry itself: runsc opens each image
// read-only and hands the descriptors to the sandbox at start (with the
// /tmp filestore, a host file runsc creates), and the sentry parses the
// images with gVisor's EROFS reader and maps file data from them, so text
// and read-only data of the rootfs, the agent and the code are page cache
// of one image file shared by every sandbox. runsc upstream starts no gofer
// when no mount needs lisafs, but supported an EROFS root only;
// tools/runsc/patches/goferless-erofs-submounts.patch passes the
// submounts' images and creates the filestores too.
//
// Trust boundary. With a gofer, the sentry never opens a host file: the
// gofer (its own process, chrooted to the bundle's mounts, with its own
// seccomp filter) walks host paths for it over lisafs. Without one the
// sentry still opens nothing: it gets a fixed set of descriptors at start
// (read-only images, the /tmp filestore) and has no path to ask for more,
// so the host surface a compromised sentry reaches is smaller (no file
// server walking host directories on its behalf). What is new is on each
// side of that boundary: on the host, mkfs.erofs runs as the server's user
// over the function's unpacked tree, which internal/codestore validated
// (regular files, directories and symlinks only, symlinks stored as such,
// never followed); inside the sandbox, the sentry parses images that
// Kindling made, with a reader that a malformed image could only mislead
// about the sandbox's own files.
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
// answers on its own new channel (~110-120 ms after Restore began) with the
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
// itself runs at full speed, like a sandbox's start. With --background one
// part of the restore goes on after runsc restore returns, the loading of
// the memory: the function's quota (and the stubs' move) comes at once, the
// sandbox's quota, which bounds the sentry, once the sentry has closed the
// pages file (loading done; polled every 5 ms in /proc/<sentry>/fd, at most
// 2 s). Under a 512 MB function's sandbox quota the loading of a 256 MiB
// image stretched over CFS periods and the first response took ~360 ms
// instead of ~190.
//
// A restore has two halves of similar cost: making the sandbox (the
// sandbox and gofer processes, their namespaces, seccomp, mounts: what
// `runsc create` does, ~70-80 ms here since the patches of "Start-up
// cost", ~100-130 before) and restoring into it (loading the kernel's
// state, ~75 ms). Backend.Restore does both with one runsc
// command. Backend.Prepare does the first half ahead of time (a Prepared
// holds an idle sandbox with its channel and memory limit, running
// nothing) and (*Prepared).Restore the second, with `runsc restore` on the
// created container: a worker that expects restores of a function version
// can keep one prepared.
//
// Measured (BenchmarkRestore, 2-CPU VM, image in the page cache, probe
// filled with random bytes, sandbox of 512 MB, medians of 7-10, time from
// the call to the probe's answer to a read of 8 pages spread over that
// memory; the machine is shared and runs vary by ±20-30 ms: the --background
// rows before and with the patches come from the same runs, the runsc
// binaries swapped):
//
//	                                     64 MiB   256 MiB   1 MiB
//	before this runsc's patches (see "Start-up cost"):
//	Restore, flate (runsc's default)     245-280  330-340   240
//	Restore, none                        234-277  291-294   260
//	Restore, none --background           175-218  251-305   160-227
//	Prepared.Restore, none --background  111-135  160-235   75-83
//	  same with --direct (O_DIRECT)      151      348
//	with them (the default build):
//	Restore, none --background           107-152  166-206   95-120
//	  of which Restore's return          106-150  125-148
//	Prepared.Restore, none --background  70-104   124-177   57-73
//
// The fixed part dominates less than it did: ~110-150 ms for 64 MiB, ~75
// ms after Prepare, of which the kernel state's load is ~35-45 ms and the
// sentry's platform and seccomp set-up ~10 ms; before the patches every
// runsc process waited for an RCU grace period at start (twice each, with
// its re-exec) and the sandbox waited for `runsc restore` to move itself
// back out of the sandbox's cgroups (see "Start-up cost"). What grows with
// the image is the page loading on this 2-CPU machine. The pinned gVisor
// loads pages with 128 parallel reads (stateio's
// pagesFileFDDefaultMaxParallel), whose copying starved the thread loading
// the kernel's state (~100-136 ms instead of ~35-50 for 256 MiB, the end of
// page loading and of the kernel load coinciding in runsc's debug log);
// the build caps it at the CPU count (tools/runsc/patches/
// stateio-read-parallelism.patch): the kernel load takes 33-45 ms at any
// size and Restore returns ~15-25 ms later for 256 MiB than for 64, but the
// first touches of the probe then wait for pages still loading, ~40-50 ms
// more. 256 MiB takes 1.3-1.6x of 64 MiB (before: 1.3-1.4x, with the fixed
// part ~90 ms larger): 50-65 ms more in absolute terms against 55-90
// before. 2 and 4 reads per CPU measured no better (the kernel load is
// starved again: Restore returns only when the loading is done), nor did
// 64 KiB reads instead of 256 KiB. flate costs the same on random bytes
// (it stores incompressible blocks as they are) but must decompress real
// memory whole before anything runs, and checkpoints slower (2.4 s against
// 2.0 s for 256 MiB); --direct reads from the disk instead of the page
// cache and makes the first faults wait.
//
// # Start-up cost
//
// `runsc run` (and restore, and create) is several processes: the CLI,
// which forks the gofer and the sandbox; each of those re-executes runsc
// once set up (namespaces, chroot, capabilities); the sandbox's sentry then
// builds its kernel and platform and waits for the CLI's StartRoot or
// Restore. runsc's debug log (--debug --debug-log=DIR/, KINDLING_GVISOR_
// RUNSC_FLAGS in the tests) showed, in a create of ~135 ms:
//
//   - ~9 ms in every runsc process's init (each start and re-exec: five
//     per sandbox, three of them one after the other on the sandbox's
//     critical path): gVisor's pkg/sentry/hostmm registers the process for
//     membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which for a
//     multi-threaded process (a Go program by then) waits for an RCU grace
//     period, although only the KVM platform uses that barrier.
//     tools/runsc/patches/hostmm-lazy-membarrier.patch registers on first
//     use instead (KVM's New asks for it before the sandbox's seccomp
//     filters). `runsc --version`: 19 ms -> 6 ms.
//   - 11-15 ms in the CLI after the sandbox had started: runsc creates and
//     joins the sandbox's cgroups before forking the gofer and the sandbox
//     (they are born inside), then moves itself back out once the sandbox
//     has set up; on cgroup v1 the first cgroup.procs write after a quiet
//     spell waits for an RCU grace period (cgroup_threadgroup_rwsem), and
//     the sentry, ready, waited for the CLI's StartRoot behind it.
//     tools/runsc/patches/cgroup-background-restore.patch starts that move
//     in the background as soon as the sandbox process is started, so that
//     it overlaps the sandbox's own start, and the CLI still waits for it
//     before going on (saving its state, StartRoot). A first version that
//     did not wait let the CLI write its state files from inside the
//     sandbox's memory cgroup: their page cache was charged to the sandbox
//     and the conformance suite's MemoryLimit case saw the peak usage a
//     page or two above the limit. The join itself (~10 ms when no other
//     cgroup move happened in the last few ms) stays: it is what puts the
//     sandbox's every allocation under its memory limit. Moving the CLI
//     into the cgroups from the backend just after its start, so that the
//     grace period overlaps its exec, measured no better (the move and the
//     CLI's own start contend).
//
// Measured by BenchmarkCreate (Create until the probe's handshake, 256 MB,
// medians of 15, same runs): 133-147 ms before, 111-123 ms with the
// hostmm patch, 92-94 ms without the cgroup one, 75-81 ms with both.
// End to end (same runs, the runsc binaries swapped): the cold start
// (e2e BenchmarkGVisorColdStart/mem1769, aws-lambda-go echo, create to
// first response, p50 of 40 samples) 166 ms (two runs) -> 106-130 ms
// (four runs, 107 typical; process backend: 10-20 ms); the SnapStart restore (BenchmarkSnapStartRestore/vs-cold,
// 64 MiB filled at init, first response of a restored version, 7 samples)
// 265 ms -> 195 ms. Measured and left: -ldflags=-s -w (the binary's size
// is not its start cost: no change). Not applicable: GOGC or GOMAXPROCS
// from the environment (runsc starts the sandbox and the gofer with an
// empty one; the sentry sets GOMAXPROCS itself). Not touched, because they are
// defences or the spec's meaning: seccomp (the sentry's precompiled
// filters, the gofer's, built at each start in ~3-5 ms off the critical
// path, and the OCI profile, ~3 ms at StartRoot), the network namespace,
// the chroot and the re-execs. What remains of a create, ~60-80 ms: ~8 ms
// of CLI start and cgroup set-up, ~10 ms of cgroup join, two execs of
// runsc for the sandbox (~4 ms and ~7 ms), ~20-25 ms of sentry set-up
// (kernel, platform, seccomp), ~10 ms for StartRoot (mounts through the
// gofer, the agent's exec, the OCI seccomp filter).
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
// # The warm path
//
// A warm invoke of an aws-lambda-go echo function is two HTTP exchanges on
// the sandbox's loopback (netstack) between the runtime and the agent's
// Runtime API (/next answered, then POST /response and its 202), plus one
// frame each way on the channel. What it costs is almost entirely system
// calls: runsc --strace over 200 warm invokes (2026-11-26) counted per
// invoke
//
//	runtime (aws-lambda-go, not ours)  ~29: futex 9.4, nanosleep 6.7 (its Go
//	                                   sysmon), write 4.2 (the POST is three
//	                                   writes: headers, chunk, last chunk),
//	                                   read 4.2, epoll_pwait 4.0
//	agent                              ~17: read 7.5 (3 with data, 4 finding
//	                                   none: Go's netpoll reads until EAGAIN,
//	                                   and net/http's background read), epoll
//	                                   3 blocking + 3 polls, write 3 (one per
//	                                   HTTP response, one per frame), FIONREAD 1
//
// and a system call costs a systrap round trip (tools/syscallcost, on
// this development VM): 5-6.5 us from Go's syscall package, 2-2.5 us when
// systrap has patched its call site, once systrap's adaptive fast path
// spins; 15-23 us (11.5 us patched) when it does not and every call is a
// sleep and a wake-up between the stub and the sentry; 0.14 us on the host.
// A TCP round trip between two processes over the sandbox's loopback takes
// ~170-200 us (host: 11-23 us), over a pipe to cat ~35-65 us (host: 4-9
// us): netstack's TCP path, and Go's poller on both ends (a read finding
// EAGAIN and an epoll wait per message, where cat blocks in read). Not the
// hand-off of each segment to netstack's processor goroutine: a runsc
// patch handling a connected endpoint's segments on the sender's goroutine
// instead changed neither p50 nor CPU (three interleaved runs; not kept).
// The two HTTP exchanges and the ~30 other calls per invoke
// are the ~0.9 ms by which gVisor's warm invoke exceeds the process
// backend's, and the ~1.4-1.9 ms of sandbox host CPU per invoke (the
// sentry, and the stub threads that run the two Go programs and spin in
// systrap's fast path).
//
// The agent's part is as small as Kindling can make it without changing
// what the runtime sees (internal/agent, rawio_linux.go):
//
//   - it runs with one P (no thread hand-offs between its goroutines);
//   - the reads, writes and FIONREAD of the warm path skip Go's
//     entersyscall (syscall.RawConn with raw system calls on the
//     non-blocking descriptors), so that the Go runtime's sysmon stays
//     parked: it was woken by the first system call after each of the
//     agent's three idle periods per invoke and polled with nanosleep
//     until the next (27 -> 17 system calls per invoke);
//   - those calls load the system call number as an immediate right before
//     SYSCALL (amd64 assembly), the pattern systrap patches into a direct
//     jump after the first trap, instead of the syscall package's number
//     from memory, which it cannot patch;
//   - the channel's reader yields after handing a frame over, so that the
//     event reaches the waiting /next before the reader's next read (which
//     finds nothing) rather than after it: one system call less on the
//     critical path.
//
// What remains is Go's own scheduler (an epoll poll and an epoll wait per
// idle period, a read that finds EAGAIN before parking) and net/http's
// background read. The runtime's 29 are its own. Neither Go programs'
// netpoll nor the runtime's code can use patched call sites, so systrap's
// slow path (SIGSYS, a signal frame, a hand-off between the stub and the
// sentry's thread) is paid on nearly every call. The fast path (stub and
// sentry spinning for each other) is adaptive in systrap; forcing it off
// (neverEnableFastPath) gave the same p50 and ~12% less sandbox CPU in one
// interleaved run. The KVM platform, which would avoid the trap hand-offs,
// does not run on this VM (tools/runsc/experimental/README.md). Measured
// figures and the comparison with the emulator: docs/benchmarks.md, issue
// 4, session 3.
//
// # Idle sandboxes
//
// An idle sandbox is not idle on the host: the Go runtimes inside (the
// agent's and the function's sysmon and timers) wake up every few
// milliseconds, each wake-up a systrap round trip into the sentry, and the
// sentry's own runtime runs too: 1.4-1.7% of a CPU per idle aws-lambda-go
// sandbox, so that 100 idle sandboxes took most of this 2-CPU machine's
// spare time. Sandbox implements sandbox.Freezer: Freeze stops every host
// process of the sandbox with the cgroup v1 freezer (runsc puts the
// sentry, the gofer and the stubs in <freezer>/<CgroupParent>/<id>; the
// stubs' move to the function cgroup is in the cpu hierarchy only) and
// waits for FROZEN (~0.3-1.5 ms; ~4 ms with the Reduce below), Thaw
// writes THAWED (~0.2-0.3 ms; the kernel wakes every task before the
// write returns). A frozen sandbox uses no CPU, its clocks jump at Thaw as a frozen Lambda environment's do (the
// sentry's watchdog discounts such jumps), and Stats, Kill, Destroy,
// Checkpoint and Reap work on it: Kill thaws after its SIGKILLs (a frozen
// task acts on SIGKILL only once thawed), Checkpoint thaws first.
//
// The assignment service decides (internal/assignment, freeze.go): an
// environment idle for assignment.DefaultFreezeAfter (1 s, real time) is
// frozen by its reaper, and Acquire thaws it before the invocation is
// sent; back-to-back invokes never pay a thaw. The worker's Environment
// forwards to the sandbox (internal/worker/freeze.go).
//
// Freezing broke systrap: after a thaw, the sentry killed the function's
// address space with "failed waiting for seccomp notify ... no such file
// or directory". A stub's syscall thread blocked in a seccomp user
// notification is interrupted by the freezer's fake signal; the kernel
// withdraws the notification, the sentry's SECCOMP_IOCTL_NOTIF_RECV then
// fails with ENOENT, which systrap treated as fatal (it retried only
// EINTR), while the interrupted syscall restarts and raises a new
// notification. tools/runsc/patches/systrap-seccomp-notify-enoent.patch
// retries on ENOENT too (as systrap already did for NOTIF_SEND).
// TestFreeze freezes a probe sandbox 30 times idle and 30 times in the
// middle of work that makes new address spaces: with the pinned runsc the
// work died (SIGSEGV, "Killed") at the first or second busy freeze, with
// the patch every cycle completes.
//
// Before it freezes, Freeze asks the sentry to give memory back
// (reduceMemory: gVisor's Usage.Reduce over runsc's control socket, which
// evicts the memory file's evictable pages and collects the Go heap;
// tools/runsc/patches/idle-memory-release.patch makes it return the freed
// heap to the host at once, debug.FreeOSMemory, since nothing scavenges in
// a frozen process) and the gofer returns the garbage of its set-up once,
// 200 ms after it starts serving.
//
// Measured by BenchmarkGVisorIdle (aws-lambda-go echo at 128 MB waiting
// in /next; PSS of every host process of the sandbox, MB per sandbox, and
// the host CPU of all sandboxes over 10 s; the rows of one block come from
// runs one after the other, the runsc binaries swapped):
//
//	                                  sentry  gofer  stubs  total   CPU each
//	100 sandboxes
//	  before (pinned runsc, no freezer) 11.24  4.64   3.44  19.32   1.42%
//	  after (freezer, Reduce, patches)   9.39  3.76   3.41  16.56   0
//	30 sandboxes, the steps
//	  frozen, no Reduce                 11.56  4.74   3.65  19.95   0
//	  Reduce (runtime.GC)               11.09  4.69   3.58  19.36   0
//	  Reduce with the patch, gofer's     9.98  4.15   3.65  17.77   0
//	  (another run, 50 sandboxes)         9.60  3.91   3.52  17.03   0
//	500 sandboxes, after                 9.28  3.75   3.34  16.38   0
//	50 sandboxes, then (same session)
//	  the above                         9.66  3.99   3.52  17.17   0
//	  EROFS layout (no gofer)           9.62     -   3.56  13.18   0
//	  and mm-cow-within-vma.patch       8.45     -   2.78  11.23   0
//	                                    8.49     -   3.05  11.54   0
//	500 sandboxes, the same session
//	  before (bind layout, the patches above)
//	                                    9.28  3.77   3.35  16.40   0
//	  after (EROFS layout, both patches) 7.96    -   2.55  10.52   0
//
// 100 sandboxes were made in 16.6 s instead of 33.4 (the first ones stop
// taking CPU from the later ones), 500 in 85 s (8.2 GB in all; unfrozen,
// 500 idle sandboxes would want ~7 CPUs of this 2-CPU machine). Measured
// and left: the gofer's release 1 s after its start instead of 200 ms
// (4.11 against 4.03 MB), --dcache=32 (17.06 against 17.03 MB).
//
// A frozen sandbox does not answer runsc's control socket: `runsc exec`,
// `runsc ps` and the like block until it is thawed (write THAWED to its
// freezer.state first; the assignment service's next Acquire thaws it
// again, harmlessly).
//
// Cost on the warm path (echo at 1769 MB; BenchmarkGVisorThawInvoke, 20
// invokes each after 500 ms idle, still running, and after 1.6 s, frozen
// and thawed by Acquire): p50 3.03 ms against 3.71, ~0.7 ms once per idle
// spell for the thaw and for re-growing what Reduce gave back (with the
// pinned runsc and no Reduce: 2.65 against 3.07 ms). Back-to-back invokes
// never meet a frozen sandbox: BenchmarkGVisorWarmInvoke p50 1.53 and
// 1.37 ms with the freezer, 1.44 and 1.60 without (two runs each). Any
// invoke after a pause costs 2.5-4 ms against ~1.5 back to back, frozen or
// not: the runtimes inside wake from their idle state.
//
// The gofer went with the EROFS layout ("File systems"): 3.8 MB per
// sandbox. The guest's memory (the memory file, mapped by the sentry and
// by the stubs, so shared between their PSS) was ~5.7 MB, of which ~1.8 MB
// per Go program (the agent, and the function's runtime when it is Go) was
// a private copy of its own .rodata: the sentry's pmas of adjacent private
// mappings of one file merge when their effective permissions match (the
// read-only .rodata and the .data not yet written, both read-only through
// Translate), and the first write to .data broke copy-on-write over the
// whole 2 MB-aligned range of the merged pma, .rodata included (which also
// got .data's write permission). tools/runsc/patches/mm-cow-within-vma.patch
// copies within the written vma only. The stubs' and the sentry's memfd
// maps of the agent's address space showed the 2 MB region
// 0x800000-0xa00000 resident, byte for byte the agent's .rodata; linking
// the agent with -R 2 MB (segments in different 2 MB ranges) measured the
// same saving (11.46 MB at 50 sandboxes), the patch also covers the
// function's runtime and needs no build flag.
//
// What is left (one sandbox, after the above): the sentry's Go heap (~3.6
// MB live in a sampled heap profile: proc and sys inodes, FPU state,
// metrics, cpuid tables) and its runtime's other memory, ~7 MB of
// anonymous memory in all; the guest's memory, ~3-4 MB: the agent's and
// the function's Go runtimes (heap arenas, metadata, stacks, .data and
// .bss); runsc's text and data and the images' page cache, shared by every
// sandbox (~0 PSS each at 500 sandboxes). No runsc flag trades these:
// --app-huge-pages does nothing here (shmem THP is off on this host), the
// /tmp overlay's pages are in a host file, not memory, and --directfs is
// the default already. Measured and left: the agent returning its own free
// heap (debug.FreeOSMemory 250 ms after the runtime's answer, before the
// freeze): 11.54 against 11.23 MB at 50 sandboxes, no gain (its heap is
// small; what it holds is runtime structure, not garbage).
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
// `runsc restore` on that container; both set the CPU quotas afterwards,
// the sandbox's once the memory is loaded (see "Checkpoint and restore"),
// unless Checkpoint or Destroy came first. Freeze and Thaw (see "Idle
// sandboxes") stop and resume every host process of a running sandbox.
// Reap kills and removes
// every cgroup under the parent (the function children first, which runsc
// does not know), then deletes every container in runsc's root and empties
// StateDir.
package gvisor
