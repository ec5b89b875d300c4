// Package process is the "process" sandbox backend: each sandbox is the
// agent and its children in their own Linux namespaces (pid, mount, net,
// ipc, uts), limited by per-sandbox cgroups, running as an unprivileged
// user without capabilities under a seccomp filter, on a shared read-only
// root file system with the function's code mounted read-only and a private
// /tmp. It starts in a few milliseconds. The isolation is the kernel's:
// every system call a function makes reaches the host kernel, minus the
// filtered ones. That makes it the backend for development and for trusted
// code; package gvisor is the one for hostile tenants sharing a machine.
//
// # Processes
//
//	server (root, host namespaces)            sandbox (new pid/mnt/net/ipc/uts namespaces)
//	──────────────────────────────            ────────────────────────────────────────────
//	Create: state dir, cgroups, socketpair
//	        clone+exec agent ───────────────> agent = pid 1, still root:
//	        move it into the cgroups            InitIfRequested: mounts, lo up, hostname,
//	        (/tmp image, loop, ext4 mount)      pivot_root, then waits on the channel
//	        go-ahead byte (+ /tmp mount fd) ──> attach /tmp, drop to uid 993, no_new_privs,
//	                                            seccomp; return to the agent's main
//	worker reads the handshake <───────────── agentproto handshake on fd 3
//	Done: reaped by cmd.Wait                  agent starts the runtime (uid 993, filtered)
//
// The server process (Create, Destroy, Reap) does everything that needs
// the host's view: cgroups, the state directory, the /tmp image. The agent,
// before it runs anything of the function, does what must happen inside
// the namespaces: mounts, network, host name, root switch, privilege drop.
// The two meet through the channel: the agent blocks on it until the server
// has placed it in its cgroups, so that no code of the function ever runs
// outside its limits.
//
// If the server dies, its agents die with it: they carry a parent-death
// signal (SIGKILL), re-armed after the credential change that clears it.
// That signal follows the OS thread that forked the agent, so Create forks
// from a few goroutines locked to threads that never exit (spawners).
// Before the go-ahead, an agent whose server died reads EOF and exits.
//
// The environment variable EnvInit carries the set-up parameters (JSON,
// versioned) from Create to InitIfRequested, which unsets it; EnvAgentFD
// tells the agent its end of the channel is fd 3. On the channel, before the
// agentproto handshake, the server writes one byte (goAhead), carrying the
// /tmp mount descriptor as SCM_RIGHTS when /tmp is disk-backed; the agent's
// set-up consumes it, so the agent proper sees a clean channel.
//
// # Layout of a sandbox
//
//	host: StateDir/<id>/root   mount point of the sandbox's root (empty on the host)
//	      StateDir/<id>/tmp.img  sparse ext4 image of /tmp (disk-backed /tmp)
//	      StateDir/.tmp-templates/<MB>.img  formatted templates, one per size
//	      <controller>/<CgroupParent>/<id>  memory, cpu, pids (v1), or one v2 dir
//
//	inside (mount namespace of the sandbox, after pivot_root):
//	/              RootFS, bind, ro,nosuid,nodev   (Debian bookworm minbase)
//	├── var/task   CodeDir, bind, ro,nosuid,nodev
//	├── tmp        ext4 on a loop device, EphemeralMB, rw,nosuid,nodev
//	│              (tmpfs size=EphemeralMB,mode=1777 with Config.MemoryTmp)
//	├── proc       proc of the sandbox's pid namespace, nosuid,noexec,nodev
//	│   ├── kcore, keys, timer_list, sysrq-trigger, latency_stats, sched_debug
//	│   │          /dev/null bound over them (those the kernel has)
//	│   ├── acpi, scsi   an empty read-only directory bound over them
//	│   └── sys, bus, fs, irq   bound read-only
//	├── dev        tmpfs 64k, ro,nosuid,nodev,noexec
//	│   ├── null zero full random urandom tty   bound from the host's /dev
//	│   ├── fd stdin stdout stderr              symlinks into /proc/self/fd
//	│   └── shm    tmpfs size=MemoryMB/2, nosuid,nodev,noexec
//	└── sys        empty directory of the read-only root: no sysfs
//
// The network namespace has only "lo", up: the Runtime API is served on
// 127.0.0.1:9001 inside, and nothing outside can be reached.
//
// # Limits
//
// memory: memory.limit_in_bytes = MemoryMB MiB, memsw equal (no swap),
// swappiness 0; the OOM killer acts inside the sandbox only and Stats
// reports it (oom_kill in memory.oom_control). cpu: CFS quota proportional
// to memory, one full CPU at 1769 MB, at least 1% and at most every CPU of
// the machine. pids: 1024 tasks, threads included (Lambda's limit).
//
// # Trust boundary
//
// Everything inside the sandbox, the agent included once InitIfRequested
// has returned, runs with the function's privileges and is hostile: the
// server trusts nothing it reads from the channel (package agentproto
// bounds it). InitIfRequested itself runs before any function code, as
// root in the new namespaces, from the host's agent binary. After it:
// uid/gid 993 (sbx_user1051), no supplementary groups, empty permitted,
// effective, inheritable and ambient capability sets, no_new_privs (the
// bounding set is left alone: with no_new_privs and a nosuid root nothing
// can raise privileges, and clearing it costs ~40 all-thread system calls),
// the seccomp filter of seccomp.go on every thread. The agent is made
// non-dumpable by the credential change, so the function, although the same
// user, cannot read its memory through /proc.
//
// # Lifecycle
//
//	Create ──> running ──(agent exits / killed / OOM / Kill)──> exited ──Destroy──> destroyed
//	              └──────────────────────────Destroy───────────────────────────────────┘
//
// Create returns once the agent is running in its cgroups (it does not
// wait for the handshake: the worker reads it). Done closes when the agent
// has been reaped; the kernel kills the whole pid namespace with it. Kill
// sends SIGKILL and does not wait. Destroy kills, waits for Done (bounded),
// closes the channel, removes the cgroups (retrying while tasks drain) and
// the state directory; it is idempotent. Mounts need no cleanup on the host:
// they exist only in the sandbox's mount namespace, which dies with its
// last process (taking the /tmp file system and its loop device along).
// Reap, at server start, kills and removes every cgroup under CgroupParent
// and every entry of StateDir that an earlier, crashed run left.
//
// # Locking
//
// Sandbox.mu guards the destroyed state and is held for all of Destroy;
// tmpImages.mu guards the template cache and is held while a template is
// made. No lock is held while another is taken.
//
// # Costs (2-core VM shared with other work; bench_test.go)
//
// Create until the handshake is read, median: ~3.2-4.0 ms with a tmpfs
// /tmp, ~3.8-4.2 ms with the disk-backed one (512 MiB or 10 GiB alike);
// p99 13-19 ms on the loaded machine. Destroy: ~0.9 ms, ~1.8 ms with the
// disk /tmp (ext4 unmount and loop release when the namespace dies). Of
// the critical path: clone with new namespaces and exec ~1 ms (the
// network namespace alone ~0.4 ms), the agent's Go runtime start ~1 ms,
// cgroup mkdir and limits ~0.2 ms, mounts ~0.4 ms, hostname, lo and
// pivot_root ~0.15 ms, credentials ~0.15 ms, seccomp ~0.2 ms (the kernel
// evaluates the filter for every system call number to build its cache).
// The /tmp image (copy of ~130-230 KiB of template data, LOOP_CONFIGURE,
// ext4 mount: ~1-2 ms) runs on the host while the agent boots.
package process
