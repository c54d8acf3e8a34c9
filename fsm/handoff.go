package fsm

import "math"

// The two-phase handoff: prepare → drain → commit → activate (docs/protocol.md).

func (a *applier) prepare(it PrepareItem) *RejectError {
	s := a.s
	p, err := s.lookupPartition(it.Partition)
	if err != nil {
		return err
	}
	if err := checkEpoch(p, it.Epoch); err != nil {
		return err
	}
	if err := checkOwner(p, it.From); err != nil {
		return err
	}
	if p.Handoff != 0 {
		return reject(CodeHandoffInProgress, "partition %s has pending handoff %s", p.ID, p.Handoff)
	}
	if p.Phase != PhaseActive {
		return reject(CodeWrongPhase, "partition %s is %s, not active", p.ID, p.Phase)
	}
	if it.To != "" {
		if it.To == it.From {
			return reject(CodeSameWorker, "partition %s: handoff from %s to itself", p.ID, it.From)
		}
		if err := s.eligibleTarget(it.To); err != nil {
			return err
		}
	}
	a.emit(Prepared{
		Handoff: s.lastHandoff + 1, Partition: p.ID, From: it.From, To: it.To,
		Epoch: p.Epoch, Reason: it.Reason, Deadline: a.deadline(it.DrainTimeout),
	})
	return nil
}

// deadline turns a relative drain timeout into the handoff's absolute deadline
// in leader time (0: none).
func (a *applier) deadline(timeout int64) int64 {
	if timeout == 0 {
		return 0
	}
	// Both are bounded by the command check (time >= 0, timeout at most
	// MaxDrainTimeout); saturate anyway rather than wrap negative.
	if a.hdr.Time > math.MaxInt64-timeout {
		return math.MaxInt64
	}
	return a.hdr.Time + timeout
}

// pendingHandoff returns the partition's pending handoff if its id is h.
func (s *State) pendingHandoff(p *Partition, h HandoffID) (*Handoff, *RejectError) {
	if h == 0 || p.Handoff != h {
		if p.Handoff == 0 {
			return nil, reject(CodeUnknownHandoff, "partition %s has no pending handoff (asked for %s)", p.ID, h)
		}
		return nil, reject(CodeUnknownHandoff, "partition %s has pending handoff %s, not %s", p.ID, p.Handoff, h)
	}
	return s.handoffs[h], nil
}

func (a *applier) drain(worker WorkerID, it DrainItem) *RejectError {
	s := a.s
	p, err := s.lookupPartition(it.Partition)
	if err != nil {
		return err
	}
	h, err := s.pendingHandoff(p, it.Handoff)
	if err != nil {
		return err
	}
	if err := checkEpoch(p, it.Epoch); err != nil {
		return err
	}
	if err := checkOwner(p, worker); err != nil {
		return err
	}
	if p.Phase != PhasePreparing {
		return reject(CodeWrongPhase, "partition %s is %s, not preparing", p.ID, p.Phase)
	}
	if it.ThroughSeq < p.Checkpoint {
		return reject(CodeSeqRegressed, "partition %s: through_seq %d below checkpoint %d", p.ID, it.ThroughSeq, p.Checkpoint)
	}
	a.emit(Drained{Handoff: h.ID, Partition: p.ID, From: worker, Epoch: p.Epoch, ThroughSeq: it.ThroughSeq})
	if h.To == "" {
		// A release handoff ends at the drain: nobody to commit to.
		a.emit(Released{Partition: p.ID, Worker: worker, Epoch: p.Epoch, ThroughSeq: it.ThroughSeq})
		a.finishLeave(worker)
	}
	return nil
}

func (a *applier) commit(it CommitItem) *RejectError {
	s := a.s
	p, err := s.lookupPartition(it.Partition)
	if err != nil {
		return err
	}
	h, err := s.pendingHandoff(p, it.Handoff)
	if err != nil {
		return err
	}
	if p.Phase != PhaseDrained {
		return reject(CodeWrongPhase, "partition %s is %s, not drained", p.ID, p.Phase)
	}
	if err := s.eligibleTarget(h.To); err != nil {
		return err
	}
	from := p.Owner
	a.emit(Committed{
		Handoff: h.ID, Partition: p.ID, From: from, To: h.To,
		Epoch: p.Epoch + 1, ResumeAfter: h.ThroughSeq,
	})
	a.finishLeave(from)
	return nil
}

