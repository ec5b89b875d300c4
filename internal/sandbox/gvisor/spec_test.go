package gvisor

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"kindling/internal/sandbox"
)

func TestBuildSpec(t *testing.T) {
	spec := sandbox.Spec{ID: "sb-1", CodeDir: "/code/x", MemoryMB: 512, EphemeralMB: 100, Hostname: "h"}
	b, err := buildSpec(spec, specParams{RootFS: "/rootfs", AgentDir: "/state/.agent", TmpDir: "/state/sb-1/tmp", CgroupsPath: "/kindling-gvisor/sb-1", UID: 993, GID: 993})
	if err != nil {
		t.Fatal(err)
	}
	var got ociSpec
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Root.Readonly || got.Root.Path != "/rootfs" {
		t.Errorf("root %+v, want /rootfs read-only", got.Root)
	}
	if got.Process.User.UID != 993 || got.Process.User.GID != 993 || len(got.Process.User.AdditionalGids) != 0 {
		t.Errorf("user %+v", got.Process.User)
	}
	if got.Process.Args[0] != "/srv/kindling-agent" || !slices.Contains(got.Process.Env, "KINDLING_AGENT_FD=0") {
		t.Errorf("process %v %v", got.Process.Args, got.Process.Env)
	}
	if !got.Process.NoNewPrivileges {
		t.Error("new privileges allowed")
	}
	// Capabilities: every set present and empty.
	if !strings.Contains(string(b), `"bounding": []`) || !strings.Contains(string(b), `"ambient": []`) {
		t.Errorf("capability sets not explicitly empty:\n%s", b)
	}
	mounts := map[string]ociMount{}
	for _, m := range got.Mounts {
		mounts[m.Destination] = m
	}
	if m := mounts["/var/task"]; m.Source != "/code/x" || !slices.Contains(m.Options, "ro") {
		t.Errorf("/var/task %+v", m)
	}
	if m := mounts["/srv"]; m.Source != "/state/.agent" || !slices.Contains(m.Options, "ro") {
		t.Errorf("/srv %+v", m)
	}
	if m := mounts["/tmp"]; m.Source != "/state/sb-1/tmp" || !slices.Contains(m.Options, "rw") {
		t.Errorf("/tmp %+v", m)
	}
	for _, m := range got.Mounts {
		if m.Type == "bind" && m.Destination != "/tmp" && !slices.Contains(m.Options, "ro") {
			t.Errorf("bind mount %s is writable: the /tmp overlay flag would cover it too", m.Destination)
		}
	}
	if f := tmpOverlayFlag("/state/sb-1", 100); f != "--overlay2=all:dir=/state/sb-1,size=100m" {
		t.Errorf("overlay flag %q", f)
	}
	if got.Linux.Resources.Memory.Limit != 512<<20 || got.Linux.Resources.Pids.Limit != hostPidsMax || !slices.Contains(got.Process.Rlimits, ociRlim{Type: "RLIMIT_NPROC", Hard: 1024, Soft: 1024}) {
		t.Errorf("resources %+v %+v", got.Linux.Resources.Memory, got.Linux.Resources.Pids)
	}
	if strings.Contains(string(b), `"cpu"`) {
		t.Error("the spec carries a CPU quota; it is set after start")
	}
	var ns []string
	for _, n := range got.Linux.Namespaces {
		ns = append(ns, n.Type)
	}
	for _, want := range []string{"pid", "network", "ipc", "uts", "mount"} {
		if !slices.Contains(ns, want) {
			t.Errorf("namespace %s missing: %v", want, ns)
		}
	}
	if got.Hostname != "h" || got.Linux.CgroupsPath != "/kindling-gvisor/sb-1" {
		t.Errorf("hostname %q cgroupsPath %q", got.Hostname, got.Linux.CgroupsPath)
	}
}

