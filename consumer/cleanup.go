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
	"github.com/batonhq/baton/consumer/internal/core"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/retry"
)

// Cleaning up after gone incarnations: every consumer is named for one
// incarnation, and only the consumers of incarnations that are gone are ever
// edited by others — by the next owner of each of their partitions (Clean),
// and by the janitor for what nobody else will clean.

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

// clean removes a partition's subjects from the consumers of its gone
// earlier owners, and tells the core how it went.
func (a *Applier) clean(ctx context.Context, c core.Clean) {
	var err error
	for _, l := range c.Lingerers {
		if !l.Gone {
			continue
		}
		name := consumerName(a.opts.prefix, l.Worker, l.Incarnation)
		if e := a.removeSubjects(ctx, name, c.Subjects); e != nil {
			err = fmt.Errorf("clean %s of %s: %w", name, c.Partition, e)
			a.log.Warn("clean up a gone owner's consumer", "partition", c.Partition, "err", err)
			break
		}
	}
	a.post(ctx, func(co *core.Core, now time.Time) { co.CleanDone(now, c.Partition, c.Epoch, err) })
}

// removeSubjects takes subjects out of another (gone) consumer's filter by
// read-modify-write, verifying the result, and deletes the consumer when its
// filter would be empty. Only consumers of gone incarnations are edited, so no
// live worker's own updates can be lost.
func (a *Applier) removeSubjects(ctx context.Context, name string, subjects []string) error {
	err := retry.Do(ctx, cleanPolicy(), func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return a.removeOnce(cctx, name, subjects)
	})
	if err != nil {
		return fmt.Errorf("consumer: could not clean %s: %w", name, err)
	}
	return nil
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
		if !deleteInstead(a.retention, err) {
			return err
		}
		// The server cannot update it (seen: its store directory gone
		// after a delete raced an update, so every update fails and its
		// filter holds the subjects for good). Nothing on this stream
		// needs a gone worker's consumer to keep messages: delete it.
		a.log.Warn("a gone worker's consumer cannot be updated; deleting it", "consumer", name, "err", err)
		if err := a.stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return err
		}
		a.metrics.cleanups.Inc()
		return nil
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

// deleteInstead reports whether a gone worker's consumer whose update failed
// with err should be deleted rather than updated again: when the server
// failed internally (an update it will keep failing), on a stream where
// deleting it loses nothing. On Limits and WorkQueue streams messages stay
// stored whoever consumes them, so the next owners' reads find them; on an
// Interest stream a subject nobody else covers yet would stop retaining
// messages, so the update is retried instead.
func deleteInstead(retention jetstream.RetentionPolicy, err error) bool {
	ae, ok := errors.AsType[*jetstream.APIError](err)
	return ok && ae.Code >= 500 && retention != jetstream.InterestPolicy
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
func (a *Applier) janitor(ctx context.Context, inc fsm.Incarnation) {
	insp, ok := a.coord.(Inspector)
	if !ok || inc == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var dead []string
	for name := range a.stream.ConsumerNames(ctx).Name() {
		if _, _, ok := parseConsumerName(a.opts.prefix, name); ok && name != consumerName(a.opts.prefix, a.worker, inc) {
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
		if p.Owner != "" {
			// Its owner's consumer, in any phase: a gone owner's partition
			// (orphaned, or drained before the commit) may still need the
			// coverage until its next owner activates.
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
		// Each consumer bounded: one without a leader (a NATS node down)
		// must not hold up the others for the run's whole minute.
		cctx, cancel := context.WithTimeout(ctx, janitorPerConsumer)
		a.janitorClean(cctx, name, needed[name])
		cancel()
	}
}

// janitorPerConsumer bounds the janitor's work on one consumer.
const janitorPerConsumer = 10 * time.Second

// janitorClean removes from a gone incarnation's consumer every subject
// not in needed.
func (a *Applier) janitorClean(ctx context.Context, name string, needed []string) {
	c, err := a.stream.Consumer(ctx, name)
	if err != nil {
		return
	}
	var drop []string
	for _, s := range c.CachedInfo().Config.FilterSubjects {
		if !slices.Contains(needed, s) {
			drop = append(drop, s)
		}
	}
	if len(drop) > 0 {
		if err := a.removeSubjects(ctx, name, drop); err != nil {
			a.log.Warn("janitor", "consumer", name, "err", err)
		}
	}
}

// pokeJanitor asks the janitor to look now; a look already asked for
// covers this one.
func (a *Applier) pokeJanitor() {
	select {
	case a.janitorNow <- struct{}{}:
	default:
	}
}

// janitorFirst is when the janitor first looks, at the latest: soon after
// start, since a worker restarted after a crash is the one most likely to
// find what its predecessor left.
const janitorFirst = 10 * time.Second

// janitorLoop runs the janitor beside the loop: once janitorFirst (or one
// interval, if shorter) after start, then every opts.janitorEvery, and
// whenever poked.
func (a *Applier) janitorLoop(ctx context.Context) {
	t := time.NewTimer(min(janitorFirst, a.opts.janitorEvery))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.janitor(ctx, a.inc())
			t.Reset(a.opts.janitorEvery)
		case <-a.janitorNow:
			a.janitor(ctx, a.inc())
		}
	}
}
