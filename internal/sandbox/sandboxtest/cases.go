package sandboxtest

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kindling/internal/sandbox"
	"kindling/internal/sandbox/sandboxtest/probeproto"
)

type cmd = probeproto.Command

func testLifecycle(t *testing.T, h *harness) {
	spec := h.spec()
	p := h.create(spec)
	if p.ID() != spec.ID {
		t.Errorf("ID() = %q, want %q", p.ID(), spec.ID)
	}
	select {
	case <-p.Done():
		t.Fatal("Done closed while the agent runs")
	default:
	}
	if r := p.Do(cmd{Op: "hostname"}); r.Data != spec.Hostname {
		t.Errorf("hostname %q, want %q", r.Data, spec.Hostname)
	}
	if _, err := p.Stats(); err != nil {
		t.Errorf("Stats of a running sandbox: %v", err)
	}
	if dup, err := h.b.Create(t.Context(), spec); err == nil {
		t.Error("Create with the id of a live sandbox succeeded")
		if err := dup.Destroy(); err != nil {
			t.Error(err)
		}
	}
	if _, err := p.Try(cmd{Op: "exit", Code: 7}); !isEOF(err) {
		t.Errorf("after exit: %v, want EOF", err)
	}
	waitDone(t, p, exitTimeout)
	if err := p.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if err := p.Destroy(); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
	if err := p.Kill(); err != nil {
		t.Errorf("Kill after Destroy: %v", err)
	}
}

func testKill(t *testing.T, h *harness) {
	p := h.create(h.spec())
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	waitDone(t, p, exitTimeout)
	if err := p.Kill(); err != nil {
		t.Errorf("second Kill: %v", err)
	}
	if _, err := p.Try(cmd{Op: "hostname"}); err == nil {
		t.Error("the probe answered after Kill")
	}
}

func testConcurrent(t *testing.T, h *harness) {
	const n = 4
	specs := make([]sandbox.Spec, n)
	for i := range specs {
		specs[i] = h.spec()
	}
	sbs := make([]*Probe, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { sbs[i], errs[i] = h.start(specs[i]) })
	}
	wg.Wait()
	for i, p := range sbs {
		if errs[i] != nil {
			t.Fatalf("sandbox %d: %v", i, errs[i])
		}
		if r := p.Do(cmd{Op: "ps"}); len(r.List) != 1 {
			t.Errorf("sandbox %d sees processes %v", i, r.List)
		}
	}
}

func testMemoryLimit(t *testing.T, h *harness) {
	spec := h.spec()
	spec.MemoryMB = 128
	p := h.create(spec)
	if r := p.Do(cmd{Op: "alloc", MB: 32}); !r.OK {
		t.Fatalf("alloc 32 MB of 128: %+v", r)
	}
	if r, err := p.Try(cmd{Op: "alloc", MB: 256}); err == nil {
		t.Fatalf("alloc 256 MB of 128 answered %+v; want the probe killed", r)
	}
	waitDone(t, p, exitTimeout)
	st, err := p.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if !st.OOMKilled {
		t.Errorf("Stats().OOMKilled = false after exceeding the limit (%+v)", st)
	}
	if limit := int64(spec.MemoryMB) << 20; st.MaxMemoryBytes < 32<<20 || st.MaxMemoryBytes > limit {
		t.Errorf("MaxMemoryBytes = %d, want within [32 MiB, %d]", st.MaxMemoryBytes, limit)
	}
	t.Logf("stats after OOM: %+v", st)
}

// testProcessLimit has a shell start processes until fork fails: Lambda's
// limit is 1024 processes and threads.
func testProcessLimit(t *testing.T, h *harness) {
	spec := h.spec()
	spec.MemoryMB = 1024
	p := h.create(spec)
	r := p.Do(cmd{Op: "spawn"})
	if !r.OK {
		t.Fatalf("spawn: %+v", r)
	}
	if r.N < 900 || r.N >= 1024 {
		t.Errorf("started %d processes before fork failed, want in [900, 1024)", r.N)
	}
	t.Logf("started %d processes; shell said %q", r.N, strings.TrimSpace(r.Data))
	if r := p.Do(cmd{Op: "ps"}); len(r.List) != 1 {
		t.Errorf("processes left after the spawn probe: %v", r.List)
	}
}

func testForkBomb(t *testing.T, h *harness) {
	spec := h.spec()
	spec.MemoryMB = 1024
	p := h.create(spec)
	if r := p.Do(cmd{Op: "forkbomb"}); !r.OK {
		t.Fatalf("forkbomb: %+v", r)
	}
	cgs, _, ok := h.hostPaths(spec.ID)
	if ok {
		// Let the bomb reach the ceiling before tearing down.
		peak := waitPids(t, cgs, 900, 10*time.Second)
		t.Logf("pids.current reached %d", peak)
	}
	start := time.Now()
	if err := p.Destroy(); err != nil {
		t.Fatalf("Destroy under a fork bomb: %v", err)
	}
	t.Logf("Destroy under a fork bomb took %v", time.Since(start))
	checkGone(t, h, spec.ID)
}

