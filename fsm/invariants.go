package fsm

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// CheckInvariants verifies the structural invariants of docs/protocol.md that a
// single state can show (the ones about history are checked by HistoryChecker):
//
//	I1  at most one owner per partition; the owned index agrees with owners;
//	    a pending handoff's From is the partition's owner.
//	I2  a pending handoff was prepared at the partition's current epoch; every
//	    owned partition has an epoch >= 1; handoff ids are below the allocator.
//	I3  preparing ⇔ a pending, undrained handoff; drained ⇔ a pending, drained one.
//	I4  a drained handoff's through_seq is the checkpoint; an owned partition's
//	    checkpoint is at or after where its owner resumed.
//	I6  no pending handoff targets a worker that is gone, leaving or cordoned; no
//	    partition is active, activating or preparing on a gone worker; a gone
//	    worker is kept only while it owns something or lingers.
//
// It also checks that the derived indexes (partitions by owner and by
// lingerer) agree with the records. It returns every violation found, joined.
func (s *State) CheckInvariants() error {
	var c violations
	parts := make([]*Partition, 0, len(s.partitions))
	for id, p := range s.partitions {
		if p.ID != id {
			c.bad("partition keyed %s has id %s", id, p.ID)
		}
		parts = append(parts, p)
	}
	slices.SortFunc(parts, func(a, b *Partition) int { return strings.Compare(string(a.ID), string(b.ID)) })
	s.checkRecordsInto(&c, parts)
	s.checkIndexes(&c, parts)
	return errors.Join(c.errs...)
}

// violations collects what the checks find.
type violations struct{ errs []error }

func (c *violations) bad(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("fsm invariant: "+format, args...))
}

// checkRecords checks the invariants of the records, parts being every
// partition sorted by id. ReadSnapshot calls it alone: the indexes it checks
// against it has just derived from those records.
func (s *State) checkRecords(parts []*Partition) error {
	var c violations
	s.checkRecordsInto(&c, parts)
	return errors.Join(c.errs...)
}

