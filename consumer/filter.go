package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/consumer/internal/core"
	"github.com/batonhq/baton/fsm"
)

// The consumer manager: the one goroutine that edits this worker's durable
// consumer and runs its pull loop. It takes the latest SetFilter from a
// mailbox, so requests that arrive while an update is in flight coalesce
// into the next one. An urgent request (one a handoff waits on) is applied
// at once; others are spaced by the coalescing window. It re-reads the
// consumer before changing it (someone may have changed or deleted it),
// creates it lazily, and never sends an empty filter (that would mean the
// whole stream): with nothing to cover, the consumer is paused or deleted per
// EmptyPolicy.

type filterManager struct {
	a *Applier

	mu      sync.Mutex // guards latest, has and stopped
	latest  core.SetFilter
	has     bool
	stopped bool
	sig     chan struct{}
	// trouble: the pull loop escalates (consumer gone, iterator failing).
	trouble chan error

	// Owned by run.
	inc    fsm.Incarnation
	exists bool
	paused bool
	// gone: the consumer was found deleted and is not made again yet.
	gone bool
	// probe: a create failed with an unknown outcome; the next attempt
	// looks for the consumer first.
	probe   bool
	cons    jetstream.Consumer
	info    *jetstream.ConsumerInfo // as the last read or update returned it
	last    time.Time
	pull    context.CancelFunc
	pullEnd chan struct{}

	// dseq is the last consumer delivery sequence the pull loop saw: a
	// delivery past dseq+1 comes after a gap (core.Delivery.Gap). The
	// running pull loop owns it; create resets it while no pull loop runs,
	// since a new consumer counts from 1.
	dseq *uint64
}

func newFilterManager(a *Applier) *filterManager {
	return &filterManager{a: a, sig: make(chan struct{}, 1), trouble: make(chan error, 1), dseq: new(uint64)}
}

// want hands the manager a new request; it replaces any not yet applied.
func (m *filterManager) want(sf core.SetFilter) {
	m.mu.Lock()
	if m.has && m.latest.Urgent {
		sf.Urgent = true
	}
	if m.has && m.latest.Verify {
		sf.Verify = true
	}
	m.latest, m.has = sf, true
	m.mu.Unlock()
	select {
	case m.sig <- struct{}{}:
	default:
	}
}

func (m *filterManager) take() (core.SetFilter, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sf, ok := m.latest, m.has
	m.has = false
	return sf, ok
}

func (m *filterManager) peekUrgent() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.has && m.latest.Urgent
}

// stop ends the manager's work once a leave is finished: the pull loop
// stops and no further update is applied.
func (m *filterManager) stop() {
	m.mu.Lock()
	m.stopped, m.has = true, false
	m.mu.Unlock()
	select {
	case m.sig <- struct{}{}:
	default:
	}
}

func (m *filterManager) isStopped() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopped
}

func (m *filterManager) run(ctx context.Context) {
	defer m.stopPull()
	var applied core.SetFilter
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.sig:
		case err := <-m.trouble:
			if m.isStopped() {
				continue
			}
			m.a.log.Warn("pull loop trouble; checking the consumer", "err", err)
			m.stopPull()
			m.a.setConsumerErr(fmt.Errorf("consumer: pull loop: %w", err))
			if applied.Inc == 0 || applied.Inc != m.a.inc() {
				// The incarnation is over: its consumer is its next owners'
				// to clean, never to be recreated here.
				continue
			}
			// Check the consumer and recreate it if it is gone.
			if _, has := m.peek(); !has {
				applied.Verify = true
				m.want(applied)
			}
			continue
		}
		if !m.peekUrgent() {
			// Space non-urgent updates by the coalescing window; an urgent
			// request ends the wait.
			if !m.coalesceWait(ctx) {
				return
			}
		}
		if m.isStopped() {
			m.stopPull()
			continue
		}
		sf, ok := m.take()
		if !ok {
			continue
		}
		m.last = time.Now()
		start := time.Now()
		recreated, err := m.apply(ctx, sf)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			m.a.log.Warn("consumer update", "class", classify(err), "err", err)
			err = m.a.updateFailed(err)
			m.a.metrics.updates.WithLabelValues("failure").Inc()
		} else {
			applied = sf
			applied.Verify = false
			m.a.metrics.updateSeconds.Observe(time.Since(start).Seconds())
		}
		// The core learns of the update (and of a recreated consumer)
		// before the pull loop may hand it a delivery of the new consumer:
		// a delivery first would move the partition past what the old
		// consumer never delivered, and the catch-up from there would skip it.
		inc, ver := sf.Inc, sf.Version
		stepped := make(chan struct{})
		if !m.a.post(ctx, func(c *core.Core, now time.Time) {
			c.FilterDone(now, inc, ver, recreated, err)
			close(stepped)
		}) {
			return
		}
		select {
		case <-stepped:
		case <-ctx.Done():
			return
		}
		if err == nil {
			m.startPull()
		}
	}
}

