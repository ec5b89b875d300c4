//go:build linux

// Command probeagent stands in for the real agent in the sandbox
// conformance suite: it starts like the agent (process.InitIfRequested,
// then the agentproto handshake on fd 3) and then answers probes about its
// surroundings, one JSON line per newline-delimited JSON command:
//
//	{"op":"read","path":"/etc/shadow"}        -> data (first 4 KiB) or errno
//	{"op":"write","path":"/tmp/x","bytes":N}  -> n written, errno (ENOSPC)
//	{"op":"alloc","mb":N}                     -> ok, or the OOM killer
//	{"op":"fill","mb":N}                      -> like alloc, but random bytes (incompressible)
//	{"op":"touch","bytes":N}                  -> reads N pages (default 4) spread over what
//	                                             alloc and fill hold; n = their byte sum
//	{"op":"spawn"}                            -> n background children before fork failed
//	{"op":"forkbomb"}                         -> ok; a shell fork bomb runs on
//	{"op":"connect","addr":"10.0.2.2:80"}     -> ok or errno
//	{"op":"listen"}                           -> ok if 127.0.0.1:9001 works
//	{"op":"ps"}                               -> list of /proc pids
//	{"op":"status"}                           -> fields of /proc/self/status
//	{"op":"uid"}                              -> uid, gid, groups
//	{"op":"mount"} {"op":"unshare"} {"op":"ptrace"} -> errno of the attempt
//	{"op":"denied"}                           -> errno of every dangerous call
//	{"op":"hostname"} {"op":"env"} {"op":"mounts"}
//	{"op":"ls","path":"/var/task"}            -> names
//	{"op":"sh","path":"cat /proc/1/environ"}  -> output of /bin/sh -c, a child
//	{"op":"exit","code":N}                    -> exits without answering
//
// It is a test program: it runs inside the sandbox with the function's
// privileges and never talks to anything but its channel.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"kindling/internal/agentproto"
	"kindling/internal/sandbox/process"
	"kindling/internal/sandbox/sandboxtest/probeproto"
)

// Command and Reply are the probe protocol's messages.
type (
	Command = probeproto.Command
	Reply   = probeproto.Reply
)

func main() {
	process.InitIfRequested()
	// Processes of the function run as the same user: keep them out of the
	// agent's /proc entries (environment, memory, the channel's fd). The
	// process backend's set-up does this already; gVisor's does not.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "kindling-agent: PR_SET_DUMPABLE: %v\n", err)
		os.Exit(1)
	}
	fd, err := strconv.Atoi(os.Getenv("KINDLING_AGENT_FD"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "probeagent: no KINDLING_AGENT_FD")
		os.Exit(2)
	}
	ch := os.NewFile(uintptr(fd), "channel")
	if err := agentproto.WriteHandshake(ch); err != nil {
		fmt.Fprintln(os.Stderr, "probeagent: handshake:", err)
		os.Exit(2)
	}
	sc := bufio.NewScanner(ch)
	enc := json.NewEncoder(ch)
	for sc.Scan() {
		var c Command
		r := Reply{}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			r.Err = err.Error()
		} else {
			r = run(c)
		}
		if err := enc.Encode(r); err != nil {
			break
		}
	}
	// The channel is gone. A careful agent would exit; the probe lingers
	// instead, so that the suite sees whether the backend itself gets rid
	// of agents whose server died. (A sleep, not select{}: the runtime
	// would call that a deadlock and exit.)
	for {
		time.Sleep(time.Hour)
	}
}

// hold keeps allocations alive.
var hold [][]byte

func run(c Command) Reply {
	switch c.Op {
	case "read":
		f, err := os.Open(c.Path)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		b := make([]byte, 4096)
		n, err := f.Read(b)
		if err != nil && n == 0 {
			return fail(err)
		}
		return Reply{OK: true, Data: string(b[:n]), N: int64(n)}
	case "write":
		return write(c.Path, c.Bytes)
	case "alloc":
		b := make([]byte, c.MB<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		hold = append(hold, b)
		return Reply{OK: true, N: int64(len(b))}
	case "fill":
		b := make([]byte, c.MB<<20)
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], uint64(time.Now().UnixNano()))
		rand.NewChaCha8(seed).Read(b) //nolint:errcheck // never fails
		hold = append(hold, b)
		return Reply{OK: true, N: int64(len(b))}
	case "touch":
		return touch(int(c.Bytes))
	case "spawn":
		return spawn()
	case "forkbomb":
		warmThreads()
		cmd := exec.Command("/bin/sh", "-c", "f() { f | f & }; f")
		if err := cmd.Start(); err != nil {
			return fail(err)
		}
		return Reply{OK: true}
	case "connect":
		conn, err := net.DialTimeout("tcp", c.Addr, 2*time.Second)
		if err != nil {
			return fail(err)
		}
		conn.Close()
		return Reply{OK: true}
	case "listen":
		return listen()
	case "ps":
		return Reply{OK: true, List: pids()}
	case "status":
		return status()
	case "uid":
		groups, err := os.Getgroups()
		if err != nil {
			return fail(err)
		}
		return Reply{OK: true, Fields: map[string]string{
			"uid": strconv.Itoa(os.Getuid()), "gid": strconv.Itoa(os.Getgid()),
			"euid": strconv.Itoa(os.Geteuid()), "groups": fmt.Sprint(groups),
		}}
	case "mount":
		return errnoReply(tryMount())
	case "unshare":
		return errnoReply(unix.Unshare(unix.CLONE_NEWUSER | unix.CLONE_NEWNS))
	case "ptrace":
		return errnoReply(tryPtrace())
	case "denied":
		return denied()
	case "hostname":
		h, err := os.Hostname()
		if err != nil {
			return fail(err)
		}
		return Reply{OK: true, Data: h}
	case "env":
		return Reply{OK: true, List: os.Environ()}
	case "mounts":
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return fail(err)
		}
		return Reply{OK: true, Data: string(b)}
	case "ls":
		ents, err := os.ReadDir(c.Path)
		if err != nil {
			return fail(err)
		}
		r := Reply{OK: true}
		for _, e := range ents {
			r.List = append(r.List, e.Name())
		}
		return r
	case "sh":
		out, err := exec.Command("/bin/sh", "-c", c.Path).CombinedOutput()
		r := Reply{OK: err == nil, Data: string(out)}
		if err != nil {
			r.Err = err.Error()
		}
		return r
	case "exit":
		os.Exit(c.Code)
	}
	return Reply{Err: "unknown op " + c.Op}
}