func (s *State) checkRecordsInto(c *violations, parts []*Partition) {
	bad := c.bad
	pendingCount := 0
	for _, p := range parts {
		id := p.ID
		if p.Phase == 0 || p.Phase > PhaseOrphaned {
			bad("partition %s has invalid phase %d", id, p.Phase)
			continue
		}
		if (p.Phase == PhaseUnassigned) != (p.Owner == "") {
			bad("I1: partition %s is %s with owner %q", id, p.Phase, p.Owner)
		}
		if p.Owner != "" {
			w := s.workers[p.Owner]
			if w == nil {
				bad("I1: partition %s owned by unknown worker %s", id, p.Owner)
			} else if w.State == WorkerGone && p.Phase != PhaseOrphaned && p.Phase != PhaseDrained {
				bad("I6: partition %s is %s on gone worker %s", id, p.Phase, p.Owner)
			}
			if p.Epoch == 0 {
				bad("I2: owned partition %s has epoch 0", id)
			}
			if p.Checkpoint < p.ResumeAfter {
				bad("I4: partition %s checkpoint %d before resume point %d", id, p.Checkpoint, p.ResumeAfter)
			}
			if p.OwnerIncarnation == 0 {
				bad("I1: owned partition %s has no owner incarnation", id)
			}
		} else if p.OwnerIncarnation != 0 {
			bad("I1: unassigned partition %s has owner incarnation %d", id, p.OwnerIncarnation)
		}
		if len(p.Lingerers) > 0 && p.Phase != PhaseUnassigned && p.Phase != PhaseActivating && p.Phase != PhaseOrphaned {
			bad("partition %s is %s with lingerers %v (cleared at activation)", id, p.Phase, p.Lingerers)
		}
		if p.Handoff == 0 {
			if p.Phase == PhasePreparing || p.Phase == PhaseDrained {
				bad("I3: partition %s is %s without a handoff", id, p.Phase)
			}
			continue
		}
		pendingCount++
		h := s.handoffs[p.Handoff]
		if h == nil {
			bad("I3: partition %s names missing handoff %s", id, p.Handoff)
			continue
		}
		if h.Partition != id {
			bad("I3: handoff %s is for %s, named by %s", h.ID, h.Partition, id)
		}
		if h.From != p.Owner {
			bad("I1: handoff %s from %s but %s owns %s", h.ID, h.From, p.Owner, id)
		}
		if h.Epoch != p.Epoch {
			bad("I2: handoff %s prepared at epoch %d, partition %s at %d", h.ID, h.Epoch, id, p.Epoch)
		}
		if h.ID > s.lastHandoff {
			bad("I2: handoff %s above the allocator %s", h.ID, s.lastHandoff)
		}
		switch {
		case p.Phase == PhasePreparing && h.Drained, p.Phase == PhaseDrained && !h.Drained:
			bad("I3: partition %s is %s, handoff %s drained=%v", id, p.Phase, h.ID, h.Drained)
		case p.Phase != PhasePreparing && p.Phase != PhaseDrained && p.Phase != PhaseOrphaned:
			bad("I3: partition %s is %s with pending handoff %s", id, p.Phase, h.ID)
		}
		if h.Drained && p.Checkpoint != h.ThroughSeq {
			bad("I4: handoff %s drained through %d, checkpoint %d", h.ID, h.ThroughSeq, p.Checkpoint)
		}
		if h.To != "" {
			if t := s.workers[h.To]; t == nil || t.State != WorkerActive || t.Cordoned {
				bad("I6: handoff %s targets ineligible worker %s", h.ID, h.To)
			}
		}
	}
	if pendingCount != len(s.handoffs) {
		bad("I3: %d handoffs held, %d named by partitions", len(s.handoffs), pendingCount)
	}
	for id, w := range s.workers {
		if w.ID != id {
			bad("worker keyed %s has id %s", id, w.ID)
		}
		if w.State == 0 || w.State > WorkerGone {
			bad("worker %s has invalid state %d", id, w.State)
		}
		if w.State == WorkerGone && len(s.owned[id]) == 0 && !s.lingers(id, w.Incarnation) {
			bad("I6: gone worker %s kept while owning nothing and lingering nowhere", id)
		}
	}
	if s.requests.len() > s.cfg.MaxRequestIDs {
		bad("request table holds %d entries, bound %d", s.requests.len(), s.cfg.MaxRequestIDs)
	}
}

// checkIndexes checks that the owned and lingering indexes list exactly the
// partitions whose records name those workers.
func (s *State) checkIndexes(c *violations, parts []*Partition) {
	owned := 0
	for _, p := range parts {
		if p.Owner != "" {
			owned++
			if list := s.owned[p.Owner]; int(p.ownedAt) >= len(list) || list[p.ownedAt] != p {
				c.bad("I1: partition %s missing from owner %s's index", p.ID, p.Owner)
			}
		}
		for _, l := range p.Lingerers {
			if _, ok := s.lingering[l.Worker][p.ID]; !ok {
				c.bad("partition %s missing from lingerer %s's index", p.ID, l.Worker)
			}
		}
	}
	n := 0
	for w, list := range s.owned {
		n += len(list)
		if len(list) == 0 {
			c.bad("I1: owned index holds an empty list for %s", w)
		}
		for i, p := range list {
			switch {
			case p == nil:
				c.bad("I1: owned index lists nothing at %d under %s", i, w)
			case p.Owner != w || int(p.ownedAt) != i || s.partitions[p.ID] != p:
				c.bad("I1: owned index lists %s (owner %s, at %d) at %d under %s", p.ID, p.Owner, p.ownedAt, i, w)
			}
		}
	}
	if n != owned {
		c.bad("I1: owned index holds %d partitions, %d are owned", n, owned)
	}
}
