package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// The reconciler is the applier's single serialized owner of everything that
// needs I/O: the durable consumer's configuration, the pull loop, and the
// reports to the claim store. It coalesces bursts of assignment changes into
// one consumer update, re-reads the consumer's real filters before changing
// them, and tells the dispatcher which partitions to start, drain and stop.

// rpart is the reconciler's view of one owned partition.
type rpart struct {
	epoch     fsm.Epoch
	subjects  []string
	started   bool // the dispatcher runs it at epoch
	activated bool
	draining  bool
	drained   bool          // the dispatcher finished the drain
	through   fsm.StreamSeq // of the finished drain
	reported  bool          // the drain report was accepted (or refused for good)
	handoff   fsm.HandoffID
	deadline  time.Time // drain timeout: cancel the in-flight handler after it
	cancelled bool
	cleaned   bool // gone lingerers' consumers cleaned after activation
}

type reconciler struct {
	a       *Applier
	sess    sessionState
	asg     fsm.Assignment
	hasAsg  bool
	parts   map[fsm.PartitionID]*rpart
	exists  bool // our consumer exists
	lost    bool // it disappeared: running partitions catch up again once it is recreated
	paused  bool // pulling stopped for an empty assignment (Limits, EmptyPause)
	filters []string
	cons    jetstream.Consumer

	pullCancel context.CancelFunc
	pullDone   chan struct{}
	trouble    chan error

	lastCkpt map[fsm.PartitionID]fsm.StreamSeq
	leaving  bool
	empty    bool
}

func (a *Applier) reconcileLoop(ctx context.Context) {
	r := &reconciler{a: a, parts: map[fsm.PartitionID]*rpart{}, trouble: make(chan error, 1), lastCkpt: map[fsm.PartitionID]fsm.StreamSeq{}}
	defer r.stopPull()
	ckpt := time.NewTicker(a.opts.checkpointEvery)
	defer ckpt.Stop()
	janitor := time.NewTicker(a.opts.janitorEvery)
	defer janitor.Stop()
	b := newBackoff(50*time.Millisecond, a.opts.controlBackoffMax)
	var coalesce, retry <-chan time.Time
	var lastApply time.Time
	closing := a.closing
	// arm schedules an apply: at once if none ran within the window (a lone
	// change is not delayed), else at the window's end (a burst becomes one
	// update per window).
	arm := func() {
		if coalesce == nil {
			coalesce = time.After(time.Until(lastApply.Add(a.opts.coalesce)))
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.sess.sig:
			r.onSession(ctx, a.sess.get())
			arm()
		case <-a.assign.sig:
			r.asg, r.hasAsg = a.assign.get(), true
			arm()
		case <-coalesce:
			coalesce = nil
		case <-retry:
			retry = nil
		case ev := <-a.disp.events:
			r.onEvent(ctx, ev)
			continue
		case err := <-r.trouble:
			r.onTrouble(ctx, err)
		case <-ckpt.C:
			r.tick(ctx)
			continue
		case <-janitor.C:
			r.janitor(ctx)
			continue
		case <-closing:
			closing = nil
			r.leave(ctx)
		}
		if coalesce != nil || retry != nil {
			continue
		}
		lastApply = time.Now()
		if err := r.apply(ctx); err != nil {
			c := classify(err)
			a.log.Warn("reconcile", "class", c, "err", err)
			a.metrics.updates.WithLabelValues("failure").Inc()
			if c == terminal {
				a.setHealth(func(h *healthState) { h.err = err })
			}
			retry = time.After(b.next(c))
			continue
		}
		b.reset()
	}
}

// onSession reacts to a new incarnation (everything of the old one is void: its
// partitions were orphaned and are failed over, and its consumer is cleaned up
// by their next owners) and to fencing.
func (r *reconciler) onSession(ctx context.Context, st sessionState) {
	if st.inc != r.sess.inc && r.sess.inc != 0 {
		r.a.log.Info("new incarnation: dropping the previous one's partitions", "old", r.sess.inc, "new", st.inc)
		r.stopPull()
		for id := range r.parts {
			r.a.disp.call(ctx, ctrlReq{op: opForget, part: id})
		}
		r.parts = map[fsm.PartitionID]*rpart{}
		r.exists, r.paused, r.filters, r.cons = false, false, nil, nil
		r.lastCkpt = map[fsm.PartitionID]fsm.StreamSeq{}
	}
	switch {
	case st.fenced && !r.sess.fenced:
		r.a.disp.call(ctx, ctrlReq{op: opFence})
	case !st.fenced && r.sess.fenced && st.inc == r.sess.inc:
		r.a.disp.call(ctx, ctrlReq{op: opUnfence})
	}
	r.sess = st
}

