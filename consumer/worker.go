package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// runWorker executes jobs until the work channel's owner stops. Each job is one
// message of one partition; the dispatcher never gives two jobs of the same
// partition at once, so handlers of a partition run in stream order.
func (a *Applier) runWorker(ctx context.Context, work <-chan *job, done chan<- jobResult) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-work:
			r := a.runJob(j)
			j.cancel()
			select {
			case done <- r:
			case <-ctx.Done():
				return
			}
		}
	}
}

// runJob runs the handler with in-place retries, then settles the message:
// acked (or deleted, for a catch-up read on a WorkQueue stream) once processed,
// terminated after the dead-letter callback. A cancelled job settles nothing:
// its message was not processed and will be read again by whoever owns the
// partition.
func (a *Applier) runJob(j *job) jobResult {
	res := jobResult{part: j.part, gen: j.gen, epoch: j.epoch, seq: j.d.seq}
	defer j.d.release()
	m := &Msg{
		Partition: j.part, Epoch: j.epoch, Seq: j.d.seq, Subject: j.d.subject,
		Header: j.d.header, Data: j.d.data, Time: j.d.time,
	}
	start := time.Now()
	b := newBackoff(a.opts.retryBackoff, a.opts.retryMaxBackoff)
	var err error
	for attempt := 1; attempt <= a.opts.retries+1; attempt++ {
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
		a.log.Warn("handler failed every attempt; dead-lettering", "partition", j.part, "seq", j.d.seq, "err", err)
		if a.opts.deadLetter != nil {
			a.opts.deadLetter(j.ctx, m, err)
		}
		a.terminate(j)
	} else {
		a.metrics.messages.WithLabelValues("processed").Inc()
		a.settle(j)
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

// settle acknowledges a processed message. On WorkQueue and Interest streams the
// ack is confirmed by the server: a lost ack there would leave the message
// stored behind the new owner's resume point.
func (a *Applier) settle(j *job) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch {
	case j.d.msg == nil && a.retention == jetstream.WorkQueuePolicy:
		a.deleteMsg(ctx, j)
	case j.d.msg == nil:
		// A catch-up read of a Limits or Interest stream: nothing to settle;
		// Interest messages go when the last covering filter lets them go.
	case a.retention == jetstream.LimitsPolicy:
		_ = j.d.msg.Ack()
	default:
		b := newBackoff(20*time.Millisecond, time.Second)
		for i := 0; i < 5; i++ {
			err := j.d.msg.DoubleAck(ctx)
			if err == nil || !b.wait(ctx, classify(err)) {
				return
			}
		}
	}
}

func (a *Applier) terminate(j *job) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch {
	case j.d.msg != nil:
		_ = j.d.msg.TermWithReason("baton: dead-lettered")
	case a.retention == jetstream.WorkQueuePolicy:
		a.deleteMsg(ctx, j)
	}
}

func (a *Applier) deleteMsg(ctx context.Context, j *job) {
	b := newBackoff(20*time.Millisecond, time.Second)
	for i := 0; i < 5; i++ {
		err := a.stream.DeleteMsg(ctx, uint64(j.d.seq))
		if err == nil || errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
			return
		}
		if !b.wait(ctx, classify(err)) {
			return
		}
	}
}
