// Package router is the invoke path behind the frontend: it acquires an
// environment from the assignment service, runs the invocation on it through
// its worker, and releases it. It implements invoke.Invoker.
package router

import (
	"context"
	"errors"

	"kindling/internal/assignment"
	"kindling/internal/invoke"
	"kindling/internal/worker"
)

// Router routes synchronous invocations.
type Router struct {
	Assign *assignment.Manager
	// Limits admits invocations under the concurrency limits
	// (concurrency.go); nil: no limits.
	Limits *Limiter
}

// Invoke implements invoke.Invoker. An invocation over a concurrency limit
// fails at once with a *ThrottleError (errdefs.ErrThrottled).
func (r *Router) Invoke(ctx context.Context, req *invoke.Request) (*invoke.Result, error) {
	if r.Limits != nil {
		slot, err := r.Limits.Acquire(req.Function.Account, req.Function.Name)
		if err != nil {
			return nil, err
		}
		defer r.Limits.Release(slot)
	}
	// An environment whose runtime exited before it took the event (it
	// crashed after answering the previous one) did not run it: try
	// another, a bounded number of times.
	for attempt := 0; ; attempt++ {
		res, err := r.invokeOnce(ctx, req)
		if errors.Is(err, worker.ErrNotServed) && attempt < 3 {
			continue
		}
		return res, err
	}
}

func (r *Router) invokeOnce(ctx context.Context, req *invoke.Request) (*invoke.Result, error) {
	lease, err := r.Assign.Acquire(ctx, req.Function)
	if errors.Is(err, worker.ErrInvalidEntrypoint) {
		msg := "RequestId: " + req.RequestID + " Error: Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"
		return &invoke.Result{
			Payload:         []byte(`{"errorMessage":"` + msg + `","errorType":"Runtime.InvalidEntrypoint"}`),
			FunctionError:   "Unhandled",
			ExecutedVersion: req.Function.Version,
		}, nil
	}
	if err != nil {
		return nil, err
	}
	res, healthy, err := lease.Env.Invoke(ctx, req)
	r.Assign.Release(lease, healthy)
	return res, err
}
