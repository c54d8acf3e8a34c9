package consumer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton/fsm"
)

// EmptyPolicy is what the applier does with its consumer when it owns nothing.
type EmptyPolicy uint8

const (
	// EmptyPause (the default) stops pulling and keeps the consumer. JetStream
	// cannot express an empty filter (it would mean "everything"), so on a
	// WorkQueue or Interest stream, where a stale filter would block other
	// workers (10100) or retain their messages, the consumer is deleted
	// instead and created again at the next assignment.
	EmptyPause EmptyPolicy = 1 + iota
	// EmptyDelete deletes the consumer whenever the assignment is empty.
	EmptyDelete
)

// Option configures an Applier. Options validate their argument; a bad value
// makes New fail with an error wrapping ErrInvalidOption.
type Option interface {
	apply(*options) error
}

type optionFunc func(*options) error

func (f optionFunc) apply(o *options) error { return f(o) }

// options holds every knob; -1 marks "unset" where zero is meaningful.
type options struct {
	batch             int
	maxAckPending     int
	pullExpiry        time.Duration
	idleHeartbeat     time.Duration
	concurrency       int
	coalesce          time.Duration
	checkpointEvery   time.Duration
	drainTimeout      time.Duration
	ackWait           time.Duration
	maxSubjects       int
	empty             EmptyPolicy
	retries           int
	retryBackoff      time.Duration
	retryMaxBackoff   time.Duration
	deadLetter        DeadLetterFunc
	logger            *slog.Logger
	registerer        prometheus.Registerer
	prefix            string
	weight            uint32
	labels            []fsm.Label
	catchupWindow     int
	janitorEvery      time.Duration
	iteratorEscalate  int
	subjectTemplate   string
	controlBackoffMax time.Duration
	stuckAfter        time.Duration
}

func defaultOptions() options {
	return options{
		batch: 100, maxAckPending: 1000, pullExpiry: 5 * time.Second, idleHeartbeat: -1,
		concurrency: 16, coalesce: 50 * time.Millisecond, checkpointEvery: time.Second,
		drainTimeout: 10 * time.Second, ackWait: 30 * time.Second, maxSubjects: 1000,
		empty: EmptyPause, retries: 5, retryBackoff: 50 * time.Millisecond, retryMaxBackoff: 5 * time.Second,
		prefix: "baton", weight: 1, catchupWindow: 256, janitorEvery: 2 * time.Minute,
		iteratorEscalate: 3, controlBackoffMax: 10 * time.Second, stuckAfter: 10 * time.Second,
	}
}

// setDefaults fills the values that depend on others.
func (o *options) setDefaults() {
	if o.idleHeartbeat < 0 {
		o.idleHeartbeat = o.pullExpiry / 2
	}
	if o.logger == nil {
		o.logger = slog.New(slog.NewTextHandler(discard{}, nil))
	}
}