// TestBuildSpecEROFS: with every image set, no mount is served by a gofer
// (no bind mount is left), /tmp stays writable for its overlay and the root
// comes from the rootfs hint.
func TestBuildSpecEROFS(t *testing.T) {
	spec := sandbox.Spec{ID: "sb-1", CodeDir: "/code/x", MemoryMB: 128, EphemeralMB: 512}
	b, err := buildSpec(spec, specParams{
		RootFS: "/rootfs", AgentDir: "/state/.agent", TmpDir: "/state/sb-1/tmp", CgroupsPath: "/k/sb-1", UID: 993, GID: 993,
		RootFSImage: "/rootfs.erofs", AgentImage: "/state/.erofs/agent.erofs", TmpImage: "/state/.erofs/tmp.erofs", CodeImage: "/code/x.erofs",
	})
	if err != nil {
		t.Fatal(err)
	}
	var got ociSpec
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Annotations[annotRootfsSource] != "/rootfs.erofs" || got.Annotations[annotRootfsType] != "erofs" || !got.Root.Readonly {
		t.Errorf("root %+v, annotations %v", got.Root, got.Annotations)
	}
	want := map[string]string{"/tmp": "/state/.erofs/tmp.erofs", "/var/task": "/code/x.erofs", "/srv": "/state/.erofs/agent.erofs"}
	for _, m := range got.Mounts {
		if m.Type == "bind" || slices.Contains(m.Options, "rbind") || slices.Contains(m.Options, "bind") {
			t.Errorf("bind mount %+v: it needs a gofer", m)
		}
		if src, ok := want[m.Destination]; ok {
			if m.Type != "erofs" || m.Source != src {
				t.Errorf("%s: %+v, want the image %s", m.Destination, m, src)
			}
			if rw := slices.Contains(m.Options, "rw"); rw != (m.Destination == "/tmp") || slices.Contains(m.Options, "ro") == rw {
				t.Errorf("%s: options %v", m.Destination, m.Options)
			}
			delete(want, m.Destination)
		}
	}
	if len(want) > 0 {
		t.Errorf("mounts missing: %v", want)
	}
	// Without images: bind mounts, no hint.
	b, err = buildSpec(spec, specParams{RootFS: "/rootfs", AgentDir: "/a", TmpDir: "/t", CgroupsPath: "/k/sb-1", UID: 993, GID: 993})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "erofs") || strings.Contains(string(b), "annotations") {
		t.Errorf("bind layout mentions EROFS:\n%s", b)
	}
}

func TestSeccompProfileOrder(t *testing.T) {
	p := seccompProfile()
	if p.DefaultAction != actAllow {
		t.Fatalf("default %s", p.DefaultAction)
	}
	// The allow rule for clone comes before its denial:
	// gVisor takes the first matching entry.
	firstDeny := -1
	for i, sc := range p.Syscalls {
		if sc.Action == actErrno && firstDeny < 0 {
			firstDeny = i
		}
		if sc.Action == actAllow && firstDeny >= 0 {
			t.Errorf("allow rule %v after the deny list", sc.Names)
		}
	}
	deny := p.Syscalls[firstDeny].Names
	for _, name := range []string{"clone", "ptrace", "mount", "unshare", "bpf", "keyctl", "clone3"} {
		if !slices.Contains(deny, name) {
			t.Errorf("%s not denied", name)
		}
	}
}

func TestCPUQuota(t *testing.T) {
	for _, c := range []struct {
		mb, cpus int
		want     int64
	}{{128, 2, 7235}, {1769, 2, 100000}, {3538, 2, 200000}, {10240, 2, 200000}, {16, 2, 1000}} {
		if got := cpuQuota(c.mb, c.cpus); got != c.want {
			t.Errorf("cpuQuota(%d, %d) = %d, want %d", c.mb, c.cpus, got, c.want)
		}
	}
}

func TestSandboxQuota(t *testing.T) {
	for _, c := range []struct {
		mb, cpus int
		want     int64
	}{
		{128, 2, 7235 + 25000},  // the function's share plus the sentry's floor
		{512, 2, 28942 + 28942}, // twice the share once it exceeds the floor
		{1769, 2, 200000},       // capped at the machine
		{1769, 4, 200000},
		{10240, 4, 400000},
	} {
		if got := sandboxQuota(c.mb, c.cpus); got != c.want {
			t.Errorf("sandboxQuota(%d, %d) = %d, want %d", c.mb, c.cpus, got, c.want)
		}
		if sandboxQuota(c.mb, c.cpus) < cpuQuota(c.mb, c.cpus) {
			t.Errorf("sandboxQuota(%d, %d) below the function's own quota", c.mb, c.cpus)
		}
	}
}
