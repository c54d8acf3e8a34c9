// Package core is the applier's deterministic heart, as etcd's RawNode is
// raft's: one record per partition with an explicit phase, the worker's
// session lease, and the consumer filter it wants — and no goroutines, no I/O
// and no clock reads. Every input (an assignment, a session event, a delivery,
// a handler's result, a catch-up batch, an executor's outcome, a tick) carries
// the time it happened; every decision comes out as an Action for executors
// that run beside the core, so that no network call can delay a fence or a
// dispatch decision. The same inputs always give the same actions, which is
// what the scenario and property tests rely on.
//
// The guarantees it keeps (docs/protocol.md): per partition and epoch, every
// message is dispatched once and in stream order, one at a time; nothing of an
// owned partition is dispatched at or past the lease deadline (the send time
// of the last confirmed heartbeat plus a safe fraction of the TTL); a new
// incarnation starts unfenced with an empty slate; and every partition leaves
// every phase — a step that does not complete is retried, and a phase held
// for too long is reported as stuck.
package core

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/batonhq/baton/fsm"
)

// Retention is the stream's retention policy, which decides how messages are
// settled and when a partition may leave the filter.
type Retention uint8

const (
	// Limits: messages stay whatever consumers do.
	Limits Retention = 1 + iota
	// Interest: a message is kept while a consumer's filter covers it and that
	// consumer has not acked it.
	Interest
	// WorkQueue: a message is kept until acked; filters may not overlap.
	WorkQueue
)

func (r Retention) String() string {
	switch r {
	case Limits:
		return "limits"
	case Interest:
		return "interest"
	case WorkQueue:
		return "workqueue"
	}
	return "invalid"
}

// Config is the core's fixed configuration.
type Config struct {
	Worker    fsm.WorkerID
	Retention Retention
	// Concurrency bounds handlers running at once, across partitions.
	Concurrency int
	// MaxSubjects bounds the consumer's filter.
	MaxSubjects int
	// ReadWindow bounds one catch-up read and the read-ahead per partition.
	ReadWindow int
	// DrainTimeout bounds a drain's wait for the in-flight handler; then its
	// context is cancelled.
	DrainTimeout time.Duration
	// CheckpointEvery spaces checkpoint reports.
	CheckpointEvery time.Duration
	// LeaseFraction is the part of the session TTL, counted from the send
	// time of the last confirmed heartbeat, during which the worker may
	// dispatch (default 0.8: the leader counts the TTL from the heartbeat's
	// arrival, which is later).
	LeaseFraction float64
	// StuckAfter is how long a partition may stay in a transitional phase
	// before it is reported stuck and its step retried from scratch.
	StuckAfter time.Duration
	// RetryMin and RetryMax bound the back-off between retries of a failed
	// step (reports, filter updates, cleanups).
	RetryMin, RetryMax time.Duration
	// Check refuses a partition (a subject template guard); nil accepts all.
	Check func(fsm.AssignedPartition) error
}

// ErrMaxSubjects is reported when the assignment needs more filter subjects
// than the configuration allows; the consumer keeps its current filter.
var ErrMaxSubjects = errors.New("consumer: too many filter subjects")

// ErrOverlap marks a filter update refused because another consumer still
// filters one of its subjects on a WorkQueue stream (JetStream's 10100); the
// shell wraps the server's error with it.
var ErrOverlap = errors.New("consumer: filter overlaps another consumer's on a WorkQueue stream")

func (c *Config) setDefaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.MaxSubjects <= 0 {
		c.MaxSubjects = 1000
	}
	if c.ReadWindow <= 0 {
		c.ReadWindow = 256
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = time.Second
	}
	if c.LeaseFraction <= 0 || c.LeaseFraction >= 1 {
		c.LeaseFraction = 0.8
	}
	if c.StuckAfter <= 0 {
		c.StuckAfter = 10 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 20 * time.Millisecond
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(time.Second, c.RetryMin)
	}
}

// Delivery is one message of a partition, from the consumer or a catch-up
// read. The core reads Seq, Subject and FromRead; Payload is the executors'
// (the message, its ack handle).
type Delivery struct {
	Seq     fsm.StreamSeq
	Subject string
	// FromRead marks a catch-up read; otherwise the delivery came from the
	// consumer of incarnation Inc (a previous incarnation's are ignored).
	FromRead bool
	Inc      fsm.Incarnation
	// Gap marks a consumer delivery that came after a gap in the consumer's
	// delivery sequence: deliveries before it were lost on the way (the
	// worker's connection or the route from the consumer leader broke) and
	// come back only as redeliveries after AckWait, behind later messages.
	// Every partition being processed then reads again from what it
	// processed, as after a recreated consumer: the lost message of a
	// partition would otherwise arrive after a later one of the same
	// partition and be taken for a duplicate.
	Gap     bool
	Payload any
}

// Phase is where one partition stands on this worker.
type Phase uint8

const (
	// PhaseCleaning (WorkQueue): the gone earlier owners' consumers are
	// being cleaned of the partition's subjects, which the filter can take
	// only then (overlapping filters are refused).
	PhaseCleaning Phase = 1 + iota
	// PhaseCovering: waiting for the consumer's filter to cover the
	// partition; its catch-up read may start only then.
	PhaseCovering
	// PhaseCatchingUp: reading the stream after the resume point; consumer
	// deliveries wait, sorted, until the read reaches them.
	PhaseCatchingUp
	// PhaseLive: consumer deliveries are dispatched directly. A partition
	// the claim store still has activating is reported activated once
	// everything up to the catch-up's end is processed.
	PhaseLive
	// PhaseDraining: a handoff was prepared; nothing new is dispatched and
	// the in-flight handler finishes (or is cancelled at the drain timeout).
	PhaseDraining
	// PhaseUncovering (Limits, WorkQueue): drained; waiting for the filter
	// to drop the partition before the drain is reported.
	PhaseUncovering
	// PhaseDrained: the drain is reported (or being reported); nothing of
	// the partition is processed here any more.
	PhaseDrained
)

func (p Phase) String() string {
	switch p {
	case PhaseCleaning:
		return "cleaning"
	case PhaseCovering:
		return "covering"
	case PhaseCatchingUp:
		return "catching_up"
	case PhaseLive:
		return "live"
	case PhaseDraining:
		return "draining"
	case PhaseUncovering:
		return "uncovering"
	case PhaseDrained:
		return "drained"
	}
	return "invalid"
}

