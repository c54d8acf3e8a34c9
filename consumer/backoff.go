package consumer

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is jittered exponential backoff: each wait is drawn from [d/2, d],
// and d doubles up to max. Used by every retry loop in the package.
type backoff struct {
	initial, max, cur time.Duration
}

func newBackoff(initial, max time.Duration) *backoff {
	return &backoff{initial: initial, max: max, cur: initial}
}

// next returns the next wait, scaled up for throttling errors.
func (b *backoff) next(c class) time.Duration {
	d := b.cur
	if c == throttle {
		d = min(4*d, b.max)
	}
	b.cur = min(2*b.cur, b.max)
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) reset() { b.cur = b.initial }

// wait sleeps the next backoff or until ctx ends; it reports whether ctx is
// still live.
func (b *backoff) wait(ctx context.Context, c class) bool {
	t := time.NewTimer(b.next(c))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