func (m *filterManager) peek() (core.SetFilter, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.latest, m.has
}

// coalesceWait waits out what is left of the coalescing window since the
// last update, or until an urgent request arrives; false when ctx ends.
func (m *filterManager) coalesceWait(ctx context.Context) bool {
	wait := time.Until(m.last.Add(m.a.opts.coalesce))
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-m.sig:
			if m.peekUrgent() {
				return true
			}
		}
	}
}

// apply makes the server's consumer filter exactly sf.Subjects; recreated
// says the consumer had disappeared and was made again.
func (m *filterManager) apply(ctx context.Context, sf core.SetFilter) (recreated bool, err error) {
	a := m.a
	if sf.Inc != m.inc {
		// A new incarnation: the previous one's consumer is left to the
		// next owners of its partitions (and the janitor).
		m.stopPull()
		m.inc, m.exists, m.paused, m.cons, m.info, m.gone, m.probe = sf.Inc, false, false, nil, nil, false, false
	}
	name := consumerName(a.opts.prefix, a.worker, sf.Inc)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	want := sf.Subjects
	if len(want) == 0 {
		return false, m.toEmpty(ctx, name)
	}
	info := m.info
	adopted := false
	if (m.exists && (info == nil || sf.Verify)) || (!m.exists && m.probe) {
		// Read the consumer back: on a Verify (a stuck phase, pull-loop
		// trouble), when nothing is cached, or after a create of unknown
		// outcome. Otherwise the configuration the last update returned
		// stands in for it: an update of a consumer deleted behind our back
		// fails, and is then recreated. A create applied but not answered
		// left a consumer whose start sequence a new create cannot change
		// (10012): it is taken as it is.
		c, err := a.stream.Consumer(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			if m.exists {
				m.lost(name)
			}
		case err != nil:
			return false, fmt.Errorf("read consumer %s: %w", name, err)
		default:
			if !m.exists {
				m.exists, m.paused, *m.dseq, adopted = true, false, 0, true
				a.log.Info("consumer found made by an earlier attempt", "consumer", name)
			}
			m.cons, info = c, c.CachedInfo()
			m.info = info
		}
		m.probe = false
	}
	if !m.exists {
		return m.makeAgain(ctx, name, want)
	}
	have := slices.Clone(info.Config.FilterSubjects)
	if info.Config.FilterSubject != "" {
		have = append(have, info.Config.FilterSubject)
	}
	slices.Sort(have)
	if slices.Equal(have, want) {
		a.metrics.updates.WithLabelValues("noop").Inc()
	} else {
		if a.retention == jetstream.WorkQueuePolicy && adds(have, want) {
			if err := m.lowerFloor(ctx, name); err != nil {
				m.info = nil // read it back next time: it may be gone
				return false, err
			}
		}
		cfg := info.Config
		cfg.FilterSubject, cfg.FilterSubjects = "", want
		c, err := a.stream.UpdateConsumer(ctx, cfg)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			m.lost(name)
			return m.makeAgain(ctx, name, want)
		}
		if err != nil {
			m.info = nil
			return false, fmt.Errorf("update consumer %s filters: %w", name, err)
		}
		m.cons, m.info = c, c.CachedInfo()
		if a.log.Enabled(ctx, slog.LevelDebug) {
			ci := m.info
			a.log.Debug("consumer filter updated", "consumer", name, "version", sf.Version, "subjects", len(want),
				"delivered", ci.Delivered.Stream, "ack_floor", ci.AckFloor.Stream)
		}
		a.metrics.subjectChanges(have, want)
		a.metrics.updates.WithLabelValues("success").Inc()
	}
	a.metrics.subjects.Set(float64(len(want)))
	if m.paused {
		if _, err := a.stream.ResumeConsumer(ctx, name); err != nil {
			return false, fmt.Errorf("resume consumer %s: %w", name, err)
		}
		m.paused = false
	}
	a.setConsumerErr(nil)
	if adopted {
		recreated, m.gone = m.gone, false
	}
	return recreated, nil
}