// part is one partition's record.
type part struct {
	id       fsm.PartitionID
	epoch    fsm.Epoch
	subjects []string
	phase    Phase
	since    time.Time // when phase was entered (or last retried)
	// gen changes at every (re)start of the partition's catch-up; results of
	// reads and handlers of another generation are stale.
	gen uint64
	// lastDispatched is the highest sequence queued or handed to a handler;
	// processed the highest whose handler finished (in order, so everything
	// up to it is done).
	lastDispatched fsm.StreamSeq
	processed      fsm.StreamSeq
	queue          []*Delivery
	held           []*Delivery // ascending; consumer deliveries during the catch-up
	// fresh is the lowest held delivery known to be a first delivery (0:
	// none): the consumer delivers every later message of the partition, so
	// a read that reaches it is caught up. A redelivery says nothing of the
	// messages after it and never ends a read.
	fresh fsm.StreamSeq
	// running is the generation of the partition's running handler (0:
	// none). Handlers of one partition never overlap, across generations too.
	running uint64
	// restart: start the catch-up again once the running handler returns.
	restart bool
	// reading: a Read of this generation is in flight; readNext is where the
	// next one starts; readEnd the sequence the finished read ended on.
	reading     bool
	readNext    fsm.StreamSeq
	readRetryAt time.Time
	readBackoff time.Duration
	// activation
	report     bool // the claim store has it activating: report when caught up
	activateAt fsm.StreamSeq
	caughtUp   bool // the catch-up ended; activateAt is set
	actSent    bool // an activation report with this partition is in flight
	activated  bool
	committed  time.Time // when the commit was seen (catch-up and activation timings)
	lingerers  []fsm.Lingerer
	cleaned    bool // gone lingerers cleaned (after activation, or before cover on WorkQueue)
	cleaning   bool
	cleanAt    time.Time
	coverVer   uint64
	uncoverVer uint64
	// drain
	handoff      fsm.HandoffID
	prepared     time.Time
	drainBy      time.Time
	cancelled    bool
	through      fsm.StreamSeq
	drainSent    bool
	drainFor     fsm.HandoffID // the handoff the drain report in flight names
	drainDone    bool
	stuckNotices int
	ready        bool // listed in Core.ready
}

// Core is the deterministic applier state. Not safe for concurrent use: one
// goroutine feeds it and carries out its actions.
type Core struct {
	cfg Config
	now time.Time
	out []Action

	// session
	inc        fsm.Incarnation
	ttl        time.Duration
	lease      time.Time // nothing is dispatched at or after it
	lost       bool      // the claim store forgot the session; a new registration follows
	fenced     bool
	fencedAt   time.Time
	leaving    bool
	leaveSent  bool
	leaveDone  bool
	finished   bool
	hasAsg     bool
	asg        fsm.Assignment
	refused    error
	asgWorkers error

	parts   map[fsm.PartitionID]*part
	match   *fsm.SubjectIndex
	nextGen uint64
	ready   []fsm.PartitionID // partitions with a dispatchable head, FIFO
	running int               // handlers running
	// busy is the generation of each partition's running handler, kept
	// across a partition's records: handlers of one partition never overlap,
	// even when it is dropped and owned again while an old one returns.
	busy map[fsm.PartitionID]uint64
	// delivered is the highest sequence this incarnation's consumer has
	// delivered: a consumer delivers in stream order, so a delivery above it
	// is a first delivery, and one at or below it may be a redelivery.
	delivered fsm.StreamSeq

	// filter
	filterVer     uint64
	filterSent    []string
	filterSentSet bool
	filterApplied uint64
	filterErr     error
	filterRetryAt time.Time
	filterBackoff time.Duration
	filterUrgent  bool

	// reports: one request of each kind in flight at a time
	drainFlight, actFlight, ckptFlight bool
	drainRetryAt, actRetryAt           time.Time
	drainBackoff, actBackoff           time.Duration
	lastCkpt                           map[fsm.PartitionID]ckpt
	ckptAt                             time.Time
}

type ckpt struct {
	epoch fsm.Epoch
	seq   fsm.StreamSeq
}

// New returns a core for cfg. Nothing happens until the first registration.
func New(cfg Config) *Core {
	cfg.setDefaults()
	return &Core{cfg: cfg, parts: map[fsm.PartitionID]*part{}, match: fsm.NewSubjectIndex(), lastCkpt: map[fsm.PartitionID]ckpt{},
		busy: map[fsm.PartitionID]uint64{}}
}

// Take returns the actions decided since the last call, in order.
func (c *Core) Take() []Action {
	out := c.out
	c.out = nil
	return out
}

func (c *Core) emit(a Action) { c.out = append(c.out, a) }

// Lease returns the lease deadline: nothing may be dispatched at or after it.
// The zero time means no lease (not registered, or the session is lost).
func (c *Core) Lease() time.Time {
	if c.lost || c.inc == 0 {
		return time.Time{}
	}
	return c.lease
}

// step starts every input: time moves forward (never back: a clock jump
// backwards is read as no time passing), and the lease is checked against it.
func (c *Core) step(now time.Time) {
	if now.After(c.now) {
		c.now = now
	}
	c.checkLease()
}

// after finishes every input: dispatch what may be. Time-driven duties run
// on Tick.
func (c *Core) after() {
	c.dispatch()
}

// ---- session ----

// Registered is a successful registration, sent at sent, giving incarnation
// inc with a session TTL. A new incarnation drops everything of the previous
// one — its partitions were orphaned and fail over elsewhere, its consumer is
// cleaned by their next owners — and starts unfenced with an empty slate.
func (c *Core) Registered(now time.Time, inc fsm.Incarnation, ttl time.Duration, sent time.Time) {
	c.step(now)
	if inc != c.inc {
		if c.inc != 0 {
			c.emit(Notice{Kind: NoticeNewIncarnation})
		}
		for _, p := range c.sortedParts() {
			c.drop(p)
		}
		c.inc = inc
		c.lease = time.Time{} // the previous incarnation's lease is void
		c.hasAsg = false
		c.asg = fsm.Assignment{}
		c.filterSent, c.filterSentSet, c.filterErr = nil, false, nil
		c.filterRetryAt, c.filterBackoff = time.Time{}, 0
		c.drainFlight, c.actFlight, c.ckptFlight = false, false, false
		c.lastCkpt = map[fsm.PartitionID]ckpt{}
		c.delivered = 0
		c.leaveSent, c.leaveDone = false, false
		c.refused = nil
		// The new incarnation's consumer does not exist yet; the previous
		// one's pull loop stops.
		c.setFilter(true)
	}
	c.ttl = ttl
	c.lost = false
	c.extend(sent)
	if c.leaving && !c.leaveSent {
		c.sendLeave()
	}
	c.after()
}

// Renewed is a heartbeat of incarnation inc, sent at sent, that the leader
// confirmed.
func (c *Core) Renewed(now time.Time, inc fsm.Incarnation, sent time.Time) {
	c.step(now)
	if inc == c.inc && !c.lost {
		c.extend(sent)
	}
	c.after()
}

// SessionLost is the claim store saying it does not know incarnation inc (it
// expired, or was replaced): its partitions are gone. Nothing is dispatched
// until the next registration.
func (c *Core) SessionLost(now time.Time, inc fsm.Incarnation) {
	c.step(now)
	if inc == c.inc {
		c.lost = true
		c.checkLease()
	}
	c.after()
}

