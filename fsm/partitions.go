package fsm

import (
	"slices"
)

// declare validates each spec; the accepted new ones become one PartitionsDeclared
// event. Re-declaring an identical partition is accepted and emits nothing.
func (a *applier) declare(b Declare) {
	s := a.s
	var specs []PartitionSpec
	batch := NewSubjectIndex() // subjects of this batch, to catch overlaps within it
	seen := make(map[PartitionID]int, len(b.Partitions))
	for i, in := range b.Partitions {
		spec, err := s.checkSpec(in)
		if err == nil {
			if j, dup := seen[spec.ID]; dup {
				if !sameSpec(specs[j], spec) {
					err = reject(CodePartitionExists, "partition %s declared twice with different specs", spec.ID)
				}
				a.item(i, err)
				continue
			}
		}
		if err == nil {
			if old := s.partitions[spec.ID]; old != nil {
				if !sameSpec(specOf(old), spec) {
					err = reject(CodePartitionExists, "partition %s exists with another spec", spec.ID)
				}
				a.item(i, err)
				continue
			}
		}
		if err == nil && len(s.partitions)+len(specs) >= s.cfg.MaxPartitions {
			err = reject(CodeLimitExceeded, "at most %d partitions", s.cfg.MaxPartitions)
		}
		if err == nil {
			err = overlapCheck(batch, spec)
		}
		if err == nil {
			err = overlapCheck(s.subjects, spec)
		}
		if err != nil {
			a.item(i, err)
			continue
		}
		for _, sub := range spec.Subjects {
			batch.Add(sub, spec.ID)
		}
		seen[spec.ID] = len(specs)
		specs = append(specs, spec)
	}
	if len(specs) > 0 {
		a.emit(PartitionsDeclared{Partitions: specs})
	}
}

// checkSpec validates a spec and returns its canonical form (sorted subjects,
// weight defaulted). The form of its id, subjects and weight was checked with
// the command.
func (s *State) checkSpec(in PartitionSpec) (PartitionSpec, *RejectError) {
	if len(in.Subjects) == 0 {
		return in, reject(CodeInvalidArgument, "partition %s has no subjects", in.ID)
	}
	out := in
	if out.Weight == 0 {
		out.Weight = 1
	}
	out.Subjects = slices.Clone(in.Subjects)
	slices.Sort(out.Subjects)
	own := NewSubjectIndex()
	for _, sub := range out.Subjects {
		if _, hit := own.Overlap(sub); hit {
			return in, reject(CodeSubjectOverlap, "partition %s: subject %q overlaps another of its subjects", in.ID, sub)
		}
		own.Add(sub, in.ID)
	}
	return out, nil
}

func overlapCheck(x *SubjectIndex, spec PartitionSpec) *RejectError {
	for _, sub := range spec.Subjects {
		if other, hit := x.Overlap(sub); hit {
			return reject(CodeSubjectOverlap, "partition %s: subject %q overlaps partition %s", spec.ID, sub, other)
		}
	}
	return nil
}

func specOf(p *Partition) PartitionSpec {
	return PartitionSpec{ID: p.ID, Subjects: p.Subjects, Weight: p.Weight}
}

// sameSpec compares what defines a partition. StartAfter only seeds the first
// checkpoint, so a re-declaration may differ in it.
func sameSpec(a, b PartitionSpec) bool {
	return a.ID == b.ID && a.Weight == b.Weight && slices.Equal(a.Subjects, b.Subjects)
}

func (a *applier) removePartition(id PartitionID) *RejectError {
	p, err := a.s.lookupPartition(id)
	if err != nil {
		return err
	}
	if p.Handoff != 0 {
		return reject(CodeHandoffInProgress, "partition %s has pending handoff %s", id, p.Handoff)
	}
	owner := p.Owner
	a.emit(PartitionRemoved{Partition: id, Owner: owner, Epoch: p.Epoch, Lingerers: p.Lingerers})
	if owner != "" {
		a.finishLeave(owner)
	}
	return nil
}

func (a *applier) claim(it ClaimItem) *RejectError {
	p, err := a.s.lookupPartition(it.Partition)
	if err != nil {
		return err
	}
	if p.Phase != PhaseUnassigned {
		return reject(CodeWrongPhase, "partition %s is %s (owner %s), not unassigned", p.ID, p.Phase, p.Owner)
	}
	if err := a.s.eligibleTarget(it.Worker); err != nil {
		return err
	}
	a.emit(Claimed{Partition: p.ID, Worker: it.Worker, Epoch: p.Epoch + 1, ResumeAfter: p.Checkpoint})
	return nil
}

func (a *applier) pin(b Pin) *RejectError {
	p, err := a.s.lookupPartition(b.Partition)
	if err != nil {
		return err
	}
	if b.Worker != "" {
		w, err := a.s.lookupWorker(b.Worker)
		if err != nil {
			return err
		}
		if w.State == WorkerGone {
			return reject(CodeWorkerNotActive, "worker %s is gone", b.Worker)
		}
	}
	if p.Pinned == b.Worker {
		return nil
	}
	a.emit(PartitionPinned{Partition: p.ID, Worker: b.Worker})
	return nil
}
