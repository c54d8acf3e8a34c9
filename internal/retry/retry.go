package retry

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrInvalidPolicy is wrapped by Policy.Validate, and so by Do, for a policy
// that cannot bound a retry loop. It is marked Terminal.
var ErrInvalidPolicy = MarkTerminal(errors.New("retry: invalid policy"))

// Policy bounds a retry loop.
type Policy struct {
	// Initial is the first back-off bound (> 0): the first wait is drawn from
	// [Initial/2, Initial].
	Initial time.Duration
	// Max caps the back-off bound (>= Initial).
	Max time.Duration
	// Attempts is how many times the operation runs at most, the first
	// included (>= 1): a retry loop is never unbounded.
	Attempts int
}

// Validate reports every field out of range, joined, each wrapping
// ErrInvalidPolicy.
func (p Policy) Validate() error {
	var errs []error
	if p.Initial <= 0 {
		errs = append(errs, fmt.Errorf("%w: Initial %s must be > 0", ErrInvalidPolicy, p.Initial))
	}
	if p.Max < p.Initial {
		errs = append(errs, fmt.Errorf("%w: Max %s must be >= Initial %s", ErrInvalidPolicy, p.Max, p.Initial))
	}
	if p.Attempts < 1 {
		errs = append(errs, fmt.Errorf("%w: Attempts %d must be >= 1", ErrInvalidPolicy, p.Attempts))
	}
	return errors.Join(errs...)
}

// Backoff returns a new Backoff with p's bounds.
func (p Policy) Backoff() *Backoff { return NewBackoff(p.Initial, p.Max) }

// Do runs f until it succeeds, waiting a jittered back-off (Backoff) between
// attempts. It stops on a Terminal error (Classify), when ctx ends (checked
// before every attempt and during each wait), or after p.Attempts attempts. f
// gets ctx; bounding each attempt is f's business.
//
// It returns nil once f succeeds; an error wrapping ErrInvalidPolicy, without
// calling f, if p is invalid; else an *Error that holds the number of attempts
// and wraps f's last error and, if ctx ended, ctx's error, so that errors.Is
// and errors.As see both.
func Do(ctx context.Context, p Policy, f func(context.Context) error) error {
	if err := p.Validate(); err != nil {
		return err
	}
	b := p.Backoff()
	var last error
	for n := 0; ; {
		if err := ctx.Err(); err != nil {
			return &Error{Attempts: n, Err: last, Ctx: err}
		}
		n++
		last = f(ctx)
		if last == nil {
			return nil
		}
		c := Classify(last)
		switch {
		case ctx.Err() != nil:
			return &Error{Attempts: n, Err: last, Ctx: ctx.Err()}
		case c == Terminal:
			return &Error{Attempts: n, Err: last, Terminal: true}
		case n >= p.Attempts:
			return &Error{Attempts: n, Err: last}
		}
		if !b.Wait(ctx, c) {
			return &Error{Attempts: n, Err: last, Ctx: ctx.Err()}
		}
	}
}

// Error is what Do returns when it gives up: after a Terminal error, when its
// context ended, or when the attempts ran out.
type Error struct {
	// Attempts is how many times f ran (0 if ctx had ended before the first).
	Attempts int
	// Err is f's last error (nil if f never ran).
	Err error
	// Ctx is the context's error if the context ended the loop, else nil.
	Ctx error
	// Terminal is set when Err was Terminal and ended the loop.
	Terminal bool
}

func (e *Error) Error() string {
	var why string
	switch {
	case e.Ctx != nil:
		why = "stopped: " + e.Ctx.Error()
	case e.Terminal:
		why = "stopped: terminal error"
	default:
		why = "attempts exhausted"
	}
	s := fmt.Sprintf("retry: %d %s, %s", e.Attempts, plural(e.Attempts, "attempt", "attempts"), why)
	if e.Err != nil {
		s += "; last: " + e.Err.Error()
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Unwrap returns the last error and the context's, so that errors.Is and
// errors.As match either.
func (e *Error) Unwrap() []error {
	var out []error
	for _, err := range []error{e.Err, e.Ctx} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}
