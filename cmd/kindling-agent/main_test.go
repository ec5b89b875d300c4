package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"kindling/internal/agentproto"
)

func goBuild(t *testing.T, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// freeAddr returns a loopback address nothing listens on (for a moment).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestBinary runs the built agent as a backend would: channel on fd 3,
// address in the environment. It checks the wiring and that the runtime
// inherits nothing but its stdio from the agent.
func TestBinary(t *testing.T) {
	dir := t.TempDir()
	agentBin, echoBin := filepath.Join(dir, "kindling-agent"), filepath.Join(dir, "echo")
	goBuild(t, agentBin, ".")
	goBuild(t, echoBin, "../../internal/agent/testdata/echo")

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "worker end"), os.NewFile(uintptr(fds[1]), "agent end")
	var st unix.Stat_t
	if err := unix.Fstat(fds[1], &st); err != nil {
		t.Fatal(err)
	}
	channelInode := fmt.Sprintf("socket:[%d]", st.Ino)

	addr := freeAddr(t)
	cmd := exec.Command(agentBin)
	cmd.ExtraFiles = []*os.File{theirs} // fd 3
	cmd.Env = []string{"KINDLING_RUNTIME_API=" + addr}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := theirs.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	if err := agentproto.ReadHandshake(ours); err != nil {
		t.Fatal(err)
	}
	enc, dec := agentproto.NewEncoder(ours), agentproto.NewDecoder(ours)
	next := func(want agentproto.Type) agentproto.Frame {
		t.Helper()
		for {
			f, err := dec.Read()
			if err != nil {
				t.Fatalf("waiting for %v: %v; agent stderr:\n%s", want, err, stderr.String())
			}
			if f.Type == want {
				return f
			}
			if f.Type != agentproto.TypeLog {
				t.Fatalf("got %v %s %.200s waiting for %v", f.Type, f.Meta, f.Body, want)
			}
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(enc.Write(agentproto.TypeStart, agentproto.StartMeta{
		Path: echoBin, Env: []string{"AWS_LAMBDA_RUNTIME_API=" + addr}, Dir: "/",
	}, nil))
	next(agentproto.TypeReady)
	must(enc.Write(agentproto.TypeInvoke, agentproto.InvokeMeta{
		RequestID: "r1", DeadlineMs: time.Now().Add(time.Minute).UnixMilli(), FunctionARN: "arn",
	}, []byte(`{"mode":"fds"}`)))
	f := next(agentproto.TypeResponse)
	var open map[string]string
	must(json.Unmarshal(f.Body, &open))
	for fd, target := range open {
		if target == channelInode {
			t.Fatalf("runtime inherited the worker channel as fd %s (%v)", fd, open)
		}
	}

	// Closing the channel ends the agent, cleanly.
	must(ours.Close())
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		must(cmd.Process.Kill())
		t.Fatal("agent did not exit after the channel closed")
	}
}