// lost notes that the consumer is gone: it is made again, and the core told
// so, by the next makeAgain that succeeds.
func (m *filterManager) lost(name string) {
	if !m.gone {
		m.a.log.Warn("consumer disappeared; recreating it", "consumer", name)
		m.a.metrics.recreations.Inc()
	}
	m.stopPull()
	m.exists, m.info, m.gone = false, nil, true
}

// makeAgain creates the consumer (the first time, or again after it was
// lost); recreated says it had been lost, so that the core makes every
// partition read again from what it processed.
func (m *filterManager) makeAgain(ctx context.Context, name string, want []string) (recreated bool, err error) {
	if !m.a.leaseHolds() {
		// Fenced: the partitions may be someone else's by now, and a
		// consumer made again with their subjects would refuse their new
		// owner's cover (WorkQueue) or keep their messages (Interest).
		// Made once the session is renewed; a new incarnation has its own.
		return false, errFencedNoCreate
	}
	if err := m.create(ctx, name, want); err != nil {
		m.probe = true
		return false, err
	}
	recreated, m.gone = m.gone, false
	return recreated, nil
}

// errFencedNoCreate: the consumer is not made while the lease has run out.
var errFencedNoCreate = errors.New("consumer: fenced; the consumer is made again once the session is renewed")

// lowerFloor readies a WorkQueue consumer for new subjects: paused, then
// reset to the stream's start (fact 26). Its ack floor passes over the
// messages of subjects it does not cover, and once a subject is added the
// server takes that subject's messages at or below the floor for acked and
// removes them whenever it checks the consumer's interest state (a new
// consumer or stream leader, every two minutes on a cluster): the part of a
// partition's backlog the catch-up has not read yet would be lost. After the
// reset the floor is below every stored message, and the pause keeps the
// cursor there until the update has added the subjects; the apply resumes it.
// What the consumer had in flight is delivered again (the core takes the
// copies for duplicates), and acks sent before a message's new delivery are
// ignored by the server (settle retries them).
func (m *filterManager) lowerFloor(ctx context.Context, name string) error {
	a := m.a
	m.stopPull()
	if !m.paused {
		if _, err := a.stream.PauseConsumer(ctx, name, time.Now().Add(100*365*24*time.Hour)); err != nil {
			return fmt.Errorf("pause consumer %s: %w", name, err)
		}
		m.paused = true
	}
	// On a cluster the pause is answered once proposed, and the consumer's
	// leader applies it later: a reset before that would deliver at once
	// (to pulls nobody reads any more, and past the new subjects' backlog).
	if err := m.waitPaused(ctx, name); err != nil {
		return err
	}
	if _, err := a.stream.ResetConsumerToSequence(ctx, name, 1); err != nil {
		return fmt.Errorf("reset consumer %s: %w", name, err)
	}
	// The delivery sequence starts again at 1; no pull loop runs.
	*m.dseq = 0
	a.metrics.resets.Inc()
	return nil
}

// waitPaused waits until the consumer's leader reports it paused.
func (m *filterManager) waitPaused(ctx context.Context, name string) error {
	b := newBackoff(5*time.Millisecond, 200*time.Millisecond)
	for {
		c, err := m.a.stream.Consumer(ctx, name)
		if err == nil && c.CachedInfo().Paused {
			return nil
		}
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("consumer %s: %w", name, err)
		}
		if !b.wait(ctx, transient) {
			return fmt.Errorf("consumer %s not paused yet: %w", name, ctx.Err())
		}
	}
}

// adds reports whether want has a subject have lacks (both sorted).
func adds(have, want []string) bool {
	for _, s := range want {
		if _, found := slices.BinarySearch(have, s); !found {
			return true
		}
	}
	return false
}

// create makes the consumer. On a WorkQueue stream it must deliver all; on the
// others it starts at the stream's end, since every partition's earlier
// messages come from the catch-up read anyway.
func (m *filterManager) create(ctx context.Context, name string, want []string) error {
	a := m.a
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
	m.cons, m.info, m.exists, m.paused = c, c.CachedInfo(), true, false
	*m.dseq = 0
	a.metrics.subjectChanges(nil, want)
	a.metrics.updates.WithLabelValues("success").Inc()
	a.metrics.subjects.Set(float64(len(want)))
	a.setConsumerErr(nil)
	return nil
}