func (a *applier) forceCommit(it ForceItem) *RejectError {
	s := a.s
	p, err := s.lookupPartition(it.Partition)
	if err != nil {
		return err
	}
	if err := checkEpoch(p, it.Epoch); err != nil {
		return err
	}
	switch p.Phase {
	case PhaseUnassigned:
		return reject(CodeWrongPhase, "partition %s is unassigned: claim it instead", p.ID)
	case PhaseDrained:
		return reject(CodeWrongPhase, "partition %s is drained: commit handoff %s instead", p.ID, p.Handoff)
	}
	switch it.Reason {
	case ForceOwnerLeft:
		if p.Phase != PhaseOrphaned {
			return reject(CodeNotForceable, "partition %s: owner %s has not left", p.ID, p.Owner)
		}
	case ForceDrainDeadline:
		h := s.handoffs[p.Handoff]
		if h == nil || p.Phase != PhasePreparing || h.Deadline == 0 || a.hdr.Time < h.Deadline {
			return reject(CodeNotForceable, "partition %s: no drain deadline has passed", p.ID)
		}
	case ForceOperator:
	default:
		return reject(CodeInvalidArgument, "invalid force reason %d", it.Reason)
	}
	if it.To == p.Owner && p.Phase != PhaseOrphaned {
		return reject(CodeSameWorker, "partition %s: forced move from %s to itself", p.ID, it.To)
	}
	if err := s.eligibleTarget(it.To); err != nil {
		return err
	}
	h := p.Handoff
	if h == 0 {
		h = s.lastHandoff + 1
	}
	from := p.Owner
	a.emit(Committed{
		Handoff: h, Partition: p.ID, From: from, To: it.To,
		Epoch: p.Epoch + 1, ResumeAfter: p.Checkpoint, Forced: true, ForceReason: it.Reason,
	})
	a.finishLeave(from)
	return nil
}

func (a *applier) activate(worker WorkerID, it ActivateItem) *RejectError {
	p, err := a.s.lookupPartition(it.Partition)
	if err != nil {
		return err
	}
	if err := checkEpoch(p, it.Epoch); err != nil {
		return err
	}
	if err := checkOwner(p, worker); err != nil {
		return err
	}
	if p.Phase != PhaseActivating {
		return reject(CodeWrongPhase, "partition %s is %s, not activating", p.ID, p.Phase)
	}
	a.emit(Activated{Partition: p.ID, Worker: worker, Epoch: p.Epoch, Lingerers: p.Lingerers})
	return nil
}

func (a *applier) abort(it AbortItem) *RejectError {
	p, err := a.s.lookupPartition(it.Partition)
	if err != nil {
		return err
	}
	h, err := a.s.pendingHandoff(p, it.Handoff)
	if err != nil {
		return err
	}
	a.abortHandoff(h, it.Reason)
	return nil
}

// abortHandoff cancels h. Before the drain the owner simply keeps the partition.
// After it, the owner has stopped for good at through_seq, so the partition is
// released there and the next claim resumes exactly after it.
func (a *applier) abortHandoff(h *Handoff, reason string) {
	p := a.s.partitions[h.Partition]
	a.emit(Aborted{Handoff: h.ID, Partition: p.ID, From: h.From, To: h.To, Reason: reason})
	if h.Drained {
		a.emit(Released{Partition: p.ID, Worker: p.Owner, Epoch: p.Epoch, ThroughSeq: h.ThroughSeq})
		a.finishLeave(h.From)
	}
}

func (a *applier) release(worker WorkerID, it ReleaseItem) *RejectError {
	p, err := a.s.lookupPartition(it.Partition)
	if err != nil {
		return err
	}
	if err := checkEpoch(p, it.Epoch); err != nil {
		return err
	}
	if err := checkOwner(p, worker); err != nil {
		return err
	}
	if p.Handoff != 0 {
		return reject(CodeHandoffInProgress, "partition %s has pending handoff %s", p.ID, p.Handoff)
	}
	if p.Phase != PhaseActive && p.Phase != PhaseActivating {
		return reject(CodeWrongPhase, "partition %s is %s, not active", p.ID, p.Phase)
	}
	if it.ThroughSeq < p.Checkpoint {
		return reject(CodeSeqRegressed, "partition %s: through_seq %d below checkpoint %d", p.ID, it.ThroughSeq, p.Checkpoint)
	}
	a.emit(Released{Partition: p.ID, Worker: worker, Epoch: p.Epoch, ThroughSeq: it.ThroughSeq})
	a.finishLeave(worker)
	return nil
}

func (a *applier) checkpoint(worker WorkerID, it CheckpointItem) *RejectError {
	p, err := a.s.lookupPartition(it.Partition)
	if err != nil {
		return err
	}
	if err := checkEpoch(p, it.Epoch); err != nil {
		return err
	}
	if err := checkOwner(p, worker); err != nil {
		return err
	}
	switch p.Phase {
	case PhaseActivating, PhaseActive, PhasePreparing:
	default:
		return reject(CodeWrongPhase, "partition %s is %s", p.ID, p.Phase)
	}
	if it.Seq < p.Checkpoint {
		return reject(CodeSeqRegressed, "partition %s: checkpoint %d below %d", p.ID, it.Seq, p.Checkpoint)
	}
	if it.Seq > p.Checkpoint {
		a.emit(Checkpointed{Partition: p.ID, Worker: worker, Epoch: p.Epoch, Seq: it.Seq})
	}
	return nil
}
