package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// pullLoop feeds the dispatcher from the durable consumer. The iterator is
// restarted after errors with backoff; after opts.iteratorEscalate failures in a
// row (or at once when the consumer is gone) the reconciler is told to check
// the consumer and recreate it.
func (a *Applier) pullLoop(ctx context.Context, cons jetstream.Consumer, in chan<- jetstream.Msg, trouble chan<- error) {
	b := newBackoff(50*time.Millisecond, a.opts.controlBackoffMax)
	failures := 0
	for ctx.Err() == nil {
		it, err := cons.Messages(
			jetstream.PullMaxMessages(a.opts.batch),
			jetstream.PullExpiry(a.opts.pullExpiry),
			jetstream.PullHeartbeat(a.opts.idleHeartbeat),
		)
		if err != nil {
			failures++
			if a.escalate(ctx, err, failures, trouble) {
				return
			}
			b.wait(ctx, classify(err))
			continue
		}
		n, err := a.drainIterator(ctx, it, in)
		it.Stop()
		if ctx.Err() != nil {
			return
		}
		a.metrics.iteratorRestarts.Inc()
		if n > 0 {
			failures = 0
			b.reset()
		}
		failures++
		if errors.Is(err, jetstream.ErrNoHeartbeat) {
			a.metrics.heartbeatsMissed.Inc()
		}
		a.log.Debug("pull iterator ended", "err", err)
		if a.escalate(ctx, err, failures, trouble) {
			return
		}
		if !b.wait(ctx, classify(err)) {
			return
		}
	}
}

// drainIterator forwards messages until the iterator fails and returns how many
// it forwarded: an iterator that delivered is not a failing one.
func (a *Applier) drainIterator(ctx context.Context, it jetstream.MessagesContext, in chan<- jetstream.Msg) (int, error) {
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	missed, n := 0, 0
	for {
		m, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrNoHeartbeat) && missed < 2 {
				// nats.go re-pulls by itself after a missed heartbeat; count
				// it as a stall and keep going unless it repeats.
				missed++
				a.metrics.heartbeatsMissed.Inc()
				continue
			}
			return n, err
		}
		missed = 0
		select {
		case in <- m:
			n++
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
}

// escalate reports consumer trouble to the reconciler when the consumer is gone
// or the iterator keeps failing. It returns true when the loop should end (the
// reconciler restarts it).
func (a *Applier) escalate(ctx context.Context, err error, failures int, trouble chan<- error) bool {
	gone := errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound)
	if !gone && failures < a.opts.iteratorEscalate {
		return false
	}
	select {
	case trouble <- err:
	case <-ctx.Done():
	}
	return true
}
