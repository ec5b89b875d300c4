package worker

import (
	"errors"
	"fmt"

	"kindling/internal/sandbox"
)

// Freeze suspends the environment's sandbox while it is idle, when its
// backend can (sandbox.Freezer: gVisor's sentry and the Go runtimes inside
// it cost CPU even when idle; a process sandbox does not and returns
// errors.ErrUnsupported). The assignment service calls it for an
// environment that has been idle for a while, never during an invocation,
// and Thaw before it hands the environment out again
// (assignment.Freezer). Destroy works on a frozen environment.
func (e *Environment) Freeze() error {
	fz, ok := e.sb.(sandbox.Freezer)
	if !ok {
		return fmt.Errorf("worker: sandbox of %s cannot be frozen: %w", e.id, errors.ErrUnsupported)
	}
	return fz.Freeze()
}

// Thaw lets a frozen environment's sandbox run again; a no-op if it is not
// frozen. On error the environment must not be used: the caller destroys
// it.
func (e *Environment) Thaw() error {
	fz, ok := e.sb.(sandbox.Freezer)
	if !ok {
		return nil
	}
	if err := fz.Thaw(); err != nil {
		return fmt.Errorf("worker: thaw environment %s: %w", e.id, err)
	}
	return nil
}
