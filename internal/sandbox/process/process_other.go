//go:build !linux

package process

import (
	"context"
	"fmt"

	"kindling/internal/sandbox"
)

// Backend is unavailable outside Linux.
type Backend struct{}

// New reports that the process backend needs Linux.
func New(cfg Config) (*Backend, error) {
	return nil, fmt.Errorf("%w: process: needs Linux (namespaces, cgroups, seccomp)", sandbox.ErrUnavailable)
}

// Name returns "process".
func (b *Backend) Name() string { return Name }

// Create fails: see New.
func (b *Backend) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	return nil, sandbox.ErrUnavailable
}

// Reap does nothing.
func (b *Backend) Reap() error { return nil }

// InitIfRequested does nothing outside Linux.
func InitIfRequested() {}