// waitPids polls pids.current of the sandbox's pids cgroup until it reaches
// want or d passes, and returns the highest value seen.
func waitPids(t *testing.T, cgroups []string, want int, d time.Duration) int {
	var file string
	for _, c := range cgroups {
		if _, err := os.Stat(filepath.Join(c, "pids.current")); err == nil {
			file = filepath.Join(c, "pids.current")
		}
	}
	if file == "" {
		t.Log("no pids.current among the sandbox's cgroups")
		return 0
	}
	peak := 0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		peak = max(peak, n)
		if n > 1024 {
			t.Fatalf("pids.current %d above Lambda's 1024", n)
		}
		if n >= want {
			break
		}
	}
	return peak
}

func testTmpSize(t *testing.T, h *harness) {
	spec := h.spec()
	spec.EphemeralMB = 8
	p := h.create(spec)
	r := p.Do(cmd{Op: "write", Path: "/tmp/fill", Bytes: 32 << 20})
	if r.OK || r.Errno != "ENOSPC" {
		t.Fatalf("writing 32 MiB to an 8 MiB /tmp: %+v, want ENOSPC", r)
	}
	if r.N > 8<<20 || r.N < 4<<20 {
		t.Errorf("wrote %d bytes before ENOSPC, want about 8 MiB", r.N)
	}
	if r := p.Do(cmd{Op: "write", Path: "/var/tmp/x", Bytes: 1}); r.OK {
		t.Errorf("/var/tmp is writable: only /tmp should be")
	}
}

// testTmpNotMemory writes more to /tmp than the function's memory: as on
// Lambda, /tmp is storage, not memory.
func testTmpNotMemory(t *testing.T, h *harness) {
	spec := h.spec()
	spec.MemoryMB = 128
	spec.EphemeralMB = 512
	p := h.create(spec)
	r, err := p.Try(cmd{Op: "write", Path: "/tmp/big", Bytes: 384 << 20})
	if err != nil {
		st, serr := p.Stats()
		t.Fatalf("writing 384 MiB to /tmp with 128 MB of memory: %v (stats %+v, %v)", err, st, serr)
	}
	if !r.OK {
		t.Fatalf("write 384 MiB to /tmp: %+v", r)
	}
	if r := p.Do(cmd{Op: "alloc", MB: 64}); !r.OK {
		t.Errorf("alloc 64 MB after filling /tmp: %+v", r)
	}
}

func testHostFiles(t *testing.T, h *harness) {
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret")
	if err := os.WriteFile(secret, []byte("host-secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := h.spec()
	p := h.create(spec)
	for _, path := range []string{secret, secretDir, "/proc/1/root" + secret} {
		if r := p.Do(cmd{Op: "read", Path: path}); r.OK || strings.Contains(r.Data, "host-secret") {
			t.Errorf("read %s from the sandbox: %+v", path, r)
		}
	}
	if host, err := os.ReadFile("/etc/shadow"); err == nil {
		if r := p.Do(cmd{Op: "read", Path: "/etc/shadow"}); r.OK && len(host) > 0 && bytes.HasPrefix(host, []byte(r.Data)) {
			t.Errorf("the sandbox reads the host's /etc/shadow")
		}
	}
	if _, stateDir, ok := h.hostPaths(spec.ID); ok {
		for _, path := range []string{stateDir, filepath.Dir(stateDir)} {
			if r := p.Do(cmd{Op: "ls", Path: path}); r.OK {
				t.Errorf("the sandbox lists the server's %s: %v", path, r.List)
			}
		}
	}
}

func testNetwork(t *testing.T, h *harness) {
	addrs := []string{"10.0.2.2:80", "1.1.1.1:443"}
	var listeners []net.Listener
	listen := func(ip string) {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		listeners = append(listeners, l)
		addrs = append(addrs, l.Addr().String())
	}
	listen("127.0.0.1")
	if ip := hostIP(); ip != "" {
		listen(ip)
	} else {
		t.Log("no non-loopback IPv4 address on this host: only loopback checked")
	}
	p := h.create(h.spec())
	for _, a := range addrs {
		if r := p.Do(cmd{Op: "connect", Addr: a}); r.OK {
			t.Errorf("the sandbox connected to %s", a)
		} else {
			t.Logf("connect %s: %s", a, r.Errno)
		}
	}
	for _, l := range listeners {
		if err := l.(*net.TCPListener).SetDeadline(time.Now()); err != nil {
			t.Fatal(err)
		}
		if c, err := l.Accept(); err == nil {
			c.Close()
			t.Errorf("host listener %s accepted a connection", l.Addr())
		}
	}
	if r := p.Do(cmd{Op: "listen"}); !r.OK {
		t.Errorf("127.0.0.1:9001 inside the sandbox: %+v", r)
	}
}

// hostIP returns a non-loopback IPv4 address of this host, or "".
func hostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	return ""
}

func testProcesses(t *testing.T, h *harness) {
	p := h.create(h.spec())
	r := p.Do(cmd{Op: "ps"})
	if len(r.List) != 1 {
		t.Errorf("the sandbox sees processes %v, want only itself", r.List)
	}
}

func testIdentity(t *testing.T, h *harness) {
	t.Setenv("KINDLING_TEST_HOST_SECRET", "do-not-leak")
	spec := h.spec()
	p := h.create(spec)
	r := p.Do(cmd{Op: "uid"})
	if r.Fields["uid"] != "993" || r.Fields["euid"] != "993" || r.Fields["gid"] != "993" || r.Fields["groups"] != "[]" {
		t.Errorf("identity %v, want uid/gid 993 and no groups", r.Fields)
	}
	st := p.Do(cmd{Op: "status"}).Fields
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapAmb"} {
		// gVisor's /proc/[pid]/status has no CapAmb line: absent is none.
		if v, ok := st[k]; (ok || k != "CapAmb") && v != "0000000000000000" {
			t.Errorf("%s = %s, want none", k, st[k])
		}
	}
	t.Logf("NoNewPrivs %s Seccomp %s CapBnd %s", st["NoNewPrivs"], st["Seccomp"], st["CapBnd"])
	// A child of the agent, same user, cannot look into the agent: its
	// environment, memory and descriptors (the channel) stay out of reach.
	if r := p.Do(cmd{Op: "sh", Path: "cat /proc/self/environ >/dev/null"}); !r.OK {
		t.Fatalf("sh probe does not work: %+v", r)
	}
	// The channel is fd 3 on the process backend and fd 0 on gVisor.
	for _, f := range []string{"environ", "mem", "fd/0", "fd/3"} {
		if r := p.Do(cmd{Op: "sh", Path: "cat /proc/1/" + f + " >/dev/null"}); r.OK {
			t.Errorf("a process of the function reads the agent's /proc/1/%s", f)
		}
	}
	env := p.Do(cmd{Op: "env"}).List
	_, stateDir, ok := h.hostPaths(spec.ID)
	for _, kv := range env {
		if strings.Contains(kv, "KINDLING_TEST_HOST_SECRET") || ok && strings.Contains(kv, stateDir) {
			t.Errorf("the agent's environment leaks %q", kv)
		}
	}
	t.Logf("agent environment: %v", env)
}

