package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/consumer/internal/core"
	"github.com/batonhq/baton/fsm"
)

// The loop is the one goroutine that owns the core: it feeds it every input
// with the time it arrived, and hands the actions to the executors, none of
// which it ever waits on (the handler pool's queue holds as many jobs as the
// core lets run at once; every other executor is a goroutine of its own or
// takes the latest request from a mailbox).

// result is a handler's outcome, for the core.
type result struct {
	part      fsm.PartitionID
	gen       uint64
	epoch     fsm.Epoch
	seq       fsm.StreamSeq
	processed bool
}

// running is the cancel function of a partition's running handler.
type running struct {
	gen    uint64
	cancel context.CancelFunc
}

func (a *Applier) loop(ctx context.Context) {
	c := core.New(a.coreConfig())
	cancels := map[fsm.PartitionID]running{}
	defer func() {
		for _, r := range cancels {
			r.cancel()
		}
	}()
	tick := time.NewTimer(time.Millisecond)
	defer tick.Stop()
	batch := make([]*core.Delivery, 0, a.opts.batch)
	closing := a.closing
	finished := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-closing:
			closing = nil
			c.Close(time.Now())
		case e := <-a.events:
			e(c, time.Now())
		case d := <-a.msgs:
			// Take what else is waiting: one core step for a burst.
			batch = append(batch[:0], d)
		more:
			for len(batch) < cap(batch) {
				select {
				case d := <-a.msgs:
					batch = append(batch, d)
				default:
					break more
				}
			}
			c.DeliverBatch(time.Now(), batch)
			clear(batch)
		case r := <-a.results:
			if cr, ok := cancels[r.part]; ok && cr.gen == r.gen {
				cr.cancel()
				delete(cancels, r.part)
			}
			c.HandlerDone(time.Now(), r.part, r.gen, r.epoch, r.seq, r.processed)
		case <-tick.C:
			c.Tick(time.Now())
		}
		// Publish the lease before any dispatch of this step reaches a
		// handler goroutine.
		l := c.Lease()
		a.lease.Store(&l)
		st := c.Status()
		a.status.Store(&st)
		for _, act := range c.Take() {
			if a.execute(ctx, act, cancels) {
				finished = true
			}
		}
		if finished {
			finished = false
			a.spawn(ctx, func(ctx context.Context) { a.finishLeave(ctx, st.Inc) })
		}
		tick.Reset(min(max(time.Until(c.NextTick()), time.Millisecond), 250*time.Millisecond))
	}
}

// execute hands one action to its executor; it reports whether the action
// was Finish.
func (a *Applier) execute(ctx context.Context, act core.Action, cancels map[fsm.PartitionID]running) bool {
	switch act := act.(type) {
	case core.Dispatch:
		jctx, cancel := context.WithCancel(ctx)
		cancels[act.Partition] = running{gen: act.Gen, cancel: cancel}
		// Never blocks: the core runs at most concurrency handlers, and the
		// queue holds that many.
		a.jobs <- &job{Dispatch: act, ctx: jctx}
	case core.Cancel:
		if r, ok := cancels[act.Partition]; ok && r.gen == act.Gen {
			r.cancel()
		}
	case core.Ack:
		if m, ok := act.Msg.Payload.(*message); ok && m.msg != nil {
			_ = m.msg.Ack()
		}
	case core.SetFilter:
		a.filters.want(act)
	case core.Read:
		a.spawn(ctx, func(ctx context.Context) { a.read(ctx, act) })
	case core.ReportDrained:
		a.spawn(ctx, func(ctx context.Context) { a.reportDrained(ctx, act) })
	case core.ReportActivated:
		a.spawn(ctx, func(ctx context.Context) { a.reportActivated(ctx, act) })
	case core.ReportCheckpoints:
		a.spawn(ctx, func(ctx context.Context) { a.reportCheckpoints(ctx, act) })
	case core.Clean:
		a.spawn(ctx, func(ctx context.Context) { a.clean(ctx, act) })
	case core.Leave:
		a.spawn(ctx, func(ctx context.Context) { a.leave(ctx, act.Inc) })
	case core.Finish:
		return true
	case core.Notice:
		a.notice(act)
	}
	return false
}

// notice logs and counts what the core reports.
func (a *Applier) notice(n core.Notice) {
	switch n.Kind {
	case core.NoticeFenced:
		a.metrics.fenced.Inc()
		a.metrics.fencedNow.Set(1)
		a.log.Warn("lease ran out; fenced: nothing is dispatched until the session is renewed")
	case core.NoticeUnfenced:
		a.metrics.fencedNow.Set(0)
		a.log.Info("lease renewed; unfenced", "fenced_for", n.Took)
	case core.NoticeNewIncarnation:
		a.log.Info("new incarnation: the previous one's partitions are dropped")
	case core.NoticeCaughtUp:
		a.metrics.phaseSeconds.WithLabelValues("catch_up").Observe(n.Took.Seconds())
		a.log.Debug("caught up", "partition", n.Partition, "epoch", n.Epoch, "took", n.Took)
	case core.NoticeActivated:
		a.metrics.phaseSeconds.WithLabelValues("activate").Observe(n.Took.Seconds())
		a.log.Debug("activated", "partition", n.Partition, "epoch", n.Epoch, "took", n.Took)
	case core.NoticeDrained:
		a.metrics.phaseSeconds.WithLabelValues("drain").Observe(n.Took.Seconds())
		a.log.Debug("drained", "partition", n.Partition, "epoch", n.Epoch, "took", n.Took)
	case core.NoticeStuck:
		a.metrics.stuck.WithLabelValues(n.Phase.String()).Inc()
		a.log.Warn("partition stuck; retrying its step", "partition", n.Partition, "epoch", n.Epoch, "phase", n.Phase.String(), "for", n.Took)
	case core.NoticeDuplicate:
		a.metrics.duplicates.Inc()
		a.log.Debug("duplicate delivery", "partition", n.Partition, "seq", n.Seq)
	case core.NoticeStray:
		a.metrics.messages.WithLabelValues("stray").Inc()
		a.log.Debug("stray delivery", "seq", n.Seq)
	case core.NoticeRefused:
		a.log.Info("report refused", "partition", n.Partition, "epoch", n.Epoch, "err", n.Err)
	case core.NoticeDrainTimeout:
		a.log.Warn("drain timed out; cancelling the in-flight handler", "partition", n.Partition)
	}
}

// finishLeave runs once nothing is owned or handed: the consumer has no more
// duty, so it is deleted, and Close may return.
func (a *Applier) finishLeave(ctx context.Context, inc fsm.Incarnation) {
	a.filters.stop()
	if inc != 0 {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := a.stream.DeleteConsumer(dctx, consumerName(a.opts.prefix, a.worker, inc))
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			a.log.Warn("delete consumer on leave", "err", err)
		}
	}
	close(a.emptyCh)
}