func (o options) validate() error {
	var errs []error
	if o.batch >= o.maxAckPending {
		errs = append(errs, fmt.Errorf("%w: batch (%d) must be below max ack pending (%d)", ErrInvalidOption, o.batch, o.maxAckPending))
	}
	if o.idleHeartbeat >= o.pullExpiry {
		errs = append(errs, fmt.Errorf("%w: idle heartbeat (%s) must be below pull expiry (%s)", ErrInvalidOption, o.idleHeartbeat, o.pullExpiry))
	}
	if o.drainTimeout <= o.pullExpiry/5 {
		errs = append(errs, fmt.Errorf("%w: drain timeout (%s) too short", ErrInvalidOption, o.drainTimeout))
	}
	return errors.Join(errs...)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func positive(name string, v int, set func(*options)) Option {
	return optionFunc(func(o *options) error {
		if v <= 0 {
			return fmt.Errorf("%w: %s must be > 0, got %d", ErrInvalidOption, name, v)
		}
		set(o)
		return nil
	})
}

func duration(name string, d, min time.Duration, set func(*options)) Option {
	return optionFunc(func(o *options) error {
		if d < min {
			return fmt.Errorf("%w: %s must be >= %s, got %s", ErrInvalidOption, name, min, d)
		}
		set(o)
		return nil
	})
}

// WithBatch sets how many messages one pull asks for (default 100). Batches
// of 1 or 2 stall nats.go's pull loop (docs/jetstream-facts.md); the minimum is 10.
func WithBatch(n int) Option {
	return optionFunc(func(o *options) error {
		if n < 10 {
			return fmt.Errorf("%w: batch must be >= 10 (smaller pulls stall the client), got %d", ErrInvalidOption, n)
		}
		o.batch = n
		return nil
	})
}

// WithMaxAckPending bounds messages delivered and not yet acked (default 1000).
func WithMaxAckPending(n int) Option {
	return positive("max ack pending", n, func(o *options) { o.maxAckPending = n })
}

// WithPullExpiry sets how long one pull request waits (default 5s).
func WithPullExpiry(d time.Duration) Option {
	return duration("pull expiry", d, time.Second, func(o *options) { o.pullExpiry = d })
}

// WithIdleHeartbeat sets the pull idle heartbeat (default half the expiry).
func WithIdleHeartbeat(d time.Duration) Option {
	return duration("idle heartbeat", d, 500*time.Millisecond, func(o *options) { o.idleHeartbeat = d })
}

// WithHandlerConcurrency bounds handlers running at once, across partitions
// (default 16). Within a partition handlers always run one at a time.
func WithHandlerConcurrency(n int) Option {
	return positive("handler concurrency", n, func(o *options) { o.concurrency = n })
}

// WithCoalesce sets the coalescing window of consumer filter updates
// (default 50ms): an update that completes no handoff waits until the window
// since the previous update has passed, and the requests made meanwhile
// become one update. An update a handoff waits on (a partition to cover
// before its catch-up, a WorkQueue partition to drop before its drain report)
// never waits for the window.
func WithCoalesce(d time.Duration) Option {
	return duration("coalesce window", d, 0, func(o *options) { o.coalesce = d })
}

// WithCheckpointInterval sets how often progress is reported (default 1s).
// After a crash, messages processed since the last checkpoint are processed
// again by the next owner.
func WithCheckpointInterval(d time.Duration) Option {
	return duration("checkpoint interval", d, 10*time.Millisecond, func(o *options) { o.checkpointEvery = d })
}

// WithDrainTimeout bounds how long a drain waits for in-flight handlers before
// cancelling their context (default 10s).
func WithDrainTimeout(d time.Duration) Option {
	return duration("drain timeout", d, 100*time.Millisecond, func(o *options) { o.drainTimeout = d })
}

// WithAckWait sets the consumer's AckWait (default 30s).
func WithAckWait(d time.Duration) Option {
	return duration("ack wait", d, time.Second, func(o *options) { o.ackWait = d })
}

// WithMaxSubjects bounds the consumer's filter subjects (default 1000): filter
// lists get slow to apply beyond about a thousand.
func WithMaxSubjects(n int) Option {
	return positive("max subjects", n, func(o *options) { o.maxSubjects = n })
}

// WithEmptyAssignment chooses what happens to the consumer when the worker
// owns nothing (default EmptyPause).
func WithEmptyAssignment(p EmptyPolicy) Option {
	return optionFunc(func(o *options) error {
		if p != EmptyPause && p != EmptyDelete {
			return fmt.Errorf("%w: unknown empty-assignment policy %d", ErrInvalidOption, p)
		}
		o.empty = p
		return nil
	})
}

// WithRetry sets in-place handler retries (default 5 attempts after the first,
// backoff from 50ms doubling to 5s, jittered). Order is kept: later messages
// of the partition wait.
func WithRetry(attempts int, initial, max time.Duration) Option {
	return optionFunc(func(o *options) error {
		if attempts < 0 || initial <= 0 || max < initial {
			return fmt.Errorf("%w: retry needs attempts >= 0 and 0 < initial <= max", ErrInvalidOption)
		}
		o.retries, o.retryBackoff, o.retryMaxBackoff = attempts, initial, max
		return nil
	})
}

// WithDeadLetter sets the callback for a message whose handler failed every
// attempt; the message is then terminated (not redelivered) and the partition
// moves on.
func WithDeadLetter(f DeadLetterFunc) Option {
	return optionFunc(func(o *options) error {
		if f == nil {
			return fmt.Errorf("%w: nil dead-letter callback", ErrInvalidOption)
		}
		o.deadLetter = f
		return nil
	})
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		o.logger = l
		return nil
	})
}

// WithRegisterer registers the applier's Prometheus metrics.
func WithRegisterer(r prometheus.Registerer) Option {
	return optionFunc(func(o *options) error {
		if r == nil {
			return fmt.Errorf("%w: nil registerer", ErrInvalidOption)
		}
		o.registerer = r
		return nil
	})
}

// WithConsumerPrefix sets the durable consumer name prefix (default "baton").
func WithConsumerPrefix(p string) Option {
	return optionFunc(func(o *options) error {
		if p == "" || !validToken(p) {
			return fmt.Errorf("%w: consumer prefix %q", ErrInvalidOption, p)
		}
		o.prefix = p
		return nil
	})
}

// WithWeight sets the worker's placement weight (default 1).
func WithWeight(w uint32) Option {
	return optionFunc(func(o *options) error {
		if w == 0 {
			return fmt.Errorf("%w: weight must be >= 1", ErrInvalidOption)
		}
		o.weight = w
		return nil
	})
}

// WithLabels sets the worker's labels.
func WithLabels(labels ...fsm.Label) Option {
	return optionFunc(func(o *options) error {
		o.labels = append([]fsm.Label(nil), labels...)
		return nil
	})
}

// WithSubjectTemplate checks every assigned partition's subjects against a
// template such as "orders.{{.Partition}}.>" and refuses partitions that do
// not match: a guard against a worker wired to the wrong stream layout.
func WithSubjectTemplate(t string) Option {
	return optionFunc(func(o *options) error {
		if _, err := parseTemplate(t); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidOption, err)
		}
		o.subjectTemplate = t
		return nil
	})
}

// WithJanitorInterval sets how often the applier looks for consumers that
// gone incarnations (crashed workers) left behind and nobody else will clean,
// and takes out of them what no partition needs, deleting those left empty
// (default 2m). The first look comes 10 s after New, or after one interval
// if that is shorter: a worker restarted after a crash clears what its
// predecessor left soon after it starts.
func WithJanitorInterval(d time.Duration) Option {
	return duration("janitor interval", d, time.Second, func(o *options) { o.janitorEvery = d })
}

// WithStuckAfter sets how long a partition may stay in a transitional phase
// (covering, catching up, activating, draining, reporting a drain) before
// Health reports it stuck, a metric counts it, and its step is retried from
// scratch (default 10s).
func WithStuckAfter(d time.Duration) Option {
	return duration("stuck after", d, 100*time.Millisecond, func(o *options) { o.stuckAfter = d })
}
