package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/consumer/internal/core"
	"github.com/batonhq/baton/internal/retry"
)

// The handler pool: opts.concurrency goroutines, each running one message at
// a time. The core never dispatches two messages of one partition at once, so
// handlers of a partition run in stream order.

// job is one dispatched message with its context (cancelled by a fence, a
// drain timeout or the loss of the partition).
type job struct {
	core.Dispatch
	ctx context.Context
}

// message is a delivery's content, whichever way it arrived.
type message struct {
	subject string
	header  nats.Header
	data    []byte
	time    time.Time
	// msg is the consumer delivery to settle; nil for a catch-up read.
	msg jetstream.Msg
}

func (a *Applier) runHandlers(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-a.jobs:
			r := a.runJob(j)
			select {
			case a.results <- r:
			case <-ctx.Done():
				return
			}
		}
	}
}

// leaseHolds reports whether the lease still holds now: checked right before
// every handler call, because the process may have frozen between the core's
// decision and the call.
func (a *Applier) leaseHolds() bool {
	return time.Now().Before(*a.lease.Load())
}

// runJob runs the handler with in-place retries, then settles the message. A
// cancelled job, or one whose lease ran out before the handler was called,
// settles nothing: its message was not processed and will be read again by
// whoever owns the partition.
func (a *Applier) runJob(j *job) result {
	res := result{part: j.Partition, gen: j.Gen, epoch: j.Epoch, seq: j.Msg.Seq}
	msg := j.Msg.Payload.(*message)
	m := &Msg{
		Partition: j.Partition, Epoch: j.Epoch, Seq: j.Msg.Seq, Subject: msg.subject,
		Header: msg.header, Data: msg.data, Time: msg.time,
	}
	start := time.Now()
	b := newBackoff(a.opts.retryBackoff, a.opts.retryMaxBackoff)
	var err error
	for attempt := 1; attempt <= a.opts.retries+1; attempt++ {
		if !a.leaseHolds() {
			a.metrics.messages.WithLabelValues("fenced").Inc()
			return res
		}
		m.Attempt = attempt
		err = a.call(j.ctx, m)
		if err == nil || j.ctx.Err() != nil {
			break
		}
		a.metrics.messages.WithLabelValues("retried").Inc()
		if attempt <= a.opts.retries && !b.wait(j.ctx, transient) {
			break
		}
	}
	if j.ctx.Err() != nil {
		a.metrics.messages.WithLabelValues("cancelled").Inc()
		return res
	}
	a.metrics.handlerSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		a.metrics.messages.WithLabelValues("dead_lettered").Inc()
		a.log.Warn("handler failed every attempt; dead-lettering", "partition", j.Partition, "seq", j.Msg.Seq, "err", err)
		if a.opts.deadLetter != nil {
			a.opts.deadLetter(j.ctx, m, err)
		}
		a.settle(j, msg, j.DeadLetter)
	} else {
		a.metrics.messages.WithLabelValues("processed").Inc()
		a.settle(j, msg, j.Success)
	}
	res.processed = true
	return res
}

// call runs the handler, turning a panic into an error so that one bad message
// cannot take the worker down.
func (a *Applier) call(ctx context.Context, m *Msg) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("consumer: handler panicked")
			a.log.Error("handler panicked", "partition", m.Partition, "seq", m.Seq, "panic", r)
		}
	}()
	return a.handler(ctx, m)
}

// settle acknowledges, deletes or terminates a processed message as the core
// decided. A confirmed ack (WorkQueue, Interest) is retried: a lost one would
// leave the message stored behind the next owner's resume point.
func (a *Applier) settle(j *job, msg *message, how core.Settle) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch how {
	case core.SettleAck:
		_ = msg.msg.Ack()
	case core.SettleDoubleAck:
		_ = retry.Do(ctx, settlePolicy(), func(ctx context.Context) error {
			// Each attempt bounded: an ack the server ignores (one sent
			// between a WorkQueue consumer's reset and the message's new
			// delivery, fact 26) gets no answer at all, and the retry after
			// the redelivery is the one that counts.
			actx, cancel := context.WithTimeout(ctx, ackAttemptTimeout)
			defer cancel()
			return msg.msg.DoubleAck(actx)
		})
	case core.SettleTerm:
		_ = msg.msg.TermWithReason("baton: dead-lettered")
	case core.SettleDelete:
		_ = retry.Do(ctx, settlePolicy(), func(ctx context.Context) error {
			err := a.stream.DeleteMsg(ctx, uint64(j.Msg.Seq))
			if errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
				return nil // gone already
			}
			return err
		})
	}
}
