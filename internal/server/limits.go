package server

import (
	"context"
	"fmt"
	"log/slog"

	"kindling/internal/assignment"
	"kindling/internal/config"
	"kindling/internal/router"
)

// openLimits makes the concurrency limiter, loads the stored reservations
// and provisioned concurrency into it, and asks the assignment service for
// the provisioned environments.
func openLimits(ctx context.Context, functions *config.Store, accountLimit int, assign *assignment.Manager, log *slog.Logger) (*router.Limiter, error) {
	l := router.NewLimiter(accountLimit)
	rs, err := functions.Reservations(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading reserved concurrency: %w", err)
	}
	for _, r := range rs {
		if r.Reserved != nil {
			l.Restore(r.Account, r.Name, *r.Reserved)
		}
		total := 0
		for q, p := range r.Provisioned {
			total += p.Requested
			fn, _, err := functions.GetQualified(ctx, r.Account, r.Name, q)
			if err != nil {
				log.Warn("provisioned concurrency of a missing version or alias", "function", r.Name, "qualifier", q, "err", err)
				continue
			}
			assign.Provision(fn.ARN()+":"+q, fn, p.Requested)
		}
		l.Provision(r.Account, r.Name, total, false) //nolint:errcheck // unchecked: cannot fail
	}
	return l, nil
}