func testFilesystem(t *testing.T, h *harness) {
	p := h.create(h.spec())
	if r := p.Do(cmd{Op: "ls", Path: "/var/task"}); !slices.Contains(r.List, "bootstrap") {
		t.Errorf("/var/task lists %+v, want the code", r)
	}
	if r := p.Do(cmd{Op: "read", Path: "/var/task/bootstrap"}); !strings.Contains(r.Data, "echo hello") {
		t.Errorf("read /var/task/bootstrap: %+v", r)
	}
	if r := p.Do(cmd{Op: "write", Path: "/var/task/x", Bytes: 1}); r.OK || r.Errno != "EROFS" {
		t.Errorf("write to /var/task: %+v, want EROFS", r)
	}
	for _, path := range []string{"/x", "/etc/x", "/usr/x", "/dev/x"} {
		if r := p.Do(cmd{Op: "write", Path: path, Bytes: 1}); r.OK {
			t.Errorf("write %s succeeded", path)
		}
	}
	if r := p.Do(cmd{Op: "write", Path: "/tmp/ok", Bytes: 1 << 20}); !r.OK {
		t.Errorf("write 1 MiB to /tmp: %+v", r)
	}
	if r := p.Do(cmd{Op: "read", Path: "/dev/null"}); r.Errno != "" {
		t.Errorf("read /dev/null: %+v", r)
	}
	for _, dev := range []string{"/dev/zero", "/dev/urandom"} {
		if r := p.Do(cmd{Op: "read", Path: dev}); !r.OK || r.N == 0 {
			t.Errorf("read %s: %+v", dev, r)
		}
	}
	if r := p.Do(cmd{Op: "read", Path: "/etc/ssl/certs/ca-certificates.crt"}); !r.OK {
		t.Errorf("CA certificates missing: %+v", r)
	}
	if r := p.Do(cmd{Op: "read", Path: "/proc/kcore"}); r.OK && r.N > 0 {
		t.Errorf("/proc/kcore is readable")
	}
	t.Logf("mount table inside:\n%s", p.Do(cmd{Op: "mounts"}).Data)
}

func testDeniedCalls(t *testing.T, h *harness) {
	p := h.create(h.spec())
	for _, op := range []string{"mount", "unshare", "ptrace"} {
		if r := p.Do(cmd{Op: op}); r.OK {
			t.Errorf("%s succeeded in the sandbox", op)
		}
	}
	r := p.Do(cmd{Op: "denied"})
	for name, res := range r.Fields {
		allowed := name == "personality_query" || name == "mknod_fifo" || name == "exec"
		switch {
		case name == "personality_query" && res == "EINVAL":
			// gVisor answers every personality(2) call with EINVAL: not
			// a denial of ours, and nothing is granted.
		case allowed && res != "ok":
			t.Errorf("%s: %s, want it allowed", name, res)
		case !allowed && res == "ok":
			t.Errorf("%s succeeded in the sandbox", name)
		}
	}
	t.Logf("denied calls: %v", r.Fields)
}