// apply converges the consumer and the dispatcher to the latest assignment.
func (r *reconciler) apply(ctx context.Context) error {
	a := r.a
	if r.sess.inc == 0 || !r.hasAsg || r.sess.fenced {
		return nil
	}
	asg := r.asg
	if asg.Worker != a.worker {
		return fmt.Errorf("%w: %s", ErrWorkerMismatch, asg.Worker)
	}
	if asg.State != fsm.WorkerGone && asg.Incarnation != r.sess.inc {
		return nil // an assignment of another incarnation: wait for ours
	}
	start := time.Now()
	owned := map[fsm.PartitionID]fsm.AssignedPartition{}
	var refused error
	for _, p := range asg.Partitions {
		if err := a.checkTemplate(p); err != nil {
			refused = err
			continue
		}
		owned[p.Partition] = p
	}
	// Partitions no longer ours: stop dispatching them at once.
	for id := range r.parts {
		if _, ok := owned[id]; !ok {
			a.disp.call(ctx, ctrlReq{op: opForget, part: id})
			delete(r.parts, id)
			delete(r.lastCkpt, id)
		}
	}
	// Drains first: they need no filter change to start.
	for _, p := range sortedParts(owned) {
		if p.Phase == fsm.PhasePreparing {
			r.startDrain(ctx, p)
		}
	}
	// WorkQueue: a partition taken over from a gone owner can only enter our
	// filter once it has left the gone owner's (10100).
	if a.retention == jetstream.WorkQueuePolicy {
		for _, p := range sortedParts(owned) {
			if rp := r.parts[p.Partition]; p.Phase == fsm.PhaseActivating && (rp == nil || !rp.started || rp.epoch != p.Epoch) {
				if err := r.cleanLingerers(ctx, p); err != nil {
					return err
				}
			}
		}
	}
	want := r.wantFilters(asg, owned)
	if len(want) > a.opts.maxSubjects {
		return fmt.Errorf("%w: %d needed, at most %d", ErrMaxSubjects, len(want), a.opts.maxSubjects)
	}
	if err := r.ensureFilters(ctx, want); err != nil {
		return err
	}
	// Now that the filter covers them, start (or resume) what we process.
	catching := 0
	for _, p := range sortedParts(owned) {
		rp := r.parts[p.Partition]
		switch p.Phase {
		case fsm.PhaseActivating, fsm.PhaseActive:
			switch {
			case rp == nil || rp.epoch != p.Epoch || !rp.started:
				resume := p.ResumeAfter
				if p.Phase == fsm.PhaseActive {
					resume = p.Checkpoint
				}
				rp = &rpart{epoch: p.Epoch, subjects: p.Subjects, started: true, activated: p.Phase == fsm.PhaseActive}
				r.parts[p.Partition] = rp
				a.disp.call(ctx, ctrlReq{op: opStart, part: p.Partition, epoch: p.Epoch, subjects: p.Subjects,
					resume: resume, report: p.Phase == fsm.PhaseActivating})
			case rp.draining && p.Phase == fsm.PhaseActive:
				// The handoff was aborted before our drain counted: resume
				// from where we stopped.
				rp.draining, rp.drained, rp.reported, rp.cancelled = false, false, false, false
				a.disp.call(ctx, ctrlReq{op: opResume, part: p.Partition})
			}
			if p.Phase == fsm.PhaseActivating && !rp.activated {
				catching++
			}
			if p.Phase == fsm.PhaseActive && !rp.cleaned && !rp.activated {
				rp.activated = true
			}
		case fsm.PhaseOrphaned:
			if rp != nil {
				a.disp.call(ctx, ctrlReq{op: opStop, part: p.Partition})
			}
		}
	}
	a.metrics.updateSeconds.Observe(time.Since(start).Seconds())
	a.setHealth(func(h *healthState) {
		h.reconciled, h.catchingUp, h.err = true, catching, refused
	})
	// Leaving is done when nothing is owned and, on an Interest stream, no
	// handed partition still needs our coverage.
	handed := len(asg.Handed) > 0 && a.retention == jetstream.InterestPolicy
	if r.leaving && !r.empty && len(asg.Partitions) == 0 && !handed {
		r.finishLeave(ctx)
	}
	return nil
}

