package gvisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// reduceTimeout bounds the sentry's Usage.Reduce before a freeze.
const reduceTimeout = time.Second

// controlCall calls method with arg on the sandbox's control server, the
// uRPC server of runsc's sentry that the runsc CLI talks to: a stream Unix
// socket at <runsc root>/runsc-<id>.sock carrying one JSON object each way,
// {"method": ..., "arg": ...} and {"success": ..., "err": ..., "result":
// ...}. Only methods without file descriptors can be called this way.
func (s *Sandbox) controlCall(method string, arg any, timeout time.Duration) error {
	path := filepath.Join(s.b.runsc.root, "runsc-"+s.id+".sock")
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		// Too long for a sockaddr: connect through /proc, as runsc does.
		fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("control socket %s: %w", path, err)
		}
		defer unix.Close(fd)
		path = fmt.Sprintf("/proc/self/fd/%d", fd)
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("unix", path)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if err := json.NewEncoder(c).Encode(struct {
		Method string `json:"method"`
		Arg    any    `json:"arg"`
	}{method, arg}); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	var res struct {
		Success bool   `json:"success"`
		Err     string `json:"err"`
	}
	if err := json.NewDecoder(c).Decode(&res); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if !res.Success {
		return fmt.Errorf("%s: %s", method, res.Err)
	}
	return nil
}

// reduceMemory asks the sentry to give back what it can before a freeze
// (gVisor's Usage.Reduce: evict the memory file's evictable allocations,
// then a Go GC; with tools/runsc/patches/idle-memory-release.patch the
// freed heap is returned to the host at once, debug.FreeOSMemory). Best
// effort: a sentry that does not answer in time is frozen as it is.
func (s *Sandbox) reduceMemory() error {
	err := s.controlCall("Usage.Reduce", map[string]bool{"wait": true}, reduceTimeout)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("sandbox %s: %w", s.id, err)
	}
	return nil
}
