package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// MinWait is the smallest initial bound a Backoff takes: a retry loop never
// spins.
const MinWait = time.Millisecond

// throttleFactor is how much longer a Throttle wait is than a Transient one:
// the other side asked for room, and the retries of several workers should not
// keep it busy.
const throttleFactor = 4

// Backoff is jittered exponential back-off: each wait is drawn uniformly from
// [d/2, d], where d starts at the initial bound and doubles after every wait
// up to the maximum; a Throttle wait draws from [D/2, D] with D = min(4d, max).
// The jitter spreads out clients that failed together.
//
// A Backoff serves one retry loop and is not safe for concurrent use. Build it
// with NewBackoff (or Policy.Backoff); the zero Backoff behaves as
// NewBackoff(0, 0).
type Backoff struct {
	initial, max, cur time.Duration
}

// NewBackoff returns a Backoff from initial doubling up to max. An initial
// below MinWait is taken as MinWait, and a max below initial as initial.
func NewBackoff(initial, max time.Duration) *Backoff {
	initial = bound(initial, MinWait)
	max = bound(max, initial)
	return &Backoff{initial: initial, max: max, cur: initial}
}

// bound returns d, or floor if d is below it.
func bound(d, floor time.Duration) time.Duration {
	if d < floor {
		return floor
	}
	return d
}

// Next returns the wait before the next attempt after a failure of class c,
// and doubles the bound for the one after.
func (b *Backoff) Next(c Class) time.Duration {
	if b.cur < MinWait {
		*b = *NewBackoff(b.initial, b.max)
	}
	d := b.cur
	if c == Throttle {
		d = scale(d, throttleFactor, b.max)
	}
	b.cur = scale(b.cur, 2, b.max)
	return d/2 + rand.N(d-d/2+1)
}

// scale returns min(d·k, max) without overflowing.
func scale(d time.Duration, k int64, max time.Duration) time.Duration {
	if d > max/time.Duration(k) {
		return max
	}
	return min(d*time.Duration(k), max)
}

// Reset starts the doubling again from the initial bound, after a success.
func (b *Backoff) Reset() { b.cur = b.initial }

// Wait sleeps for Next(c), or until ctx ends; it reports whether ctx is still
// live (false: stop retrying).
func (b *Backoff) Wait(ctx context.Context, c Class) bool {
	t := time.NewTimer(b.Next(c))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return ctx.Err() == nil
	}
}
