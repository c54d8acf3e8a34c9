package consumer

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// ensureFilters makes the server's consumer filter exactly want. It re-reads
// the consumer first (someone may have changed or deleted it), creates it
// lazily, and never sends an empty filter (that would mean the whole stream):
// with nothing to cover, the consumer is paused or deleted per EmptyPolicy.
func (r *reconciler) ensureFilters(ctx context.Context, want []string) error {
	a := r.a
	name := consumerName(a.opts.prefix, a.worker, r.sess.inc)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if len(want) == 0 {
		return r.toEmpty(ctx, name)
	}
	var info *jetstream.ConsumerInfo
	if r.exists {
		c, err := a.stream.Consumer(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			a.log.Warn("consumer disappeared; recreating it", "consumer", name)
			a.metrics.recreations.Inc()
			r.stopPull()
			r.exists, r.lost = false, true
		case err != nil:
			return fmt.Errorf("read consumer %s: %w", name, err)
		default:
			r.cons, info = c, c.CachedInfo()
		}
	}
	if !r.exists {
		return r.create(ctx, name, want)
	}
	have := slices.Clone(info.Config.FilterSubjects)
	if info.Config.FilterSubject != "" {
		have = append(have, info.Config.FilterSubject)
	}
	slices.Sort(have)
	if slices.Equal(have, want) {
		a.metrics.updates.WithLabelValues("noop").Inc()
	} else {
		cfg := info.Config
		cfg.FilterSubject, cfg.FilterSubjects = "", want
		c, err := a.stream.UpdateConsumer(ctx, cfg)
		if err != nil {
			return fmt.Errorf("update consumer %s filters: %w", name, err)
		}
		r.cons = c
		a.metrics.subjectChanges(have, want)
		a.metrics.updates.WithLabelValues("success").Inc()
	}
	r.filters = want
	a.metrics.subjects.Set(float64(len(want)))
	if r.paused {
		if _, err := a.stream.ResumeConsumer(ctx, name); err != nil {
			return fmt.Errorf("resume consumer %s: %w", name, err)
		}
		r.paused = false
	}
	r.startPull()
	return nil
}

// create makes the consumer. On a WorkQueue stream it must deliver all; on the
// others it starts at the stream's end, since every partition's earlier
// messages come from the catch-up read anyway.
func (r *reconciler) create(ctx context.Context, name string, want []string) error {
	a := r.a
	cfg := jetstream.ConsumerConfig{
		Durable: name, FilterSubjects: want, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: a.opts.ackWait, MaxAckPending: a.opts.maxAckPending, MaxDeliver: -1,
		Description: "baton worker " + string(a.worker),
	}
	if a.retention == jetstream.WorkQueuePolicy {
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	} else {
		si, err := a.stream.Info(ctx)
		if err != nil {
			return fmt.Errorf("stream info: %w", err)
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, si.State.LastSeq+1
	}
	c, err := a.stream.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", name, err)
	}
	a.log.Info("consumer created", "consumer", name, "subjects", len(want))
	r.cons, r.exists, r.paused, r.filters = c, true, false, want
	if r.lost {
		// Only now that the new consumer covers the partitions may their
		// catch-up reads begin: a read that ended before the consumer
		// existed would miss what was published in between.
		r.lost = false
		r.recreated(ctx)
	}
	a.metrics.subjectChanges(nil, want)
	a.metrics.updates.WithLabelValues("success").Inc()
	a.metrics.subjects.Set(float64(len(want)))
	a.setHealth(func(h *healthState) { h.consumerErr = nil })
	r.startPull()
	return nil
}

// empty handles an assignment with nothing to cover.
func (r *reconciler) toEmpty(ctx context.Context, name string) error {
	a := r.a
	if !r.exists {
		return nil
	}
	r.stopPull()
	a.metrics.subjects.Set(0)
	if a.opts.empty == EmptyPause && a.retention == jetstream.LimitsPolicy {
		if r.paused {
			return nil
		}
		if _, err := a.stream.PauseConsumer(ctx, name, time.Now().Add(100*365*24*time.Hour)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("pause consumer %s: %w", name, err)
		}
		r.paused = true
		return nil
	}
	if err := a.stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("delete consumer %s: %w", name, err)
	}
	r.exists, r.paused, r.filters = false, false, nil
	return nil
}

