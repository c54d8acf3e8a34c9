package fsm

import (
	"errors"
	"fmt"
	"strings"
)

// HistoryChecker verifies the invariants of docs/protocol.md that concern
// sequences of events, over an audit trail read in index order. It keeps its own
// small model of ownership rather than reusing fold, so that a bug in fold shows
// up as a disagreement instead of being replayed faithfully.
//
//	I1  a partition has at most one owner; a target gets nothing (no activate,
//	    checkpoint or release) before its commit.
//	I2  epochs strictly increase per partition across claims and commits; drains,
//	    checkpoints, releases and activations carry the current epoch.
//	I3  a graceful commit follows the same handoff's drain; a forced one follows
//	    the owner's WorkerLeft, a passed drain deadline, or an operator's force.
//	I4  resume_after is the drained through_seq (graceful) or the last checkpoint
//	    (forced, claim); checkpoints never go backwards.
//	I6  claims, prepares and commits target only active, uncordoned workers.
//
// The audit log keeps only the latest checkpoint per partition, so a checker fed
// from it must be lenient (NewHistoryChecker(false)): it then requires forced and
// claimed resume points to be at or after the last checkpoint it saw, instead of
// equal to it.
type HistoryChecker struct {
	strict     bool
	workers    map[WorkerID]*histWorker
	partitions map[PartitionID]*histPartition
	handoffs   map[HandoffID]*histHandoff
	lastIndex  RaftIndex
	lastSeq    uint32
	events     int
}

type histWorker struct {
	active, cordoned bool
	incarnation      Incarnation
}

type histPartition struct {
	owner      WorkerID
	ownerLeft  bool // the owner's incarnation that got it has left
	epoch      Epoch
	checkpoint StreamSeq
	handoff    HandoffID
	activated  bool
}

type histHandoff struct {
	partition  PartitionID
	from, to   WorkerID
	deadline   int64
	drained    bool
	throughSeq StreamSeq
}

// NewHistoryChecker returns a checker. Strict mode expects every checkpoint event
// (as Apply returns them); lenient mode accepts an audit log whose checkpoints
// have been compacted.
func NewHistoryChecker(strict bool) *HistoryChecker {
	return &HistoryChecker{
		strict:     strict,
		workers:    make(map[WorkerID]*histWorker),
		partitions: make(map[PartitionID]*histPartition),
		handoffs:   make(map[HandoffID]*histHandoff),
	}
}

// Events returns how many events were checked.
func (c *HistoryChecker) Events() int { return c.events }

// CheckAll checks events in order and returns the first violation.
func (c *HistoryChecker) CheckAll(events []Event) error {
	for _, ev := range events {
		if err := c.Check(ev); err != nil {
			return err
		}
	}
	return nil
}

// Check checks one event against the history so far, then records it.
func (c *HistoryChecker) Check(ev Event) error {
	if err := c.check(ev); err != nil {
		return fmt.Errorf("event %d.%d %s: %w", ev.Index, ev.Seq, ev.Type(), err)
	}
	c.events++
	return nil
}

