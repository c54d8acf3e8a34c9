package retry_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/retry"
)

// draws is how many waits each bound is sampled for.
const draws = 200

// within fails the test unless the wait next returns lies in [lo, hi].
func within(t *testing.T, name string, next func() time.Duration, lo, hi time.Duration) {
	t.Helper()
	got := next()
	if got < lo || got > hi {
		t.Fatalf("%s: wait %s not in [%s, %s]", name, got, lo, hi)
	}
}

// TestBackoff_Bounds: every wait lies in [d/2, d], d doubling from initial to
// max; a Throttle wait uses min(4d, max); Reset starts over.
func TestBackoff_Bounds(t *testing.T) {
	const initial, max = 8 * time.Millisecond, 100 * time.Millisecond
	for i := range draws {
		b := retry.NewBackoff(initial, max)
		d := initial
		for step := range 8 {
			within(t, "transient", func() time.Duration { return b.Next(retry.Transient) }, d/2, d)
			d = min(2*d, max)
			if i == 0 {
				t.Logf("step %d: next bound %s", step, d)
			}
		}
		if d != max {
			t.Fatalf("bound %s after 8 doublings, want the max %s", d, max)
		}
		b.Reset()
		within(t, "after reset", func() time.Duration { return b.Next(retry.Transient) }, initial/2, initial)
		b.Reset()
		within(t, "throttle", func() time.Duration { return b.Next(retry.Throttle) }, 2*initial, 4*initial)
		// The throttle wait doubled the bound too.
		within(t, "after a throttle", func() time.Duration { return b.Next(retry.Transient) }, initial, 2*initial)
		within(t, "throttle near max", func() time.Duration { return b.Next(retry.Throttle) }, max/2, max)
	}
}

// TestBackoff_Jitter: the waits for one bound are spread, not one value.
func TestBackoff_Jitter(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range draws {
		seen[retry.NewBackoff(time.Second, time.Second).Next(retry.Transient)] = true
	}
	t.Logf("%d distinct waits in %d draws from [500ms, 1s]", len(seen), draws)
	if len(seen) < draws/2 {
		t.Fatalf("%d distinct waits in %d draws: no jitter", len(seen), draws)
	}
}

// TestBackoff_Degenerate: bounds out of range are clamped, so that no loop
// spins, and large bounds do not overflow.
func TestBackoff_Degenerate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		b      *retry.Backoff
		lo, hi time.Duration
	}{
		{"zero initial and max", retry.NewBackoff(0, 0), retry.MinWait / 2, retry.MinWait},
		{"negative initial and max", retry.NewBackoff(-time.Second, -time.Second), retry.MinWait / 2, retry.MinWait},
		{"max below initial", retry.NewBackoff(10*time.Millisecond, time.Millisecond), 5 * time.Millisecond, 10 * time.Millisecond},
		{"the zero Backoff", &retry.Backoff{}, retry.MinWait / 2, retry.MinWait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 3 {
				within(t, tc.name, func() time.Duration { return tc.b.Next(retry.Transient) }, tc.lo, tc.hi)
			}
			tc.b.Reset()
			within(t, tc.name+" after reset", func() time.Duration { return tc.b.Next(retry.Throttle) }, tc.lo, tc.hi)
		})
	}
	t.Run("no overflow near the largest duration", func(t *testing.T) {
		huge := time.Duration(math.MaxInt64)
		b := retry.NewBackoff(huge/3, huge)
		for range 4 {
			within(t, "huge", func() time.Duration { return b.Next(retry.Throttle) }, huge/2, huge)
		}
		within(t, "huge at max", func() time.Duration { return b.Next(retry.Transient) }, huge/2, huge)
	})
}

// TestBackoff_Wait: Wait sleeps and reports true, or returns false once its
// context has ended.
func TestBackoff_Wait(t *testing.T) {
	b := retry.NewBackoff(time.Millisecond, time.Millisecond)
	if !b.Wait(context.Background(), retry.Transient) {
		t.Fatal("Wait on a live context reported false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b.Wait(ctx, retry.Transient) {
		t.Fatal("Wait on an ended context reported true")
	}
	// A context that ends during a long wait ends it.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	long := retry.NewBackoff(time.Hour, time.Hour)
	done := make(chan bool, 1)
	go func() { done <- long.Wait(ctx, retry.Transient) }()
	cancel()
	select {
	case live := <-done:
		if live {
			t.Fatal("Wait cut short by its context reported true")
		}
	case <-time.After(time.Minute):
		t.Fatal("Wait did not return within a minute of its context ending")
	}
}