// touch reads pages pages spread evenly over the held allocations: a small
// working set, for timing a restored sandbox's first answer.
func touch(pages int) Reply {
	if pages <= 0 {
		pages = 4
	}
	total := 0
	for _, b := range hold {
		total += len(b)
	}
	var sum int64
	for i := range pages {
		off := total / pages * i
		for _, b := range hold {
			if off < len(b) {
				sum += int64(b[off])
				break
			}
			off -= len(b)
		}
	}
	return Reply{OK: true, N: sum}
}

func fail(err error) Reply {
	r := Reply{Err: err.Error()}
	var en syscall.Errno
	if errors.As(err, &en) {
		r.Errno = unix.ErrnoName(en)
	}
	return r
}

func errnoReply(err error) Reply {
	if err == nil {
		return Reply{OK: true}
	}
	return fail(err)
}

func write(path string, total int64) Reply {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	var n int64
	for n < total {
		k, err := f.Write(chunk[:min(int64(len(chunk)), total-n)])
		n += int64(k)
		if err != nil {
			r := fail(err)
			r.N = n
			return r
		}
	}
	if err := f.Sync(); err != nil {
		r := fail(err)
		r.N = n
		return r
	}
	return Reply{OK: true, N: n}
}

// warmThreads makes the Go runtime start a few OS threads now, so that it
// does not need a new one (and crash for lack of it) once the fork bomb has
// used every pid of the sandbox.
func warmThreads() {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			runtime.LockOSThread()
			time.Sleep(10 * time.Millisecond)
			runtime.UnlockOSThread()
		})
	}
	wg.Wait()
}

// spawn has a shell start background sleeps until fork fails, and reports
// how many it started; then kills and reaps them.
func spawn() Reply {
	warmThreads()
	script := `n=0; while [ $n -lt 3000 ]; do sleep 1000 </dev/null >/dev/null 2>&1 & n=$((n+1)); echo $n >/tmp/spawned; done`
	out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
	b, rerr := os.ReadFile("/tmp/spawned")
	if rerr != nil {
		return fail(rerr)
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64) // checked by the suite through N
	// The sleeps were re-parented to us (pid 1): kill and reap them.
	for _, p := range pids() {
		if pid, _ := strconv.Atoi(p); pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for {
		if _, err := syscall.Wait4(-1, nil, 0, nil); err != nil {
			break
		}
	}
	r := Reply{OK: err != nil, N: n, Data: string(out)}
	if err == nil {
		r.Err = "the shell never failed to fork"
	}
	return r
}

func pids() []string {
	ents, _ := os.ReadDir("/proc") // an unreadable /proc shows as no pids
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	s := make([]string, len(out))
	for i, p := range out {
		s[i] = strconv.Itoa(p)
	}
	return s
}

func status() Reply {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fail(err)
	}
	r := Reply{OK: true, Fields: map[string]string{}}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			r.Fields[k] = strings.TrimSpace(v)
		}
	}
	return r
}

func listen() Reply {
	l, err := net.Listen("tcp", "127.0.0.1:9001")
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", "127.0.0.1:9001", 2*time.Second)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		return fail(err)
	}
	return Reply{OK: true}
}

func tryMount() error {
	return unix.Mount("tmpfs", "/tmp", "tmpfs", 0, "size=1m")
}

// tryPtrace attaches to a child of ours, which the kernel alone would
// allow (same user, a descendant).
func tryPtrace() error {
	cmd := exec.Command("/bin/sleep", "100")
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := unix.PtraceAttach(cmd.Process.Pid)
	if err == nil {
		unix.PtraceDetach(cmd.Process.Pid)
	}
	return err
}