func (c *HistoryChecker) check(ev Event) error {
	if ev.Index < c.lastIndex || (ev.Index == c.lastIndex && c.events > 0 && ev.Seq <= c.lastSeq) {
		return fmt.Errorf("out of order after %d.%d", c.lastIndex, c.lastSeq)
	}
	c.lastIndex, c.lastSeq = ev.Index, ev.Seq
	switch b := ev.Body.(type) {
	case WorkerJoined:
		w := c.workers[b.Worker]
		if w != nil && b.Incarnation <= w.incarnation {
			return fmt.Errorf("incarnation %d not above %d", b.Incarnation, w.incarnation)
		}
		c.workers[b.Worker] = &histWorker{active: true, incarnation: b.Incarnation}
	case LeaveStarted:
		w, err := c.worker(b.Worker)
		if err != nil {
			return err
		}
		w.active = false
	case WorkerLeft:
		w, err := c.worker(b.Worker)
		if err != nil {
			return err
		}
		w.active = false
		for _, p := range c.partitions {
			if p.owner == b.Worker {
				p.ownerLeft = true
			}
		}
		for _, h := range c.handoffs {
			if h.to == b.Worker {
				return fmt.Errorf("I6: worker %s left with handoff towards it pending", b.Worker)
			}
		}
	case WorkerCordoned:
		w, err := c.worker(b.Worker)
		if err != nil {
			return err
		}
		w.cordoned = b.On
	case PartitionsDeclared:
		for _, s := range b.Partitions {
			if c.partitions[s.ID] != nil {
				return fmt.Errorf("partition %s declared twice", s.ID)
			}
			c.partitions[s.ID] = &histPartition{checkpoint: s.StartAfter}
		}
	case PartitionRemoved:
		p, err := c.partition(b.Partition)
		if err != nil {
			return err
		}
		if p.handoff != 0 {
			return fmt.Errorf("removed with handoff %s pending", p.handoff)
		}
		delete(c.partitions, b.Partition)
	case Claimed:
		p, err := c.partition(b.Partition)
		if err != nil {
			return err
		}
		if p.owner != "" {
			return fmt.Errorf("I1: claimed by %s while owned by %s", b.Worker, p.owner)
		}
		if err := c.eligible(b.Worker); err != nil {
			return err
		}
		if err := c.resume(p, b.ResumeAfter); err != nil {
			return err
		}
		return c.own(p, b.Worker, b.Epoch)
	case Prepared:
		p, err := c.partition(b.Partition)
		if err != nil {
			return err
		}
		if p.owner != b.From || p.ownerLeft {
			return fmt.Errorf("I1: prepared from %s, owner %s (left=%v)", b.From, p.owner, p.ownerLeft)
		}
		if p.handoff != 0 {
			return fmt.Errorf("second handoff %s while %s pending", b.Handoff, p.handoff)
		}
		if b.Epoch != p.epoch {
			return fmt.Errorf("I2: prepared at epoch %d, current %d", b.Epoch, p.epoch)
		}
		if b.To != "" {
			if err := c.eligible(b.To); err != nil {
				return err
			}
		}
		if c.handoffs[b.Handoff] != nil {
			return fmt.Errorf("handoff id %s reused", b.Handoff)
		}
		p.handoff = b.Handoff
		c.handoffs[b.Handoff] = &histHandoff{partition: b.Partition, from: b.From, to: b.To, deadline: b.Deadline}
	case Drained:
		p, h, err := c.pending(b.Partition, b.Handoff)
		if err != nil {
			return err
		}
		if b.From != p.owner || b.Epoch != p.epoch {
			return fmt.Errorf("I2: drained by %s@%d, owner %s@%d", b.From, b.Epoch, p.owner, p.epoch)
		}
		if h.drained {
			return errors.New("drained twice")
		}
		if b.ThroughSeq < p.checkpoint {
			return fmt.Errorf("I4: through_seq %d below checkpoint %d", b.ThroughSeq, p.checkpoint)
		}
		h.drained, h.throughSeq = true, b.ThroughSeq
		p.checkpoint = b.ThroughSeq
	case Committed:
		return c.committed(ev, b)
	case Activated:
		p, err := c.partition(b.Partition)
		if err != nil {
			return err
		}
		if b.Worker != p.owner || b.Epoch != p.epoch {
			return fmt.Errorf("I1/I2: activated by %s@%d, owner %s@%d", b.Worker, b.Epoch, p.owner, p.epoch)
		}
		if p.activated {
			return errors.New("activated twice in one epoch")
		}
		p.activated = true
	case Aborted:
		// After a drain, the Released that follows ends the ownership.
		p, _, err := c.pending(b.Partition, b.Handoff)
		if err != nil {
			return err
		}
		delete(c.handoffs, b.Handoff)
		p.handoff = 0
	case Released:
		p, err := c.partition(b.Partition)
		if err != nil {
			return err
		}
		if b.Worker != p.owner || b.Epoch != p.epoch {
			return fmt.Errorf("I1/I2: released by %s@%d, owner %s@%d", b.Worker, b.Epoch, p.owner, p.epoch)
		}
		if b.ThroughSeq < p.checkpoint {
			return fmt.Errorf("I4: released through %d below checkpoint %d", b.ThroughSeq, p.checkpoint)
		}
		if p.handoff != 0 {
			delete(c.handoffs, p.handoff)
			p.handoff = 0
		}
		p.owner, p.ownerLeft, p.checkpoint = "", false, b.ThroughSeq
	case Checkpointed:
		p, err := c.partition(b.Partition)
		if err != nil {
			return err
		}
		if b.Worker != p.owner || b.Epoch != p.epoch {
			return fmt.Errorf("I1/I2: checkpoint by %s@%d, owner %s@%d", b.Worker, b.Epoch, p.owner, p.epoch)
		}
		if b.Seq < p.checkpoint {
			return fmt.Errorf("I4: checkpoint %d below %d", b.Seq, p.checkpoint)
		}
		p.checkpoint = b.Seq
	case PartitionPinned, RebalanceSet, NodeRegistered, NodeRemoved, EntryRejected:
	default:
		return fmt.Errorf("unknown event %T", ev.Body)
	}
	return nil
}

