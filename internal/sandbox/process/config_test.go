package process

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"kindling/internal/errdefs"
	"kindling/internal/sandbox"
)

func TestCPUQuota(t *testing.T) {
	for _, tt := range []struct {
		mem, cpus int
		want      int64
	}{
		{128, 2, 7235},     // 128/1769 of a CPU
		{1769, 2, 100000},  // one full CPU
		{3538, 2, 200000},  // two CPUs
		{10240, 2, 200000}, // capped at the machine's
		{10240, 8, 578858},
		{16, 2, 1000}, // floor
	} {
		if got := cpuQuota(tt.mem, tt.cpus); got != tt.want {
			t.Errorf("cpuQuota(%d MB, %d CPUs) = %d, want %d", tt.mem, tt.cpus, got, tt.want)
		}
	}
}

func TestValidateSpec(t *testing.T) {
	ok := sandbox.Spec{ID: "fn-1", CodeDir: "/code", MemoryMB: 128, EphemeralMB: 512}
	if err := validateSpec(ok); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	for name, mod := range map[string]func(*sandbox.Spec){
		"empty id":      func(s *sandbox.Spec) { s.ID = "" },
		"upper id":      func(s *sandbox.Spec) { s.ID = "Fn" },
		"slash id":      func(s *sandbox.Spec) { s.ID = "../x" },
		"dash first":    func(s *sandbox.Spec) { s.ID = "-x" },
		"long id":       func(s *sandbox.Spec) { s.ID = strings.Repeat("a", 65) },
		"relative":      func(s *sandbox.Spec) { s.CodeDir = "code" },
		"no memory":     func(s *sandbox.Spec) { s.MemoryMB = 0 },
		"huge memory":   func(s *sandbox.Spec) { s.MemoryMB = 10241 },
		"no tmp":        func(s *sandbox.Spec) { s.EphemeralMB = 0 },
		"long hostname": func(s *sandbox.Spec) { s.Hostname = strings.Repeat("h", 65) },
	} {
		s := ok
		mod(&s)
		if err := validateSpec(s); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestInitParamsRoundTrip(t *testing.T) {
	p := initParams{Version: initVersion, RootFS: "/r", Root: "/s/x/root", CodeDir: "/c",
		TmpMB: 512, TmpDisk: true, ShmMB: 64, Hostname: "h", UID: 993, GID: 993}
	s, err := p.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeInitParams(s)
	if err != nil || got != p {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{
		"", "{", `{"v":2}`,
		fmt.Sprintf(`{"v":%d,"rootfs":"/r","root":"/x","code":"/c","tmpMB":1,"uid":0,"gid":993}`, initVersion),
		fmt.Sprintf(`{"v":%d,"rootfs":"/r","code":"/c","tmpMB":1,"uid":993,"gid":993}`, initVersion),
	} {
		if _, err := decodeInitParams(bad); err == nil {
			t.Errorf("decodeInitParams(%q) accepted", bad)
		}
	}
}

func TestParseMountInfo(t *testing.T) {
	in := `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
31 22 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
32 22 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
40 22 0:40 /a\040b /srv/state/x\040y/root rw - ext4 /dev/vda rw
41 40 0:41 / /srv/state/x\040y/root/tmp rw - tmpfs tmpfs rw,size=8m
42 22 0:42 / /srv/state/xy rw - tmpfs tmpfs rw
`
	m, err := parseMountInfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 7 || m[4].Root != "/a b" || m[4].MountPoint != "/srv/state/x y/root" || m[1].SuperOpts != "rw,memory" {
		t.Fatalf("parsed %+v", m)
	}
	got := mountsUnder(m, "/srv/state/x y")
	if want := []string{"/srv/state/x y/root/tmp", "/srv/state/x y/root"}; !slices.Equal(got, want) {
		t.Errorf("mountsUnder = %q, want %q", got, want)
	}
	c, err := detectCgroups(m, "kindling")
	if err != nil {
		t.Fatal(err)
	}
	if c.v2 || c.memory != "/sys/fs/cgroup/memory/kindling" || c.cpu != "/sys/fs/cgroup/cpu,cpuacct/kindling" || c.pids != "/sys/fs/cgroup/pids/kindling" {
		t.Errorf("detectCgroups = %+v", c)
	}
	if _, err := detectCgroups(m[:2], "kindling"); err == nil || !strings.Contains(err.Error(), "cpu, pids") {
		t.Errorf("missing controllers: %v", err)
	}
	if _, err := parseMountInfo(strings.NewReader("garbage\n")); err == nil {
		t.Error("garbage parsed")
	}
}

func TestTailWriter(t *testing.T) {
	var copyTo bytes.Buffer
	w := &tailWriter{copy: &copyTo}
	for range 3 {
		if _, err := w.Write(bytes.Repeat([]byte("x"), agentOutputTail/2)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Write([]byte("end")); err != nil {
		t.Fatal(err)
	}
	b := w.Bytes()
	if len(b) != agentOutputTail || !bytes.HasSuffix(b, []byte("end")) {
		t.Errorf("tail of %d bytes ending %q", len(b), b[len(b)-3:])
	}
	if copyTo.Len() != 3*agentOutputTail/2+3 {
		t.Errorf("copied %d bytes", copyTo.Len())
	}
	f := &tailWriter{copy: failWriter{}}
	if n, err := f.Write([]byte("a")); n != 1 || err != nil {
		t.Errorf("Write with a failing copy = %d, %v", n, err)
	}
	if !bytes.Contains(f.Bytes(), []byte("copy stopped")) || f.copy != nil {
		t.Errorf("failing copy not dropped: %q", f.Bytes())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken") }

func TestParseTrace(t *testing.T) {
	out := "noise\nkindling-trace a 1000\nkindling-trace b x\nkindling-trace c 3000\n"
	got := parseTrace([]byte(out))
	if len(got) != 2 || got[0].name != "a" || !got[1].at.Equal(time.Unix(0, 3000)) {
		t.Errorf("parseTrace = %+v", got)
	}
}