func (c *Core) extend(sent time.Time) {
	l := sent.Add(time.Duration(float64(c.ttl) * c.cfg.LeaseFraction))
	if l.After(c.lease) {
		c.lease = l
	}
	c.checkLease()
}

// live reports whether the worker may dispatch now.
func (c *Core) live() bool {
	return c.inc != 0 && !c.lost && c.now.Before(c.lease)
}

// checkLease fences when the lease has run out and unfences when it was
// renewed: a fence cancels every running handler and drops what was queued
// (unacked: it was not processed); unfencing reads it again, from each
// partition's processed position.
func (c *Core) checkLease() {
	switch live := c.live(); {
	case !live && !c.fenced && c.inc != 0:
		c.fenced, c.fencedAt = true, c.now
		c.emit(Notice{Kind: NoticeFenced})
		for _, p := range c.sortedParts() {
			c.halt(p)
			c.cancelRunning(p)
			if p.phase == PhaseCatchingUp || p.phase == PhaseLive {
				p.restart = true
			}
		}
	case live && c.fenced:
		c.fenced = false
		c.emit(Notice{Kind: NoticeUnfenced, Took: c.now.Sub(c.fencedAt)})
		for _, p := range c.sortedParts() {
			if p.restart || p.phase == PhaseCatchingUp || p.phase == PhaseLive {
				c.restartPart(p)
			}
		}
	}
}

// Close starts a graceful leave: the claim store moves every partition away
// (each drained as in any handoff), and Finish comes once nothing is owned
// and no next owner needs this worker's coverage.
func (c *Core) Close(now time.Time) {
	c.step(now)
	if !c.leaving {
		c.leaving = true
		if c.inc == 0 {
			c.finish()
		} else {
			c.sendLeave()
		}
	}
	c.after()
}

func (c *Core) sendLeave() {
	c.leaveSent = true
	c.emit(Leave{Inc: c.inc})
}

// LeaveDone is the outcome of Leave. A failed leave is sent again; the worker
// then waits for its partitions to be moved away.
func (c *Core) LeaveDone(now time.Time, inc fsm.Incarnation, err error) {
	c.step(now)
	if inc == c.inc {
		if err != nil {
			c.leaveSent = false
		} else {
			c.leaveDone = true
		}
	}
	c.checkFinish()
	c.after()
}

func (c *Core) finish() {
	if !c.finished {
		c.finished = true
		c.emit(Finish{Inc: c.inc})
	}
}

// checkFinish ends a leave once nothing is owned and, on an Interest stream,
// no next owner still needs this worker's coverage (a handed partition with
// no owner needs nobody: every worker is leaving).
func (c *Core) checkFinish() {
	if !c.leaving || c.finished || !c.hasAsg {
		return
	}
	// A gone worker still lists the partitions it handed off until their
	// next owners activate (the claim store forgets it only then).
	if c.asg.State != fsm.WorkerGone && len(c.asg.Partitions) > 0 {
		return
	}
	if c.cfg.Retention == Interest {
		for _, h := range c.asg.Handed {
			if h.Owner != "" {
				return
			}
		}
	}
	c.finish()
}

// ---- assignment ----

// Assign is a new version of the worker's assignment.
func (c *Core) Assign(now time.Time, a fsm.Assignment) {
	c.step(now)
	switch {
	case c.inc == 0:
	case a.Worker != c.cfg.Worker:
		c.asgWorkers = fmt.Errorf("consumer: assignment for another worker: %s", a.Worker)
	case a.State != fsm.WorkerGone && a.Incarnation != c.inc:
		// Another incarnation's: wait for ours.
	default:
		c.asgWorkers = nil
		c.hasAsg, c.asg = true, a
		c.applyAssignment()
	}
	c.checkFinish()
	c.after()
}

func (c *Core) applyAssignment() {
	a := c.asg
	owned := map[fsm.PartitionID]fsm.AssignedPartition{}
	var refused []error
	if a.State != fsm.WorkerGone {
		for _, p := range a.Partitions {
			if c.cfg.Check != nil {
				if err := c.cfg.Check(p); err != nil {
					refused = append(refused, err)
					continue
				}
			}
			if p.Phase == fsm.PhaseOrphaned {
				continue // our session expired there: not ours to touch
			}
			owned[p.Partition] = p
		}
	}
	c.refused = errors.Join(refused...)
	changed := false
	for _, p := range c.sortedParts() {
		ap, ok := owned[p.id]
		if !ok || ap.Epoch != p.epoch {
			c.drop(p)
			changed = true
		}
	}
	ids := make([]fsm.PartitionID, 0, len(owned))
	for id := range owned {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		ap := owned[id]
		p := c.parts[id]
		switch ap.Phase {
		case fsm.PhaseActivating, fsm.PhaseActive:
			if p == nil {
				c.startPart(ap)
				changed = true
				continue
			}
			p.lingerers = ap.Lingerers
			if ap.Phase == fsm.PhaseActive && p.report && !p.activated {
				// Accepted (a report whose answer was lost, or another
				// instance of us): nothing more to report.
				p.activated = true
				c.afterActivation(p)
			}
			if p.phase >= PhaseDraining {
				// The handoff was aborted while we drained: resume from
				// where we stopped, covering the partition again first if
				// the filter dropped it.
				p.drainSent, p.drainDone, p.cancelled = false, false, false
				p.handoff = 0
				if p.phase >= PhaseUncovering && c.cfg.Retention != Interest {
					c.halt(p)
					p.coverVer = 0
					c.setPhase(p, PhaseCovering)
				} else {
					c.setPhase(p, PhaseCatchingUp)
					c.restartPart(p)
				}
				changed = true
			}
		case fsm.PhasePreparing:
			if p == nil {
				// Never started at this epoch: nothing was processed past
				// the resume point (or the checkpoint).
				p = c.newPart(ap)
				p.processed = max(ap.Checkpoint, ap.ResumeAfter)
				c.parts[id] = p
				c.rebuildMatch()
			}
			switch {
			case p.phase < PhaseDraining:
				c.startDrain(p, ap)
				changed = true
			case ap.Handoff != p.handoff:
				// The handoff was aborted and another prepared while we
				// drained (the assignment in between never seen): the
				// drain stands, and is reported for the new handoff; a
				// report naming the old one is refused.
				p.handoff, p.drainDone = ap.Handoff, false
				c.sendDrains()
			}
		case fsm.PhaseDrained:
			if p != nil && p.phase < PhaseDrained {
				// The claim store took a drain report we never saw answered.
				c.halt(p)
				c.cancelRunning(p)
				c.setPhase(p, PhaseDrained)
				p.drainDone = true
				changed = true
			}
			if p != nil {
				p.drainDone = true
			}
		}
	}
	if changed {
		c.rebuildMatch()
	}
	c.setFilter(false)
}

