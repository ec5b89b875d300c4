// Command syscallcost measures what a system call, a TCP round trip over
// loopback and a pipe round trip cost, to compare a gVisor sandbox with the
// host (internal/sandbox/gvisor/doc.go, "The warm path"). Build it static
// and run it both ways:
//
//	CGO_ENABLED=0 go build -o /tmp/syscallcost ./tools/syscallcost
//	/tmp/syscallcost
//	runsc --root=/tmp/sc-root --network=none do /tmp/syscallcost
//
// getppid is made three ways: RawSyscall (number loaded from memory, which
// systrap cannot patch), syscall.Getppid (the same plus the Go runtime's
// entersyscall), and with an immediate "mov $110, %eax; syscall" (amd64),
// which systrap patches into a jump to its entry after the first trap.
package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "echo" {
		echo(os.Args[2])
		return
	}
	const n = 5000
	per := func(name string, n int, f func()) {
		t := time.Now()
		for range n {
			f()
		}
		fmt.Printf("%-48s %8.2f us\n", name, float64(time.Since(t).Nanoseconds())/float64(n)/1000)
	}
	// The three kinds of getppid, interleaved in rounds (the median of
	// the rounds is what to compare on a noisy host).
	kinds := []struct {
		name string
		f    func()
	}{
		{"getppid, RawSyscall", func() { syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0) }},
		{"getppid, syscall.Getppid", func() { syscall.Getppid() }},
	}
	if immediate != nil {
		kinds = append(kinds, struct {
			name string
			f    func()
		}{"getppid, immediate number (patchable)", immediate})
	}
	const rounds = 7
	res := make([][]float64, len(kinds))
	for range rounds {
		for k, kind := range kinds {
			t := time.Now()
			for range n {
				kind.f()
			}
			res[k] = append(res[k], float64(time.Since(t).Nanoseconds())/n/1000)
		}
	}
	for k, kind := range kinds {
		slices.Sort(res[k])
		fmt.Printf("%-48s %8.2f us (median of %d rounds, min %.2f)\n", kind.name, res[k][rounds/2], rounds, res[k][0])
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	cmd := exec.Command("/proc/self/exe", "echo", ln.Addr().String())
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	c, err := ln.Accept()
	if err != nil {
		fail(err)
	}
	const m = 3000
	b := make([]byte, 512)
	roundTrip := func(w func([]byte) (int, error), r func([]byte) (int, error)) func() {
		return func() {
			if _, err := w(b[:300]); err != nil {
				fail(err)
			}
			for got := 0; got < 300; {
				k, err := r(b[got:300])
				if err != nil {
					fail(err)
				}
				got += k
			}
		}
	}
	rt := roundTrip(c.Write, c.Read)
	for range 200 {
		rt()
	}
	per("TCP loopback round trip, 2 processes, 300 B", m, rt)
	c.Close()
	cmd.Wait()

	r1, w1, _ := os.Pipe()
	r2, w2, _ := os.Pipe()
	cmd = exec.Command("/bin/cat")
	cmd.Stdin, cmd.Stdout = r1, w2
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	r1.Close()
	w2.Close()
	rt = roundTrip(w1.Write, r2.Read)
	for range 200 {
		rt()
	}
	per("pipe round trip through cat, 300 B", m, rt)
	w1.Close()
	cmd.Wait()
}

// echo is the peer of the TCP round trips.
func echo(addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		fail(err)
	}
	b := make([]byte, 512)
	for {
		n, err := c.Read(b)
		if err != nil {
			return
		}
		if _, err := c.Write(b[:n]); err != nil {
			return
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "syscallcost:", err)
	os.Exit(1)
}