// toEmpty handles an assignment with nothing to cover.
func (m *filterManager) toEmpty(ctx context.Context, name string) error {
	a := m.a
	if !m.exists {
		if m.probe {
			// A create of unknown outcome may have left it: nothing to
			// cover, so it must not stay.
			if err := a.stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("delete consumer %s: %w", name, err)
			}
			m.probe = false
		}
		return nil
	}
	m.stopPull()
	a.metrics.subjects.Set(0)
	a.metrics.pending.Set(0)
	if a.opts.empty == EmptyPause && a.retention == jetstream.LimitsPolicy {
		if m.paused {
			return nil
		}
		if _, err := a.stream.PauseConsumer(ctx, name, time.Now().Add(100*365*24*time.Hour)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("pause consumer %s: %w", name, err)
		}
		m.paused = true
		return nil
	}
	if err := a.stream.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("delete consumer %s: %w", name, err)
	}
	m.exists, m.paused, m.info = false, false, nil
	return nil
}

func (m *filterManager) startPull() {
	if m.pull != nil || m.cons == nil || !m.exists || m.paused {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.pull, m.pullEnd = cancel, done
	cons, inc, dseq := m.cons, m.inc, m.dseq
	m.a.wg.Add(1)
	go func() {
		defer m.a.wg.Done()
		defer close(done)
		m.a.pullLoop(ctx, cons, inc, dseq, m.trouble)
	}()
}

func (m *filterManager) stopPull() {
	if m.pull == nil {
		return
	}
	m.pull()
	<-m.pullEnd
	m.pull, m.pullEnd = nil, nil
}

// setConsumerErr publishes the consumer's trouble for Health (nil: none).
func (a *Applier) setConsumerErr(err error) {
	a.consumerErr.Store(&err)
}

// pullLoop feeds the loop from the durable consumer of incarnation inc. The
// iterator is restarted after errors with backoff; after opts.iteratorEscalate
// failures in a row (or at once when the consumer is gone) the manager is
// told to check the consumer and recreate it. dseq is the last delivery
// sequence seen, kept across iterators and pull loops of one consumer.
func (a *Applier) pullLoop(ctx context.Context, cons jetstream.Consumer, inc fsm.Incarnation, dseq *uint64, trouble chan<- error) {
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
		n, err := a.drainIterator(ctx, it, inc, dseq)
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
// it forwarded: an iterator that delivered is not a failing one. A delivery
// whose consumer sequence skips past *dseq+1 is marked as coming after a gap:
// the deliveries in between were lost on their way (the connection to NATS,
// or the route from the consumer's leader, broke) and will come back as
// redeliveries only after AckWait, behind later messages.
func (a *Applier) drainIterator(ctx context.Context, it jetstream.MessagesContext, inc fsm.Incarnation, dseq *uint64) (int, error) {
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
		meta, err := m.Metadata()
		if err != nil {
			continue // not a JetStream message; nothing to ack
		}
		a.metrics.pending.Set(float64(meta.NumPending))
		d := &core.Delivery{Seq: fsm.StreamSeq(meta.Sequence.Stream), Subject: m.Subject(), Inc: inc,
			Payload: &message{subject: m.Subject(), header: m.Headers(), data: m.Data(), time: meta.Timestamp, msg: m}}
		if c := meta.Sequence.Consumer; c > *dseq+1 {
			d.Gap = true
			a.metrics.deliveryGaps.Inc()
			a.log.Warn("deliveries lost on their way; partitions read again from what they processed",
				"after_delivery", *dseq, "next_delivery", c, "seq", meta.Sequence.Stream)
		}
		*dseq = max(*dseq, meta.Sequence.Consumer)
		select {
		case a.msgs <- d:
			n++
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
}

// escalate reports consumer trouble to the manager when the consumer is gone
// or the iterator keeps failing. It returns true when the loop should end (the
// manager restarts it).
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

// updateFailed is what a failed consumer update means beyond itself. A
// WorkQueue refusal of an overlapping filter is marked for the core, which
// cleans the partitions' gone lingerers again, and pokes the janitor: a gone
// incarnation's consumer that no partition lists any more (its late update
// landed after the next owner activated) is only the janitor's to find.
func (a *Applier) updateFailed(err error) error {
	err = markOverlap(err)
	if errors.Is(err, core.ErrOverlap) {
		a.pokeJanitor()
	}
	return err
}

// markOverlap marks a WorkQueue stream's refusal of an overlapping filter
// (10100) with core.ErrOverlap, on which the core cleans gone owners'
// consumers again.
func markOverlap(err error) error {
	if ae, ok := errors.AsType[*jetstream.APIError](err); ok && ae.ErrorCode == errCodeWQNotUnique {
		return fmt.Errorf("%w: %w", core.ErrOverlap, err)
	}
	return err
}