func (c *Core) newPart(ap fsm.AssignedPartition) *part {
	c.nextGen++
	return &part{
		id: ap.Partition, epoch: ap.Epoch, subjects: slices.Clone(ap.Subjects), gen: c.nextGen,
		lingerers: ap.Lingerers, since: c.now, running: c.busy[ap.Partition],
	}
}

// startPart begins processing a partition owned at a new epoch: activating
// ones resume after the committed resume point and are reported once caught
// up; active ones (this worker's own, met again) resume after the checkpoint.
func (c *Core) startPart(ap fsm.AssignedPartition) {
	p := c.newPart(ap)
	resume := ap.ResumeAfter
	if ap.Phase == fsm.PhaseActive {
		resume = max(ap.Checkpoint, ap.ResumeAfter)
		p.activated = true
	} else {
		p.report = true
	}
	p.processed, p.lastDispatched, p.readNext = resume, resume, resume
	p.committed = c.now
	c.parts[p.id] = p
	c.lastCkpt[p.id] = ckpt{epoch: p.epoch, seq: resume}
	if c.cfg.Retention == WorkQueue && hasGone(p.lingerers) {
		c.setPhase(p, PhaseCleaning)
		c.sendClean(p)
		return
	}
	p.cleaned = !hasGone(p.lingerers) || c.cfg.Retention == WorkQueue
	c.setPhase(p, PhaseCovering)
}

func hasGone(ls []fsm.Lingerer) bool {
	for _, l := range ls {
		if l.Gone {
			return true
		}
	}
	return false
}

// startDrain stops dispatching p: queued and held deliveries are dropped
// unacked (they were not processed), the catch-up read stops, and the drain is
// over once the running handler (if any) returns.
func (c *Core) startDrain(p *part, ap fsm.AssignedPartition) {
	c.halt(p)
	p.handoff, p.drainDone = ap.Handoff, false
	p.prepared = c.now
	p.drainBy = c.now.Add(c.cfg.DrainTimeout)
	p.restart = false
	c.setPhase(p, PhaseDraining)
	c.checkDrained(p)
}

func (c *Core) checkDrained(p *part) {
	if p.phase != PhaseDraining || p.running != 0 {
		return
	}
	p.through = p.processed
	c.emit(Notice{Kind: NoticeDrained, Partition: p.id, Epoch: p.epoch, Took: c.now.Sub(p.prepared)})
	switch c.cfg.Retention {
	case Interest:
		// Interest keeps covering it until the next owner activates: a
		// moment with no covering filter loses messages.
		c.setPhase(p, PhaseDrained)
	case Limits:
		// The drain is reported at once; the subjects leave the filter
		// beside it, so that its messages stop coming here (one that still
		// comes is a stray, acked harmlessly).
		c.setPhase(p, PhaseDrained)
		c.setFilter(false)
	default:
		// WorkQueue: the next owner cannot add the subjects before they
		// leave this filter, so the drain is reported only then.
		c.setPhase(p, PhaseUncovering)
		c.setFilter(true)
		p.uncoverVer = c.filterVer
		c.checkUncovered(p)
	}
	c.sendDrains()
}

func (c *Core) checkUncovered(p *part) {
	if p.phase == PhaseUncovering && c.filterApplied >= p.uncoverVer {
		c.setPhase(p, PhaseDrained)
		c.sendDrains()
	}
}

// drop forgets a partition: handed off (its next owner took it), lost, or
// owned at another epoch now.
func (c *Core) drop(p *part) {
	c.halt(p)
	c.cancelRunning(p)
	delete(c.parts, p.id)
	delete(c.lastCkpt, p.id)
	c.rebuildMatch()
}

// halt drops p's undispatched deliveries and stops its read.
func (c *Core) halt(p *part) {
	p.queue, p.held, p.fresh = nil, nil, 0
	p.reading = false
	c.nextGen++
	p.gen = c.nextGen
}

func (c *Core) cancelRunning(p *part) {
	if p.running != 0 {
		c.emit(Cancel{Partition: p.id, Gen: p.running})
	}
}

func (c *Core) setPhase(p *part, ph Phase) {
	p.phase, p.since, p.stuckNotices = ph, c.now, 0
}

// restartPart reads p again from its processed position under a new
// generation, once its running handler has returned (handlers of one
// partition never overlap, and what the running one finishes counts).
func (c *Core) restartPart(p *part) {
	c.halt(p)
	if p.running != 0 || !c.live() {
		p.restart = true
		return
	}
	p.restart = false
	p.lastDispatched, p.readNext = p.processed, p.processed
	p.caughtUp = false
	if p.phase == PhaseCovering || p.phase == PhaseCleaning {
		return // the read starts once covered
	}
	c.setPhase(p, PhaseCatchingUp)
	c.read(p)
}

func (c *Core) rebuildMatch() {
	c.match = fsm.NewSubjectIndex()
	for _, p := range c.parts {
		for _, s := range p.subjects {
			c.match.Add(s, p.id)
		}
	}
}

func (c *Core) sortedParts() []*part {
	out := make([]*part, 0, len(c.parts))
	for _, p := range c.parts {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *part) int { return cmp.Compare(a.id, b.id) })
	return out
}

// ---- the consumer filter ----

