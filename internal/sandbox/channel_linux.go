package sandbox

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// SocketPair returns the two ends of the worker-agent channel, a Unix
// stream socket pair: the host's end as a net.Conn, the agent's as a file
// for the backend to pass into the sandbox. Both are close-on-exec.
func SocketPair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	hf := os.NewFile(uintptr(fds[0]), "kindling-channel-host")
	af := os.NewFile(uintptr(fds[1]), "kindling-channel-agent")
	conn, err := net.FileConn(hf) // dups the descriptor
	hf.Close()
	if err != nil {
		af.Close()
		return nil, nil, err
	}
	return conn.(*net.UnixConn), af, nil // a Unix socket makes a *net.UnixConn
}