// recreated restarts every running partition's catch-up: the new consumer
// starts where the stream ends, and whatever the old one had not delivered is
// read again from each partition's processed position.
func (r *reconciler) recreated(ctx context.Context) {
	r.a.disp.call(ctx, ctrlReq{op: opRestartAll})
}

func (r *reconciler) startPull() {
	if r.pullCancel != nil || r.cons == nil || r.paused {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.pullCancel, r.pullDone = cancel, done
	cons := r.cons
	r.a.wg.Add(1)
	go func() {
		defer r.a.wg.Done()
		defer close(done)
		r.a.pullLoop(ctx, cons, r.a.disp.in, r.trouble)
	}()
}

func (r *reconciler) stopPull() {
	if r.pullCancel == nil {
		return
	}
	r.pullCancel()
	<-r.pullDone
	r.pullCancel, r.pullDone = nil, nil
}

// onTrouble handles the pull loop's escalation: check the consumer, recreate
// it if it is gone, and start a fresh pull loop.
func (r *reconciler) onTrouble(ctx context.Context, err error) {
	r.a.log.Warn("pull loop trouble; checking the consumer", "err", err)
	r.stopPull()
	r.a.setHealth(func(h *healthState) { h.consumerErr = fmt.Errorf("consumer: pull loop: %w", err) })
	// apply (right after) re-reads the consumer and recreates it if needed.
}

// checkTemplate refuses a partition whose subjects do not follow the
// configured template.
func (a *Applier) checkTemplate(p fsm.AssignedPartition) error {
	if a.opts.subjectTemplate == "" {
		return nil
	}
	want, err := Subject(a.opts.subjectTemplate, p.Partition)
	if err != nil {
		return err
	}
	if len(p.Subjects) != 1 || p.Subjects[0] != want {
		return fmt.Errorf("%w: %s has %v, template gives %s", ErrTemplateMismatch, p.Partition, p.Subjects, want)
	}
	return nil
}

// cleanLingerers removes p's subjects from the consumers of its gone earlier
// owners, and deletes such a consumer once nothing is left in its filter.
func (r *reconciler) cleanLingerers(ctx context.Context, p fsm.AssignedPartition) error {
	for _, l := range p.Lingerers {
		if !l.Gone {
			continue
		}
		name := consumerName(r.a.opts.prefix, l.Worker, l.Incarnation)
		if err := r.a.removeSubjects(ctx, name, p.Subjects); err != nil {
			return fmt.Errorf("clean %s of %s: %w", name, p.Partition, err)
		}
	}
	return nil
}

// cleanAfterActivation cleans the gone lingerers' consumers of a partition
// this worker just activated (Limits, Interest: after our own filter covers
// it, so that an Interest stream never loses coverage).
func (r *reconciler) cleanAfterActivation(ctx context.Context, id fsm.PartitionID) {
	rp := r.parts[id]
	if rp == nil || rp.cleaned {
		return
	}
	for _, p := range r.asg.Partitions {
		if p.Partition == id {
			if err := r.cleanLingerers(ctx, p); err != nil {
				r.a.log.Warn("clean up after activation", "partition", id, "err", err)
				return // the janitor tries again
			}
		}
	}
	rp.cleaned = true
}

// removeSubjects takes subjects out of another (gone) consumer's filter by
// read-modify-write, verifying the result, and deletes the consumer when its
// filter would be empty. Only consumers of gone incarnations are edited, so no
// live worker's own updates can be lost.
func (a *Applier) removeSubjects(ctx context.Context, name string, subjects []string) error {
	b := newBackoff(20*time.Millisecond, time.Second)
	for attempt := 0; attempt < 8; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := a.removeOnce(cctx, name, subjects)
		cancel()
		if err == nil {
			return nil
		}
		if !b.wait(ctx, classify(err)) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("consumer: could not clean %s", name)
}

var errRetryClean = errors.New("consumer: filter changed under us")

func (a *Applier) removeOnce(ctx context.Context, name string, subjects []string) error {
	c, err := a.stream.Consumer(ctx, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	cfg := c.CachedInfo().Config
	have := slices.Clone(cfg.FilterSubjects)
	if cfg.FilterSubject != "" {
		have = append(have, cfg.FilterSubject)
	}
	keep := slices.DeleteFunc(slices.Clone(have), func(s string) bool { return slices.Contains(subjects, s) })
	if len(keep) == len(have) {
		return nil
	}
	if len(keep) == 0 {
		err := a.stream.DeleteConsumer(ctx, name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return err
		}
		a.metrics.cleanups.Inc()
		a.log.Info("deleted a gone worker's consumer", "consumer", name)
		return nil
	}
	cfg.FilterSubject, cfg.FilterSubjects = "", keep
	if _, err := a.stream.UpdateConsumer(ctx, cfg); err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		return err
	}
	// Verify: another cleaner may have written an older filter back.
	c, err = a.stream.Consumer(ctx, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, s := range c.CachedInfo().Config.FilterSubjects {
		if slices.Contains(subjects, s) {
			return errRetryClean
		}
	}
	a.metrics.cleanups.Inc()
	return nil
}

// Inspector lists the cluster's workers and partitions. When the Coordinator
// implements it (api/client does), the applier's janitor cleans consumers that
// gone incarnations left behind and nobody else will clean: for example one
// whose worker died after its handed partitions were activated elsewhere.
type Inspector interface {
	Workers(ctx context.Context) (api.WorkerList, error)
	AllPartitions(ctx context.Context) iter.Seq2[fsm.PartitionInfo, error]
}

// janitor cleans consumers of gone incarnations: every subject no partition
// still needs from them (as its orphaned owner, or as a lingerer until the next
// activation) is removed, and a consumer needing nothing is deleted.
func (r *reconciler) janitor(ctx context.Context) {
	insp, ok := r.a.coord.(Inspector)
	if !ok || r.sess.inc == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	a := r.a
	var dead []string
	for name := range a.stream.ConsumerNames(ctx).Name() {
		if _, _, ok := parseConsumerName(a.opts.prefix, name); ok && name != consumerName(a.opts.prefix, a.worker, r.sess.inc) {
			dead = append(dead, name)
		}
	}
	if len(dead) == 0 {
		return
	}
	wl, err := insp.Workers(ctx)
	if err != nil {
		return
	}
	live := map[string]bool{}
	for _, w := range wl.Workers {
		if w.State != fsm.WorkerGone {
			live[consumerName(a.opts.prefix, w.ID, w.Incarnation)] = true
		}
	}
	needed := map[string][]string{} // consumer -> subjects still needed
	for p, err := range insp.AllPartitions(ctx) {
		if err != nil {
			return
		}
		if p.Owner != "" && p.Phase == fsm.PhaseOrphaned {
			n := consumerName(a.opts.prefix, p.Owner, p.OwnerIncarnation)
			needed[n] = append(needed[n], p.Subjects...)
		}
		for _, l := range p.Lingerers {
			n := consumerName(a.opts.prefix, l.Worker, l.Incarnation)
			needed[n] = append(needed[n], p.Subjects...)
		}
	}
	for _, name := range dead {
		if live[name] {
			continue
		}
		c, err := a.stream.Consumer(ctx, name)
		if err != nil {
			continue
		}
		var drop []string
		for _, s := range c.CachedInfo().Config.FilterSubjects {
			if !slices.Contains(needed[name], s) {
				drop = append(drop, s)
			}
		}
		if len(drop) > 0 {
			if err := a.removeSubjects(ctx, name, drop); err != nil {
				a.log.Warn("janitor", "consumer", name, "err", err)
			}
		}
	}
}
