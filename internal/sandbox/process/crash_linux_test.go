package process

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"kindling/internal/sandbox"
	"kindling/internal/sandbox/sandboxtest"
)

// envCrashChild makes the test binary a server that creates a sandbox,
// prints its agent's pid and waits to be killed (TestServerCrash).
const envCrashChild = "KINDLING_TEST_CRASH_CHILD"

func crashChild(cfgJSON string) {
	var args struct {
		Cfg  Config
		Spec sandbox.Spec
	}
	if err := json.Unmarshal([]byte(cfgJSON), &args); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	b, err := New(args.Cfg)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	sb, err := b.Create(context.Background(), args.Spec)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("agent", sb.(*Sandbox).Pid())
	select {} // until killed
}

// TestServerCrash kills a server process that has a live sandbox: the
// agent must die with it (parent-death signal), and Reap must then remove
// the cgroups and state it left.
func TestServerCrash(t *testing.T) {
	probe := filepath.Join(t.TempDir(), "probe")
	cfg := testEnv(t, probe)
	sandboxtest.BuildProbe(t, probe)
	spec := sandboxtest.NewSpec(t)
	arg, err := json.Marshal(map[string]any{"Cfg": cfg, "Spec": spec})
	if err != nil {
		t.Fatal(err)
	}
	server := exec.Command(os.Args[0], "-test.run=^$")
	server.Env = append(os.Environ(), envCrashChild+"="+string(arg))
	out, err := server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "agent ") {
		server.Process.Kill()
		t.Fatalf("server child: %q, %v", line, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "agent ")))
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := server.Wait(); err == nil {
		t.Fatal("server child exited cleanly")
	}
	// The agent was the server's child: once dead it is reparented and
	// reaped by init, and its /proc entry goes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil && strings.Contains(string(b), "State:\tZ") {
			break // dead, waiting for init to reap it
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %d still alive %v after its server died", pid, 5*time.Second)
		}
		time.Sleep(time.Millisecond)
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cgroups, stateDir := b.HostPaths(spec.ID)
	if _, err := os.Stat(stateDir); err != nil {
		t.Fatalf("the crash left no state to reap: %v", err)
	}
	if err := b.Reap(); err != nil {
		t.Fatalf("Reap: %v", err)
	}
	for _, p := range append(cgroups, stateDir) {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after Reap (%v)", p, err)
		}
	}
}
