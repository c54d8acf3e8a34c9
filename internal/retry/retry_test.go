package retry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/retry"
)

// fast retries at once, so that tests spend no time waiting.
var fast = retry.Policy{Initial: time.Millisecond, Max: time.Millisecond, Attempts: 5}

// failing returns an f for Do that fails with errs in turn, then succeeds,
// and counts its calls in n.
func failing(n *int, errs ...error) func(context.Context) error {
	return func(context.Context) error {
		*n++
		if *n <= len(errs) {
			return errs[*n-1]
		}
		return nil
	}
}

func TestDo_SucceedsAfterTransientFailures(t *testing.T) {
	var n int
	err := retry.Do(t.Context(), fast, failing(&n, nats.ErrTimeout, &api.Error{Code: api.CodeNoLeader, Status: 503}, &api.Error{Code: api.CodeInternal, Status: 500}))
	if err != nil || n != 4 {
		t.Fatalf("Do: %v after %d attempts, want success at the 4th", err, n)
	}
}

func TestDo_Throttled(t *testing.T) {
	var n int
	throttled := fmt.Errorf("create consumer: %w", &jetstream.APIError{Code: 429})
	if err := retry.Do(t.Context(), fast, failing(&n, throttled, throttled)); err != nil || n != 3 {
		t.Fatalf("Do: %v after %d attempts, want success at the 3rd", err, n)
	}
}

func TestDo_StopsOnTerminal(t *testing.T) {
	var n int
	err := retry.Do(t.Context(), fast, failing(&n, nats.ErrTimeout, fmt.Errorf("drain p1: %w", fsm.ErrStaleEpoch), nil))
	if n != 2 {
		t.Fatalf("%d attempts, want 2 (stop at the terminal error)", n)
	}
	var re *retry.Error
	if !errors.As(err, &re) || re.Attempts != 2 || !re.Terminal || re.Ctx != nil {
		t.Fatalf("Do: %#v, want a terminal *retry.Error after 2 attempts", err)
	}
	if !errors.Is(err, fsm.ErrStaleEpoch) {
		t.Fatalf("errors.Is(%v, fsm.ErrStaleEpoch) is false", err)
	}
	var rej *fsm.RejectError
	if !errors.As(err, &rej) || rej.Code != fsm.CodeStaleEpoch {
		t.Fatalf("errors.As(%v, *fsm.RejectError) failed", err)
	}
	if want := "retry: 2 attempts, stopped: terminal error; last: drain p1: fsm: stale_epoch"; err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
}

func TestDo_AttemptsExhausted(t *testing.T) {
	var n int
	p := fast
	p.Attempts = 3
	err := retry.Do(t.Context(), p, func(context.Context) error {
		n++
		return fmt.Errorf("attempt %d: %w", n, nats.ErrTimeout)
	})
	var re *retry.Error
	if n != 3 || !errors.As(err, &re) || re.Attempts != 3 || re.Terminal || re.Ctx != nil {
		t.Fatalf("Do: %v after %d calls, want 3 attempts exhausted", err, n)
	}
	if !errors.Is(err, nats.ErrTimeout) || !strings.Contains(err.Error(), "attempt 3:") {
		t.Fatalf("Do: %v does not wrap the last attempt's error", err)
	}
	if want := "retry: 3 attempts, attempts exhausted; last: attempt 3: nats: timeout"; err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	// One attempt means no retry.
	n = 0
	p.Attempts = 1
	if err := retry.Do(t.Context(), p, failing(&n, nats.ErrTimeout)); n != 1 || err == nil {
		t.Fatalf("Attempts 1: %v after %d calls", err, n)
	}
}

// TestDo_ContextEnds: a context that ends during an attempt or a wait stops
// the loop; the error matches both the context's error and the last attempt's.
func TestDo_ContextEnds(t *testing.T) {
	slow := retry.Policy{Initial: time.Hour, Max: time.Hour, Attempts: 100}
	t.Run("during a wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		called := make(chan struct{})
		go func() {
			<-called
			cancel()
		}()
		var n int
		err := retry.Do(ctx, slow, func(context.Context) error {
			n++
			close(called)
			return nats.ErrTimeout
		})
		var re *retry.Error
		if n != 1 || !errors.As(err, &re) || re.Attempts != 1 {
			t.Fatalf("Do: %v after %d calls, want a *retry.Error after 1", err, n)
		}
		if !errors.Is(err, context.Canceled) || !errors.Is(err, nats.ErrTimeout) {
			t.Fatalf("Do: %v does not match both the context's error and the last attempt's", err)
		}
	})
	t.Run("during an attempt", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var n int
		err := retry.Do(ctx, fast, func(ctx context.Context) error {
			n++
			cancel()
			return ctx.Err()
		})
		var re *retry.Error
		if n != 1 || !errors.As(err, &re) || re.Ctx == nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("Do: %v after %d calls, want it stopped by the context after 1", err, n)
		}
	})
	t.Run("before the first attempt", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		var n int
		err := retry.Do(ctx, fast, failing(&n))
		var re *retry.Error
		if n != 0 || !errors.As(err, &re) || re.Attempts != 0 || re.Err != nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("Do: %v after %d calls, want no attempt", err, n)
		}
		if want := "retry: 0 attempts, stopped: context canceled"; err.Error() != want {
			t.Fatalf("message %q, want %q", err, want)
		}
	})
	t.Run("a success as the context ends is a success", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		if err := retry.Do(ctx, fast, func(context.Context) error { cancel(); return nil }); err != nil {
			t.Fatalf("Do: %v", err)
		}
	})
}

func TestPolicy_Validate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     retry.Policy
		wants []string // each problem named in the error
	}{
		{"zero policy", retry.Policy{}, []string{"Initial 0s", "Attempts 0"}},
		{"max below initial", retry.Policy{Initial: time.Second, Max: time.Millisecond, Attempts: 1}, []string{"Max 1ms must be >= Initial 1s"}},
		{"negative attempts", retry.Policy{Initial: time.Millisecond, Max: time.Millisecond, Attempts: -1}, []string{"Attempts -1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if !errors.Is(err, retry.ErrInvalidPolicy) {
				t.Fatalf("Validate(%+v) = %v, want ErrInvalidPolicy", tc.p, err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("Validate(%+v) = %q, does not name %q", tc.p, err, w)
				}
			}
			if retry.Classify(err) != retry.Terminal {
				t.Fatalf("an invalid policy is %s, want terminal", retry.Classify(err))
			}
			called := false
			if err := retry.Do(t.Context(), tc.p, func(context.Context) error { called = true; return nil }); !errors.Is(err, retry.ErrInvalidPolicy) || called {
				t.Fatalf("Do with %+v: %v, f called %t; want ErrInvalidPolicy before any call", tc.p, err, called)
			}
		})
	}
	if err := fast.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", fast, err)
	}
}