func (c *HistoryChecker) committed(ev Event, b Committed) error {
	p, err := c.partition(b.Partition)
	if err != nil {
		return err
	}
	if p.owner == "" || p.owner != b.From {
		return fmt.Errorf("I1: commit from %s, owner %q", b.From, p.owner)
	}
	if err := c.eligible(b.To); err != nil {
		return err
	}
	h := c.handoffs[b.Handoff]
	if h != nil && h.partition != b.Partition {
		return fmt.Errorf("handoff %s belongs to %s", b.Handoff, h.partition)
	}
	if !b.Forced {
		if h == nil || !h.drained {
			return fmt.Errorf("I3: graceful commit of %s without its drain", b.Handoff)
		}
		if b.To != h.to {
			return fmt.Errorf("I3: commit to %s, prepared for %s", b.To, h.to)
		}
		if b.ResumeAfter != h.throughSeq {
			return fmt.Errorf("I4: resume_after %d, drained through %d", b.ResumeAfter, h.throughSeq)
		}
	} else {
		switch b.ForceReason {
		case ForceOwnerLeft:
			if !p.ownerLeft {
				return fmt.Errorf("I3: forced (owner_left) but owner %s has not left", p.owner)
			}
		case ForceDrainDeadline:
			if h == nil || h.deadline == 0 || ev.Time < h.deadline {
				return errors.New("I3: forced (drain_deadline) before any deadline passed")
			}
		case ForceOperator:
			if !strings.HasPrefix(ev.Actor, "operator") {
				return fmt.Errorf("I3: forced (operator) by actor %q", ev.Actor)
			}
		default:
			return fmt.Errorf("I3: forced without a reason (%d)", b.ForceReason)
		}
		if h != nil && h.drained {
			return errors.New("I3: forced commit of a drained handoff")
		}
		if err := c.resume(p, b.ResumeAfter); err != nil {
			return err
		}
	}
	if h != nil {
		delete(c.handoffs, b.Handoff)
	}
	p.handoff = 0
	return c.own(p, b.To, b.Epoch)
}

// own gives p a new owner under a strictly larger epoch (I2).
func (c *HistoryChecker) own(p *histPartition, w WorkerID, e Epoch) error {
	if e <= p.epoch {
		return fmt.Errorf("I2: epoch %d not above %d", e, p.epoch)
	}
	p.owner, p.ownerLeft, p.epoch, p.activated = w, false, e, false
	return nil
}

// resume checks a resume point against the last checkpoint (I4).
func (c *HistoryChecker) resume(p *histPartition, after StreamSeq) error {
	if after == p.checkpoint || (!c.strict && after > p.checkpoint) {
		p.checkpoint = after
		return nil
	}
	return fmt.Errorf("I4: resume_after %d, last checkpoint %d", after, p.checkpoint)
}

func (c *HistoryChecker) eligible(w WorkerID) error {
	hw := c.workers[w]
	if hw == nil || !hw.active || hw.cordoned {
		return fmt.Errorf("I6: target %s is not an active, uncordoned worker", w)
	}
	return nil
}

func (c *HistoryChecker) worker(w WorkerID) (*histWorker, error) {
	hw := c.workers[w]
	if hw == nil {
		return nil, fmt.Errorf("unknown worker %s", w)
	}
	return hw, nil
}

func (c *HistoryChecker) partition(id PartitionID) (*histPartition, error) {
	p := c.partitions[id]
	if p == nil {
		return nil, fmt.Errorf("unknown partition %s", id)
	}
	return p, nil
}

func (c *HistoryChecker) pending(id PartitionID, h HandoffID) (*histPartition, *histHandoff, error) {
	p, err := c.partition(id)
	if err != nil {
		return nil, nil, err
	}
	hh := c.handoffs[h]
	if hh == nil || p.handoff != h {
		return nil, nil, fmt.Errorf("handoff %s is not pending for %s", h, id)
	}
	return p, hh, nil
}
