// Package clock gives components a notion of time that tests can control.
//
// Lambda's long waits (the 10 s init limit, the keep-alive of idle
// environments, async retry backoff, maximum event age) are expressed in
// Lambda's own units and passed through Clock.Scale, so a server started with
// --time-scale 0.01 waits a hundredth of each. Function timeouts are not
// scaled: they are the user's contract and are reported as configured.
package clock

import "time"

// Clock is the source of time for a component. The zero value is not valid;
// use Real or Scaled.
type Clock struct {
	scale float64
}

// Real returns a clock whose waits are Lambda's own.
func Real() Clock { return Clock{scale: 1} }

// Scaled returns a clock whose waits are multiplied by scale (0 < scale).
func Scaled(scale float64) Clock {
	if scale <= 0 {
		scale = 1
	}
	return Clock{scale: scale}
}

// Now returns the wall-clock time. It is not scaled.
func (c Clock) Now() time.Time { return time.Now() }

// Scale converts one of Lambda's waits into the wait this clock performs.
func (c Clock) Scale(d time.Duration) time.Duration {
	if c.scale == 1 || c.scale == 0 {
		return d
	}
	return time.Duration(float64(d) * c.scale)
}

// Factor returns the scale factor.
func (c Clock) Factor() float64 {
	if c.scale == 0 {
		return 1
	}
	return c.scale
}
