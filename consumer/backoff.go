package consumer

import (
	"context"
	"time"

	"github.com/batonhq/baton/internal/retry"
)

// backoff is retry.Backoff (jittered exponential: each wait drawn from
// [d/2, d], d doubling up to max, throttling scaled up), under the names the
// package's retry loops use.
type backoff struct {
	b *retry.Backoff
}

func newBackoff(initial, max time.Duration) *backoff {
	return &backoff{b: retry.NewBackoff(initial, max)}
}

// next returns the next wait, scaled up for throttling errors.
func (b *backoff) next(c class) time.Duration { return b.b.Next(c) }

func (b *backoff) reset() { b.b.Reset() }

// wait sleeps the next backoff or until ctx ends; it reports whether ctx is
// still live.
func (b *backoff) wait(ctx context.Context, c class) bool { return b.b.Wait(ctx, c) }