// wantFilter is the subject set the consumer must cover: partitions being
// processed; preparing ones until drained; on an Interest stream also drained
// ones and those handed off but not yet activated elsewhere.
func (c *Core) wantFilter() []string {
	interest := c.cfg.Retention == Interest
	var out []string
	for _, p := range c.parts {
		switch {
		case p.phase == PhaseCleaning:
		case p.phase <= PhaseDraining:
			out = append(out, p.subjects...)
		case interest:
			out = append(out, p.subjects...)
		}
	}
	if interest && c.hasAsg {
		for _, h := range c.asg.Handed {
			out = append(out, h.Subjects...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// setFilter emits a SetFilter when the wanted set changed (or force). Urgent
// when a partition waits on it.
func (c *Core) setFilter(force bool) {
	if c.inc == 0 {
		return
	}
	if c.hasAsg && c.asg.State == fsm.WorkerGone {
		// This incarnation is over (expired, replaced or left): its
		// consumer is left as it is, for the next owners of its
		// partitions to clean (a graceful leave deletes it at Finish).
		// Shrinking it here would, on an Interest stream, delete every
		// message of its orphaned partitions that nobody has processed.
		return
	}
	want := c.wantFilter()
	if len(want) > c.cfg.MaxSubjects {
		c.filterErr = fmt.Errorf("%w: %d needed, at most %d", ErrMaxSubjects, len(want), c.cfg.MaxSubjects)
		return
	}
	if errors.Is(c.filterErr, ErrMaxSubjects) {
		// Back within bounds (maybe with the filter already sent, so
		// that no FilterDone will clear it).
		c.filterErr = nil
	}
	if !force && c.filterSentSet && slices.Equal(want, c.filterSent) {
		c.coverWaiting()
		return
	}
	c.filterVer++
	c.filterSent, c.filterSentSet = want, true
	c.filterUrgent = true
	for _, p := range c.parts {
		if p.phase == PhaseCovering && p.coverVer == 0 {
			p.coverVer = c.filterVer
		}
	}
	c.emit(SetFilter{Version: c.filterVer, Inc: c.inc, Subjects: want, Urgent: c.anyWaiting()})
}

// coverWaiting gives a version to partitions waiting for a filter that
// already covers them.
func (c *Core) coverWaiting() {
	for _, p := range c.parts {
		if p.phase == PhaseCovering && p.coverVer == 0 {
			p.coverVer = c.filterVer
			c.checkCovered(p)
		}
	}
}

func (c *Core) anyWaiting() bool {
	for _, p := range c.parts {
		if p.phase == PhaseCovering || p.phase == PhaseUncovering {
			return true
		}
	}
	return false
}

// FilterDone is the outcome of a SetFilter. recreated says the consumer had
// disappeared and was created again: it starts at the stream's end, so every
// running partition reads again what the old one had not delivered.
func (c *Core) FilterDone(now time.Time, inc fsm.Incarnation, version uint64, recreated bool, err error) {
	c.step(now)
	if inc != c.inc {
		c.after()
		return
	}
	if err != nil {
		c.filterErr = err
		c.filterBackoff = c.backoff(c.filterBackoff)
		c.filterRetryAt = c.now.Add(c.filterBackoff)
		if errors.Is(err, ErrOverlap) && c.cfg.Retention == WorkQueue {
			// A gone owner's consumer holds a subject being covered: its
			// worker, cut off from the claim store but not from NATS,
			// applied its last filter update after the clean. Clean again
			// now rather than when the partition is found stuck.
			for _, p := range c.sortedParts() {
				if p.phase == PhaseCovering && hasGone(p.lingerers) && !p.cleaning {
					c.sendClean(p)
				}
			}
		}
		c.after()
		return
	}
	if version > c.filterApplied {
		c.filterApplied = version
	}
	if version == c.filterVer {
		c.filterErr, c.filterBackoff, c.filterRetryAt = nil, 0, time.Time{}
	}
	if recreated {
		c.restartProcessing()
	}
	for _, p := range c.sortedParts() {
		c.checkCovered(p)
		c.checkUncovered(p)
	}
	c.after()
}

// restartProcessing makes every partition being processed (catching up or
// live) read again from what it processed: the consumer may not deliver
// what it delivered before (a recreated consumer, a delivery gap). A
// partition being covered drops what it held: its read must not end at a
// delivery from before the gap and go on with one from after it.
func (c *Core) restartProcessing() {
	for _, p := range c.sortedParts() {
		if p.phase == PhaseCatchingUp || p.phase == PhaseLive || p.phase == PhaseCovering {
			c.restartPart(p)
		}
	}
}

func (c *Core) checkCovered(p *part) {
	if p.phase != PhaseCovering || p.coverVer == 0 || c.filterApplied < p.coverVer {
		return
	}
	c.setPhase(p, PhaseCatchingUp)
	if p.running == 0 && !p.restart && !p.reading && c.live() {
		// The deliveries held while covering are the consumer's that now
		// covers the partition: kept, the read can end at the first of
		// them instead of asking the stream leader for the end.
		p.lastDispatched, p.readNext, p.caughtUp = p.processed, p.processed, false
		c.read(p)
	} else {
		c.restartPart(p)
	}
	c.checkActivate(p)
}

// ---- catch-up reads and deliveries ----

func (c *Core) read(p *part) {
	if p.reading || p.phase != PhaseCatchingUp || !c.live() || c.now.Before(p.readRetryAt) {
		return
	}
	p.reading = true
	c.emit(Read{Partition: p.id, Gen: p.gen, Subjects: p.subjects, After: p.readNext, Limit: c.cfg.ReadWindow})
}

// ReadDone is a catch-up read's result for (partition, gen): msgs in stream
// order after the Read's After; eof when the stream leader holds nothing more.
func (c *Core) ReadDone(now time.Time, id fsm.PartitionID, gen uint64, msgs []*Delivery, eof bool, err error) {
	c.step(now)
	p := c.parts[id]
	if p == nil || p.gen != gen || !p.reading || p.phase != PhaseCatchingUp {
		c.after()
		return
	}
	p.reading = false
	if err != nil {
		// The executor retries transient errors itself; read again after a
		// back-off, from where the read stands.
		p.readBackoff = c.backoff(p.readBackoff)
		p.readRetryAt = c.now.Add(p.readBackoff)
		c.after()
		return
	}
	p.readBackoff, p.readRetryAt = 0, time.Time{}
	for _, d := range msgs {
		if d.Seq <= p.readNext {
			continue
		}
		p.readNext = d.Seq
		if p.fresh != 0 && d.Seq >= p.fresh {
			// The read reached what the consumer delivers: the gap is closed.
			c.caughtUp(p)
			c.after()
			return
		}
		if d.Seq > p.lastDispatched {
			p.queue = append(p.queue, d)
			p.lastDispatched = d.Seq
		}
	}
	if eof || len(msgs) == 0 {
		c.caughtUp(p)
	} else if len(p.queue) < c.cfg.ReadWindow/2 {
		c.read(p)
	}
	c.markReady(p)
	c.after()
}

// caughtUp ends the catch-up: held consumer deliveries are merged in order.
func (c *Core) caughtUp(p *part) {
	for _, h := range p.held {
		if h.Seq <= p.lastDispatched {
			c.duplicate(p, h)
			continue
		}
		p.queue = append(p.queue, h)
		p.lastDispatched = h.Seq
	}
	p.held = nil
	p.reading = false
	p.caughtUp = true
	p.activateAt = p.lastDispatched
	c.setPhase(p, PhaseLive)
	c.emit(Notice{Kind: NoticeCaughtUp, Partition: p.id, Epoch: p.epoch, Took: c.now.Sub(p.committed)})
	c.markReady(p)
	c.checkActivate(p)
}

// Deliver is a consumer delivery.
func (c *Core) Deliver(now time.Time, d *Delivery) {
	c.step(now)
	c.deliver(d)
	c.after()
}

// DeliverBatch is several consumer deliveries at once (cheaper than one call each).
func (c *Core) DeliverBatch(now time.Time, ds []*Delivery) {
	c.step(now)
	for _, d := range ds {
		c.deliver(d)
	}
	c.after()
}

func (c *Core) deliver(d *Delivery) {
	if d.Inc != c.inc {
		return // a previous incarnation's consumer: none of its business now
	}
	if d.Gap && !d.FromRead {
		c.restartProcessing()
	}
	first := d.Seq > c.delivered
	if first {
		c.delivered = d.Seq
	}
	id, ok := c.match.Overlap(d.Subject)
	p := c.parts[id]
	if !ok || p == nil {
		c.stray(d)
		return
	}
	switch {
	case !c.live() || p.restart:
		// Fenced, or waiting to read again: what is ours comes back by
		// the read; never acked here (it was not processed).
	case p.phase == PhaseCovering || p.phase == PhaseCatchingUp:
		if d.Seq <= p.lastDispatched {
			c.duplicate(p, d)
			return
		}
		i, found := slices.BinarySearchFunc(p.held, d.Seq, func(h *Delivery, s fsm.StreamSeq) int { return cmp.Compare(h.Seq, s) })
		if !found {
			p.held = slices.Insert(p.held, i, d)
		}
		if first && p.fresh == 0 {
			p.fresh = d.Seq
		}
	case p.phase == PhaseLive:
		if d.Seq <= p.lastDispatched {
			c.duplicate(p, d)
			return
		}
		p.queue = append(p.queue, d)
		p.lastDispatched = d.Seq
		c.markReady(p)
	case p.phase == PhaseCleaning:
		// Cannot be delivered (not covered yet); left alone.
	default:
		c.stray(d)
	}
}

// duplicate handles a delivery of a sequence already dispatched: acked once
// processed; while its first copy is in the pipeline it is left unacked (an
// ack could remove an unprocessed message from a WorkQueue stream) and acked
// when it comes back.
func (c *Core) duplicate(p *part, d *Delivery) {
	c.emit(Notice{Kind: NoticeDuplicate, Partition: p.id, Seq: d.Seq})
	if d.Seq <= p.processed && !d.FromRead {
		c.emit(Ack{Msg: d})
	}
}

// stray handles a delivery of a partition not processed here. On a Limits
// stream an ack is harmless (the message stays for its owner); on WorkQueue
// and Interest it could delete the message, so it is left alone.
func (c *Core) stray(d *Delivery) {
	c.emit(Notice{Kind: NoticeStray, Seq: d.Seq})
	if c.cfg.Retention == Limits && !d.FromRead {
		c.emit(Ack{Msg: d})
	}
}

// ---- dispatch ----

func (c *Core) markReady(p *part) {
	if p.running == 0 && len(p.queue) > 0 && (p.phase == PhaseLive || p.phase == PhaseCatchingUp) && !p.restart && !p.ready {
		p.ready = true
		c.ready = append(c.ready, p.id)
	}
}

// dispatch hands out the heads of ready partitions while handlers are free
// and the lease holds.
func (c *Core) dispatch() {
	for len(c.ready) > 0 && c.running < c.cfg.Concurrency && c.live() {
		id := c.ready[0]
		c.ready = c.ready[1:]
		p := c.parts[id]
		if p != nil {
			p.ready = false
		}
		if p == nil || p.running != 0 || c.busy[id] != 0 || p.restart || len(p.queue) == 0 || (p.phase != PhaseLive && p.phase != PhaseCatchingUp) {
			continue
		}
		d := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.running = p.gen
		c.busy[id] = p.gen
		c.running++
		c.emit(Dispatch{Partition: p.id, Epoch: p.epoch, Gen: p.gen, Msg: d, Success: c.settleFor(d), DeadLetter: c.deadLetterFor(d)})
		if p.phase == PhaseCatchingUp && len(p.queue) < c.cfg.ReadWindow/2 {
			c.read(p)
		}
	}
}

func (c *Core) settleFor(d *Delivery) Settle {
	switch {
	case d.FromRead && c.cfg.Retention == WorkQueue:
		return SettleDelete
	case d.FromRead:
		return SettleNone
	case c.cfg.Retention == Limits:
		return SettleAck
	}
	return SettleDoubleAck
}

func (c *Core) deadLetterFor(d *Delivery) Settle {
	switch {
	case !d.FromRead:
		return SettleTerm
	case c.cfg.Retention == WorkQueue:
		return SettleDelete
	}
	return SettleNone
}

// HandlerDone is a handler's result for (partition, gen): processed means
// handled (or dead-lettered) and settled; false means cancelled or skipped
// past the lease, and the message will be read again by whoever owns it.
func (c *Core) HandlerDone(now time.Time, id fsm.PartitionID, gen uint64, epoch fsm.Epoch, seq fsm.StreamSeq, processed bool) {
	c.step(now)
	c.running--
	if c.busy[id] == gen {
		delete(c.busy, id)
	}
	p := c.parts[id]
	if p == nil || p.running != gen {
		// The partition was dropped (or restarted and already released
		// this handler): nothing to record.
		c.after()
		return
	}
	p.running = 0
	// A handler's progress counts for the epoch it ran under, even if the
	// partition restarted meanwhile.
	if epoch == p.epoch && processed && seq > p.processed {
		p.processed = seq
	}
	switch {
	case p.phase == PhaseDraining:
		c.checkDrained(p)
	case p.restart:
		c.restartPart(p)
	case p.gen != gen && (p.phase == PhaseLive || p.phase == PhaseCatchingUp):
		// Halted under this handler (fence, recreate): read again.
		c.restartPart(p)
	default:
		if !processed && (p.phase == PhaseLive || p.phase == PhaseCatchingUp) {
			// Not processed and still ours (cancelled by a fence that
			// healed meanwhile, or skipped past the lease): read again.
			c.restartPart(p)
			break
		}
		c.markReady(p)
		c.checkActivate(p)
	}
	c.after()
}

// ---- activation ----

func (c *Core) checkActivate(p *part) {
	if c.activatable(p) && !p.actSent {
		c.sendActivations()
	}
}

// activatable reports whether p's activation may be reported. On an Interest
// stream only once everything up to the catch-up read's end is processed: the
// previous owner stops covering the partition at the activation, and what
// nobody covers is deleted. On Limits and WorkQueue streams nothing depends
// on it — messages stay until processed, and a crash resumes from the
// checkpoint — so it is reported as soon as the filter covers the partition
// and its catch-up has begun: the handoff is complete for the claim store
// while the backlog is being processed.
func (c *Core) activatable(p *part) bool {
	if !p.report || p.activated {
		return false
	}
	if c.cfg.Retention != Interest {
		return p.phase == PhaseCatchingUp || p.phase == PhaseLive
	}
	return p.caughtUp && p.phase == PhaseLive && p.processed >= p.activateAt
}

func (c *Core) sendActivations() {
	if c.actFlight || c.inc == 0 || c.now.Before(c.actRetryAt) {
		return
	}
	var items []fsm.ActivateItem
	for _, p := range c.sortedParts() {
		if c.activatable(p) && !p.actSent {
			items = append(items, fsm.ActivateItem{Partition: p.id, Epoch: p.epoch})
			p.actSent = true
		}
	}
	if len(items) > 0 {
		c.actFlight = true
		c.emit(ReportActivated{Inc: c.inc, Items: items})
	}
}

// ReportKind names a report for ReportDone.
type ReportKind uint8

const (
	// KindDrained is a ReportDrained.
	KindDrained ReportKind = 1 + iota
	// KindActivated is a ReportActivated.
	KindActivated
	// KindCheckpoints is a ReportCheckpoints.
	KindCheckpoints
)

// ReportDone is the outcome of a report of incarnation inc: err for the whole
// request (retried after a back-off unless refused is set), or per item
// (itemErrs[i] for items[i], nil if accepted) where a refusal is final (the
// next assignment says what is true).
func (c *Core) ReportDone(now time.Time, inc fsm.Incarnation, kind ReportKind, parts []fsm.PartitionID, epochs []fsm.Epoch, itemErrs []error, err error, refused bool) {
	c.step(now)
	if inc != c.inc {
		c.after()
		return
	}
	switch kind {
	case KindActivated:
		c.actFlight = false
		for i, id := range parts {
			p := c.parts[id]
			if p == nil || p.epoch != epochs[i] {
				continue
			}
			p.actSent = false
			ie := itemErr(itemErrs, i)
			switch {
			case err != nil && !refused:
			case err != nil || ie != nil:
				p.activated = true // refused: the next assignment says what is true
				c.emit(Notice{Kind: NoticeRefused, Partition: id, Epoch: p.epoch, Err: cmp.Or(ie, err)})
			default:
				p.activated = true
				c.emit(Notice{Kind: NoticeActivated, Partition: id, Epoch: p.epoch, Took: c.now.Sub(p.committed)})
				c.afterActivation(p)
			}
		}
		c.retryLater(&c.actBackoff, &c.actRetryAt, err != nil && !refused)
		c.sendActivations()
	case KindDrained:
		c.drainFlight = false
		for i, id := range parts {
			p := c.parts[id]
			if p == nil || p.epoch != epochs[i] {
				continue
			}
			p.drainSent = false
			if p.drainFor != p.handoff || p.phase != PhaseDrained {
				// The outcome of a report for an earlier handoff (aborted
				// meanwhile): says nothing of the current one.
				continue
			}
			ie := itemErr(itemErrs, i)
			switch {
			case err != nil && !refused:
			case err != nil || ie != nil:
				p.drainDone = true
				c.emit(Notice{Kind: NoticeRefused, Partition: id, Epoch: p.epoch, Err: cmp.Or(ie, err)})
			default:
				p.drainDone = true
			}
		}
		c.retryLater(&c.drainBackoff, &c.drainRetryAt, err != nil && !refused)
		c.sendDrains()
	case KindCheckpoints:
		// Positions are recorded when sent; a refused item (a stale epoch)
		// is final, a failed request is sent again next time.
		c.ckptFlight = false
		if err != nil && !refused {
			for _, id := range parts {
				if cur, ok := c.lastCkpt[id]; ok {
					cur.seq = 0
					c.lastCkpt[id] = cur
				}
			}
		}
	}
	c.after()
}

// itemErr is the refusal of item i of a report, if any.
func itemErr(itemErrs []error, i int) error {
	if i < len(itemErrs) {
		return itemErrs[i]
	}
	return nil
}

// retryLater sets a report kind's next attempt: after a back-off that
// doubles with every failed request, or at once again after an answer.
func (c *Core) retryLater(backoff *time.Duration, at *time.Time, failed bool) {
	if failed {
		*backoff = c.backoff(*backoff)
		*at = c.now.Add(*backoff)
		return
	}
	*backoff, *at = 0, time.Time{}
}

// afterActivation cleans the gone earlier owners' consumers of a partition
// just activated (Limits, Interest: only now, so that an Interest stream never
// loses coverage).
func (c *Core) afterActivation(p *part) {
	if !p.cleaned && !p.cleaning && hasGone(p.lingerers) {
		c.sendClean(p)
	}
}

func (c *Core) sendClean(p *part) {
	p.cleaning = true
	c.emit(Clean{Partition: p.id, Epoch: p.epoch, Subjects: p.subjects, Lingerers: p.lingerers})
}

// CleanDone is the outcome of a Clean.
func (c *Core) CleanDone(now time.Time, id fsm.PartitionID, epoch fsm.Epoch, err error) {
	c.step(now)
	p := c.parts[id]
	if p == nil || p.epoch != epoch || !p.cleaning {
		c.after()
		return
	}
	p.cleaning = false
	if err != nil {
		p.cleanAt = c.now.Add(c.backoff(0) * 8)
		c.after()
		return
	}
	p.cleaned = true
	if p.phase == PhaseCleaning {
		c.setPhase(p, PhaseCovering)
		c.setFilter(false)
	}
	c.after()
}

// ---- drains ----

func (c *Core) sendDrains() {
	if c.drainFlight || c.inc == 0 || c.now.Before(c.drainRetryAt) {
		return
	}
	var items []fsm.DrainItem
	for _, p := range c.sortedParts() {
		if p.phase == PhaseDrained && !p.drainDone && !p.drainSent {
			items = append(items, fsm.DrainItem{Handoff: p.handoff, Partition: p.id, Epoch: p.epoch, ThroughSeq: p.through})
			p.drainSent, p.drainFor = true, p.handoff
		}
	}
	if len(items) > 0 {
		c.drainFlight = true
		c.emit(ReportDrained{Inc: c.inc, Items: items})
	}
}

// ---- periodic duties ----

// Tick lets time pass: the lease, drain timeouts, checkpoints, retries and
// stuck phases are checked against now.
func (c *Core) Tick(now time.Time) {
	c.step(now)
	c.duties()
	c.after()
}

// NextTick returns when the core next needs a Tick (at the latest), given
// nothing else happens: the lease deadline, a drain timeout, a retry, the
// next checkpoint.
func (c *Core) NextTick() time.Time {
	next := c.now.Add(c.cfg.CheckpointEvery)
	consider := func(t time.Time) {
		if !t.IsZero() && t.After(c.now) && t.Before(next) {
			next = t
		}
	}
	if c.live() {
		consider(c.lease)
	}
	consider(c.ckptAt)
	consider(c.filterRetryAt)
	consider(c.drainRetryAt)
	consider(c.actRetryAt)
	for _, p := range c.parts {
		if p.phase == PhaseDraining && !p.cancelled {
			consider(p.drainBy)
		}
		consider(p.since.Add(c.cfg.StuckAfter))
		consider(p.cleanAt)
		consider(p.readRetryAt)
	}
	return next
}

func (c *Core) duties() {
	if c.inc == 0 {
		return
	}
	// A failed leave is sent again (its executor has waited a back-off).
	if c.leaving && !c.leaveSent && !c.finished {
		c.sendLeave()
	}
	// Drain timeouts.
	for _, p := range c.sortedParts() {
		if p.phase == PhaseDraining && !p.cancelled && p.running != 0 && !c.now.Before(p.drainBy) {
			p.cancelled = true
			c.emit(Notice{Kind: NoticeDrainTimeout, Partition: p.id, Epoch: p.epoch})
			c.cancelRunning(p)
		}
	}
	// Retries of failed steps.
	if !c.filterRetryAt.IsZero() && !c.now.Before(c.filterRetryAt) {
		c.filterRetryAt = time.Time{}
		c.setFilter(true)
	}
	for _, p := range c.sortedParts() {
		if p.phase == PhaseCatchingUp && !p.reading && !p.readRetryAt.IsZero() && !c.now.Before(p.readRetryAt) {
			p.readRetryAt = time.Time{}
			c.read(p)
		}
		if p.phase == PhaseCleaning || (p.phase >= PhaseLive && p.activated) {
			if !p.cleaned && !p.cleaning && hasGone(p.lingerers) && !c.now.Before(p.cleanAt) && !p.cleanAt.IsZero() {
				c.sendClean(p)
			}
		}
	}
	c.sendDrains()
	c.sendActivations()
	c.stuck()
	c.checkpoint()
}

// stuck retries, from scratch, the step of a partition held in a
// transitional phase for StuckAfter, and says so: every partition leaves
// every phase once the fault behind it heals.
func (c *Core) stuck() {
	for _, p := range c.sortedParts() {
		if !awaits(p) {
			p.stuckNotices = 0 // the awaited answer came: not stuck any more
		}
		if c.now.Sub(p.since) < c.cfg.StuckAfter {
			continue
		}
		took := c.now.Sub(p.since) // before a retry restarts the phase
		waiting := false
		switch p.phase {
		case PhaseCleaning:
			waiting = true
			if !p.cleaning {
				c.sendClean(p)
			}
		case PhaseCovering, PhaseUncovering:
			waiting = true
			if p.phase == PhaseCovering && c.cfg.Retention == WorkQueue && hasGone(p.lingerers) && !p.cleaning {
				// A gone owner's consumer may have taken the subjects
				// back after it was cleaned (its worker's last filter
				// update, applied late): clean it again, or the filter
				// stays refused as overlapping.
				c.sendClean(p)
			}
			c.setFilter(true)
			c.filterVerify()
		case PhaseCatchingUp:
			waiting = true
			if c.live() && p.running == 0 {
				c.restartPart(p)
			}
		case PhaseLive:
			waiting = p.report && !p.activated
			if waiting && p.actSent && c.actFlight {
				// The report is in flight; its answer will come.
				waiting = true
			}
		case PhaseDraining:
			waiting = true
			if p.running != 0 && !p.cancelled {
				p.cancelled = true
				c.cancelRunning(p)
			}
		case PhaseDrained:
			waiting = !p.drainDone
		}
		if !waiting {
			continue
		}
		if p.stuckNotices == 0 {
			c.emit(Notice{Kind: NoticeStuck, Partition: p.id, Epoch: p.epoch, Phase: p.phase, Took: took})
		}
		p.stuckNotices++
		// Count the next stuck period from now, keeping the phase's own
		// start for Health through stuckNotices.
		p.since = c.now
	}
}

// awaits reports whether p waits for a step to complete: a transitional
// phase, or an answer to its activation or drain report.
func awaits(p *part) bool {
	switch p.phase {
	case PhaseLive:
		return p.report && !p.activated
	case PhaseDrained:
		return !p.drainDone
	}
	return true
}

func (c *Core) filterVerify() {
	if n := len(c.out); n > 0 {
		if sf, ok := c.out[n-1].(SetFilter); ok {
			sf.Verify = true
			c.out[n-1] = sf
		}
	}
}

func (c *Core) checkpoint() {
	if c.now.Before(c.ckptAt) || c.ckptFlight || !c.live() {
		return
	}
	c.ckptAt = c.now.Add(c.cfg.CheckpointEvery)
	var items []fsm.CheckpointItem
	for _, p := range c.sortedParts() {
		if p.phase != PhaseLive && p.phase != PhaseCatchingUp {
			continue
		}
		last := c.lastCkpt[p.id]
		if last.epoch == p.epoch && p.processed <= last.seq {
			continue
		}
		items = append(items, fsm.CheckpointItem{Partition: p.id, Epoch: p.epoch, Seq: p.processed})
		c.lastCkpt[p.id] = ckpt{epoch: p.epoch, seq: p.processed}
	}
	if len(items) > 0 {
		c.ckptFlight = true
		c.emit(ReportCheckpoints{Inc: c.inc, Items: items})
	}
}

func (c *Core) backoff(prev time.Duration) time.Duration {
	if prev <= 0 {
		return c.cfg.RetryMin
	}
	return min(2*prev, c.cfg.RetryMax)
}

// ---- health ----

// PartitionStatus is one partition's state, for Health and metrics.
type PartitionStatus struct {
	Partition fsm.PartitionID
	Epoch     fsm.Epoch
	Phase     Phase
	Since     time.Duration // in this phase (or since its last retry)
	Stuck     bool
	Processed fsm.StreamSeq
}

// Status is the core's state for Health and Ready.
type Status struct {
	Registered bool
	Inc        fsm.Incarnation
	Fenced     bool
	Lease      time.Time
	Leaving    bool
	Finished   bool
	// Reconciled: the latest assignment of this incarnation is applied and
	// the consumer's filter is in line with it.
	Reconciled bool
	CatchingUp int
	Running    int
	FilterErr  error
	Refused    error
	Mismatch   error
	Stuck      []PartitionStatus
	Partitions []PartitionStatus
}

// Status returns the core's state as of the last input.
func (c *Core) Status() Status {
	s := Status{
		Registered: c.inc != 0, Inc: c.inc, Fenced: c.fenced || (c.inc != 0 && !c.live()), Lease: c.Lease(),
		Leaving: c.leaving, Finished: c.finished, FilterErr: c.filterErr, Refused: c.refused, Mismatch: c.asgWorkers,
		Running:    c.running,
		Reconciled: c.hasAsg && c.filterErr == nil && c.filterApplied == c.filterVer,
	}
	for _, p := range c.sortedParts() {
		ps := PartitionStatus{Partition: p.id, Epoch: p.epoch, Phase: p.phase, Since: c.now.Sub(p.since), Stuck: p.stuckNotices > 0 && awaits(p), Processed: p.processed}
		s.Partitions = append(s.Partitions, ps)
		if p.phase <= PhaseCatchingUp || (p.phase == PhaseLive && p.report && !p.activated) {
			s.CatchingUp++
		}
		if ps.Stuck {
			s.Stuck = append(s.Stuck, ps)
		}
	}
	return s
}