func sortedParts(m map[fsm.PartitionID]fsm.AssignedPartition) []fsm.AssignedPartition {
	out := make([]fsm.AssignedPartition, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b fsm.AssignedPartition) int { return cmp.Compare(a.Partition, b.Partition) })
	return out
}

// wantFilters is the subject set the consumer must cover. Partitions being
// processed (activating, active, preparing) always; drained ones and those
// handed off but not yet activated elsewhere only on an Interest stream, where
// a moment without coverage loses messages; on a WorkQueue stream a drained
// partition must leave the filter before its next owner can take it.
func (r *reconciler) wantFilters(asg fsm.Assignment, owned map[fsm.PartitionID]fsm.AssignedPartition) []string {
	interest := r.a.retention == jetstream.InterestPolicy
	var out []string
	for id, p := range owned {
		rp := r.parts[id]
		switch {
		case p.Phase == fsm.PhaseActivating, p.Phase == fsm.PhaseActive:
			out = append(out, p.Subjects...)
		case p.Phase == fsm.PhasePreparing && (interest || rp == nil || !rp.drained):
			out = append(out, p.Subjects...)
		case p.Phase == fsm.PhaseDrained && interest:
			out = append(out, p.Subjects...)
		}
	}
	if interest {
		for _, h := range asg.Handed {
			out = append(out, h.Subjects...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (r *reconciler) startDrain(ctx context.Context, p fsm.AssignedPartition) {
	rp := r.parts[p.Partition]
	if rp != nil && rp.epoch == p.Epoch && rp.started {
		if !rp.draining {
			rp.draining, rp.handoff = true, p.Handoff
			rp.deadline = time.Now().Add(r.a.opts.drainTimeout)
			r.a.disp.call(ctx, ctrlReq{op: opDrain, part: p.Partition})
		}
		return
	}
	// Never started at this epoch: nothing was processed past the checkpoint.
	r.parts[p.Partition] = &rpart{epoch: p.Epoch, subjects: p.Subjects, draining: true, drained: true,
		through: max(p.Checkpoint, p.ResumeAfter), handoff: p.Handoff}
	r.reportDrained(ctx, p.Partition)
}

// onEvent handles the dispatcher's notices.
func (r *reconciler) onEvent(ctx context.Context, ev partEvent) {
	rp := r.parts[ev.part]
	if rp == nil || rp.epoch != ev.epoch {
		return
	}
	switch ev.kind {
	case evCaughtUp:
		r.a.metrics.phaseSeconds.WithLabelValues("catch_up").Observe(ev.took.Seconds())
		r.reportActivated(ctx, ev.part)
	case evDrained:
		r.a.metrics.phaseSeconds.WithLabelValues("drain").Observe(ev.took.Seconds())
		rp.drained, rp.through = true, ev.through
		r.reportDrained(ctx, ev.part)
	}
}

func (r *reconciler) reportActivated(ctx context.Context, id fsm.PartitionID) {
	rp := r.parts[id]
	if rp == nil || rp.activated {
		return
	}
	_, err := r.withRetry(ctx, "activate", func(ctx context.Context) (any, error) {
		res, err := r.a.coord.Activated(ctx, r.a.worker, r.sess.inc, []fsm.ActivateItem{{Partition: id, Epoch: rp.epoch}})
		if err == nil {
			err = itemErr(res.Items)
		}
		return nil, err
	})
	switch {
	case err == nil:
		rp.activated = true
		r.a.log.Debug("activated", "partition", id, "epoch", rp.epoch)
		r.cleanAfterActivation(ctx, id)
	case classify(err) == terminal:
		rp.activated = true // refused: the next assignment says what is true
		r.a.log.Info("activation refused", "partition", id, "err", err)
	}
}

// reportDrained reports a finished drain. On WorkQueue and Limits streams the
// partition first leaves the filter (WorkQueue: the next owner cannot add it
// before; Limits: so that its messages stop coming here).
func (r *reconciler) reportDrained(ctx context.Context, id fsm.PartitionID) {
	rp := r.parts[id]
	if rp == nil || !rp.drained || rp.reported {
		return
	}
	if r.a.retention != jetstream.InterestPolicy && r.hasAsg {
		owned := map[fsm.PartitionID]fsm.AssignedPartition{}
		for _, p := range r.asg.Partitions {
			owned[p.Partition] = p
		}
		if err := r.ensureFilters(ctx, r.wantFilters(r.asg, owned)); err != nil {
			r.a.log.Warn("drop drained partition from the filter", "partition", id, "err", err)
			return // retried at the next tick
		}
	}
	_, err := r.withRetry(ctx, "drain", func(ctx context.Context) (any, error) {
		res, err := r.a.coord.Drained(ctx, r.a.worker, r.sess.inc, []fsm.DrainItem{{
			Handoff: rp.handoff, Partition: id, Epoch: rp.epoch, ThroughSeq: rp.through,
		}})
		if err == nil {
			err = itemErr(res.Items)
		}
		return nil, err
	})
	if err == nil || classify(err) == terminal {
		rp.reported = true
		if err != nil {
			r.a.log.Info("drain refused", "partition", id, "err", err)
		} else {
			r.a.log.Debug("drained", "partition", id, "through", rp.through)
		}
	}
}

// withRetry calls f a few times with backoff on non-terminal errors.
func (r *reconciler) withRetry(ctx context.Context, what string, f func(context.Context) (any, error)) (any, error) {
	b := newBackoff(20*time.Millisecond, time.Second)
	var err error
	for i := 0; i < 5; i++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var v any
		v, err = f(cctx)
		cancel()
		if err == nil || classify(err) == terminal {
			return v, err
		}
		if !b.wait(ctx, classify(err)) {
			break
		}
	}
	r.a.log.Warn(what+" report failed; will retry", "err", err)
	return nil, err
}

// tick runs periodic duties: checkpoints, drain timeouts, unsent reports.
func (r *reconciler) tick(ctx context.Context) {
	now := time.Now()
	for id, rp := range r.parts {
		if rp.draining && !rp.drained && !rp.cancelled && now.After(rp.deadline) {
			r.a.log.Warn("drain timed out; cancelling the in-flight handler", "partition", id)
			rp.cancelled = true
			r.a.disp.call(ctx, ctrlReq{op: opCancelInflight, part: id})
		}
		if rp.drained && !rp.reported {
			r.reportDrained(ctx, id)
		}
	}
	r.checkpoint(ctx)
}

// checkpoint reports, in one request, every partition that progressed.
func (r *reconciler) checkpoint(ctx context.Context) {
	if r.sess.inc == 0 || r.sess.fenced || len(r.parts) == 0 {
		return
	}
	rep, err := r.a.disp.call(ctx, ctrlReq{op: opProgress})
	if err != nil {
		return
	}
	var items []fsm.CheckpointItem
	for _, p := range rep.progress {
		rp := r.parts[p.part]
		if rp == nil || rp.epoch != p.epoch || p.processed <= r.lastCkpt[p.part] || rp.drained {
			continue
		}
		items = append(items, fsm.CheckpointItem{Partition: p.part, Epoch: p.epoch, Seq: p.processed})
	}
	if len(items) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := r.a.coord.Checkpoints(cctx, r.a.worker, r.sess.inc, items)
	if err != nil {
		r.a.log.Debug("checkpoint", "err", err)
		return
	}
	for i, it := range items {
		if i >= len(res.Items) || res.Items[i] == nil {
			r.lastCkpt[it.Partition] = it.Seq
		}
	}
	r.a.metrics.checkpoints.Add(float64(len(items)))
}

// leave starts the graceful leave of Close.
func (r *reconciler) leave(ctx context.Context) {
	r.leaving = true
	if r.sess.inc == 0 {
		r.finishLeave(ctx)
		return
	}
	_, err := r.withRetry(ctx, "leave", func(ctx context.Context) (any, error) {
		return r.a.coord.Leave(ctx, r.a.worker, r.sess.inc)
	})
	if err != nil {
		r.a.log.Warn("leave", "err", err)
	}
}

// finishLeave runs once nothing is owned or handed: the consumer has no more
// duty, so it is deleted, and Close may return.
func (r *reconciler) finishLeave(ctx context.Context) {
	r.empty = true
	r.stopPull()
	if r.exists {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := r.a.stream.DeleteConsumer(dctx, consumerName(r.a.opts.prefix, r.a.worker, r.sess.inc))
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			r.a.log.Warn("delete consumer on leave", "err", err)
		}
		r.exists = false
	}
	close(r.a.emptyCh)
}

func itemErr(items []*api.Error) error {
	for _, e := range items {
		if e != nil {
			return e
		}
	}
	return nil
}
