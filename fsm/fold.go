package fsm

import "fmt"

// fold applies one event to the state. It is the only code that changes state.
// Apply calls it for events it has just validated; Replay calls it for events read
// back from the audit log. An event that cannot be folded means the log and the
// state disagree, which no input can cause, so fold panics (see Replay, which
// recovers it into an error for untrusted input).
func (s *State) fold(ev Event) {
	switch b := ev.Body.(type) {
	case WorkerJoined:
		w := s.workers[b.Worker]
		if w == nil {
			w = &Worker{ID: b.Worker}
			s.workers[b.Worker] = w
		}
		w.Incarnation, w.Weight, w.Labels = b.Incarnation, b.Weight, b.Labels
		w.State, w.Cordoned, w.JoinedTime = WorkerActive, false, ev.Time
	case LeaveStarted:
		s.mustWorker(b.Worker).State = WorkerLeaving
	case WorkerLeft:
		s.mustWorker(b.Worker).State = WorkerGone
		for _, p := range s.owned[b.Worker] { // each partition on its own: order does not matter
			switch p.Phase {
			case PhaseActivating, PhaseActive, PhasePreparing:
				p.Phase = PhaseOrphaned
			}
			// A drained partition keeps its phase: the drain was reported, so
			// its handoff can still commit gracefully.
		}
		s.pruneIfDone(b.Worker)
	case WorkerCordoned:
		s.mustWorker(b.Worker).Cordoned = b.On
	case PartitionsDeclared:
		for _, spec := range b.Partitions {
			if s.partitions[spec.ID] != nil {
				panic(fmt.Sprintf("fsm: fold: partition %s declared twice", spec.ID))
			}
			s.partitions[spec.ID] = &Partition{
				ID: spec.ID, Subjects: spec.Subjects, Weight: spec.Weight, Phase: PhaseUnassigned,
				ResumeAfter: spec.StartAfter, Checkpoint: spec.StartAfter, DeclaredIndex: ev.Index,
			}
			for _, sub := range spec.Subjects {
				s.subjects.Add(sub, spec.ID)
			}
		}
	case PartitionRemoved:
		p := s.mustPartition(b.Partition)
		owner := p.Owner
		ls := p.Lingerers
		s.setOwner(p, "")
		s.setLingerers(p, nil)
		for _, sub := range p.Subjects {
			s.subjects.Remove(sub)
		}
		delete(s.partitions, p.ID)
		s.pruneIfDone(owner)
		for _, l := range ls {
			s.pruneIfDone(l.Worker)
		}
	case Claimed:
		p := s.mustPartition(b.Partition)
		w := s.mustWorker(b.Worker)
		s.setOwner(p, w.ID) // the worker's own string: one per worker, not one per partition
		p.Epoch, p.Phase, p.ResumeAfter, p.OwnerIndex = b.Epoch, PhaseActivating, b.ResumeAfter, ev.Index
		p.OwnerIncarnation = w.Incarnation
	case Prepared:
		p := s.mustPartition(b.Partition)
		s.handoffs[b.Handoff] = &Handoff{
			ID: b.Handoff, Partition: b.Partition, From: b.From, To: b.To, Epoch: b.Epoch,
			Reason: b.Reason, Deadline: b.Deadline, PreparedIndex: ev.Index, PreparedTime: ev.Time,
		}
		s.lastHandoff = max(s.lastHandoff, b.Handoff)
		p.Handoff, p.Phase = b.Handoff, PhasePreparing
	case Drained:
		p := s.mustPartition(b.Partition)
		h := s.mustHandoff(b.Handoff)
		h.Drained, h.ThroughSeq, h.DrainedTime = true, b.ThroughSeq, ev.Time
		p.Phase = PhaseDrained
		p.Checkpoint = maxSeq(p.Checkpoint, b.ThroughSeq)
	case Committed:
		p := s.mustPartition(b.Partition)
		from := p.Owner
		delete(s.handoffs, b.Handoff)
		s.lastHandoff = max(s.lastHandoff, b.Handoff)
		s.addLingerer(p)
		to := s.mustWorker(b.To)
		s.setOwner(p, to.ID)
		p.OwnerIncarnation = to.Incarnation
		p.Epoch, p.Phase, p.ResumeAfter, p.Handoff, p.OwnerIndex = b.Epoch, PhaseActivating, b.ResumeAfter, 0, ev.Index
		s.pruneIfDone(from)
	case Activated:
		p := s.mustPartition(b.Partition)
		p.Phase = PhaseActive
		ls := p.Lingerers
		s.setLingerers(p, nil)
		for _, l := range ls {
			s.pruneIfDone(l.Worker)
		}
	case Aborted:
		p := s.mustPartition(b.Partition)
		delete(s.handoffs, b.Handoff)
		p.Handoff = 0
		if p.Phase == PhasePreparing {
			p.Phase = PhaseActive
		}
		// Orphaned stays orphaned; drained is released by the Released that follows.
	case Released:
		p := s.mustPartition(b.Partition)
		owner := p.Owner
		if p.Handoff != 0 {
			delete(s.handoffs, p.Handoff)
			p.Handoff = 0
		}
		s.addLingerer(p)
		s.setOwner(p, "")
		p.Phase, p.OwnerIndex, p.OwnerIncarnation = PhaseUnassigned, 0, 0
		p.Checkpoint = maxSeq(p.Checkpoint, b.ThroughSeq)
		p.ResumeAfter = p.Checkpoint
		s.pruneIfDone(owner)
	case Checkpointed:
		p := s.mustPartition(b.Partition)
		p.Checkpoint = maxSeq(p.Checkpoint, b.Seq)
	case PartitionPinned:
		pinned := b.Worker
		if w := s.workers[b.Worker]; w != nil {
			pinned = w.ID
		}
		s.mustPartition(b.Partition).Pinned = pinned
	case RebalanceSet:
		s.paused = b.Paused
	case NodeRegistered:
		s.nodes[b.Node] = b.APIAddr
	case EntryRejected:
		// A refused entry changes nothing; the event only records it.
	case NodeRemoved:
		delete(s.nodes, b.Node)
	default:
		panic(fmt.Sprintf("fsm: fold: unknown event %T", ev.Body))
	}
}

func (s *State) mustWorker(id WorkerID) *Worker {
	w := s.workers[id]
	if w == nil {
		panic(fmt.Sprintf("fsm: fold: unknown worker %s", id))
	}
	return w
}

func (s *State) mustPartition(id PartitionID) *Partition {
	p := s.partitions[id]
	if p == nil {
		panic(fmt.Sprintf("fsm: fold: unknown partition %s", id))
	}
	return p
}

func (s *State) mustHandoff(id HandoffID) *Handoff {
	h := s.handoffs[id]
	if h == nil {
		panic(fmt.Sprintf("fsm: fold: unknown handoff %s", id))
	}
	return h
}
