// Package placement chooses the worker for a new sandbox and asks it to
// create one. The choice (Choose) is a pure policy over the fleet's view; the
// call to the worker is the edge.
package placement

import (
	"context"
	"fmt"
	"time"

	"kindling/internal/assignment"
	"kindling/internal/capacity"
	"kindling/internal/config"
	"kindling/internal/errdefs"
	"kindling/internal/worker"
)

// Choose picks, among the available workers (most free memory first), the
// first with room for memoryMB. ok is false when none has room.
func Choose(workers []capacity.Info, memoryMB int) (id string, ok bool) {
	for _, w := range workers {
		if w.FreeMB() >= memoryMB {
			return w.ID, true
		}
	}
	return "", false
}

// Placer places sandboxes on the workers it knows.
type Placer struct {
	Fleet   *capacity.Fleet
	Workers map[string]*worker.Worker
	Now     func() time.Time
}

// Place implements assignment.Placer.
func (p *Placer) Place(ctx context.Context, fn *config.Function) (assignment.Env, error) {
	id, ok := Choose(p.Fleet.Available(p.Now()), fn.MemoryMB)
	if !ok {
		return nil, fmt.Errorf("no worker has %d MB free: %w", fn.MemoryMB, errdefs.ErrUnavailable)
	}
	w := p.Workers[id]
	env, err := w.Create(ctx, fn)
	if err != nil {
		return nil, err
	}
	return env, nil
}
