// Package errdefs holds the small set of error classes every component wraps
// its errors in (with %w). Only the API edge (package awsapi) turns a class
// into an AWS error type and HTTP status.
package errdefs

import "errors"

// The classes.
var (
	// ErrNotFound: the named resource does not exist (or is not visible to
	// the caller's account).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the resource exists already, or a precondition such as
	// a revision id did not hold.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is malformed or a value is out of range.
	ErrInvalid = errors.New("invalid")
	// ErrThrottled: a concurrency or rate limit refused the request.
	ErrThrottled = errors.New("throttled")
	// ErrTooLarge: a payload or archive is over its limit.
	ErrTooLarge = errors.New("too large")
	// ErrUnavailable: the service cannot do it now (no capacity, shutting
	// down); retrying later may work.
	ErrUnavailable = errors.New("unavailable")
)
