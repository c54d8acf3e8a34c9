package fsm

import (
	"slices"
	"strings"
)

func (a *applier) join(b Join) *RejectError {
	s := a.s
	if err := checkWorkerID(b.Worker); err != nil {
		return err
	}
	weight := b.Weight
	if weight == 0 {
		weight = 1
	}
	labels, err := canonicalLabels(b.Labels)
	if err != nil {
		return err
	}
	w := s.workers[b.Worker]
	switch {
	case w == nil:
		if len(s.workers) >= s.cfg.MaxWorkers {
			return reject(CodeLimitExceeded, "%d workers, at most %d", len(s.workers), s.cfg.MaxWorkers)
		}
	case w.State == WorkerGone:
		// A new life of a worker whose previous one still owns orphaned
		// partitions: they stay orphaned until force-committed.
	case !b.Replace:
		return reject(CodeWorkerExists, "worker %s is %s (incarnation %d); join with replace to start a new incarnation",
			b.Worker, w.State, w.Incarnation)
	default:
		a.workerLeft(w, LeftReplaced)
	}
	a.emit(WorkerJoined{Worker: b.Worker, Incarnation: Incarnation(a.idx), Weight: weight, Labels: labels})
	return nil
}

// canonicalLabels sorts labels by key and refuses a key given twice. Each
// label's form and their number were checked with the command.
func canonicalLabels(in []Label) ([]Label, *RejectError) {
	if len(in) == 0 {
		return nil, nil
	}
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b Label) int { return strings.Compare(a.Key, b.Key) })
	for i, l := range out {
		if i > 0 && out[i-1].Key == l.Key {
			return nil, reject(CodeInvalidArgument, "duplicate label key %q", l.Key)
		}
	}
	return out, nil
}

// reporter checks the worker half of a worker's own report (drain, activate,
// release, checkpoint): it must exist, be this incarnation, and not be gone.
func (a *applier) reporter(id WorkerID, inc Incarnation) *RejectError {
	w, err := a.s.lookupWorker(id)
	if err != nil {
		return err
	}
	if w.Incarnation != inc {
		return reject(CodeStaleIncarnation, "worker %s is at incarnation %d, not %d", id, w.Incarnation, inc)
	}
	if w.State == WorkerGone {
		return reject(CodeWorkerNotActive, "worker %s is gone", id)
	}
	return nil
}

func (a *applier) leave(b Leave) *RejectError {
	if err := a.reporter(b.Worker, b.Incarnation); err != nil {
		return err
	}
	w := a.s.workers[b.Worker]
	if w.State == WorkerLeaving {
		return nil // already leaving: a retried leave is a no-op
	}
	a.abortIncoming(w.ID, "target_leaving")
	a.emit(LeaveStarted{Worker: w.ID, Incarnation: w.Incarnation})
	a.finishLeave(w.ID)
	return nil
}

func (a *applier) expire(b Expire) *RejectError {
	w, err := a.s.lookupWorker(b.Worker)
	if err != nil {
		return err
	}
	if w.Incarnation != b.Incarnation {
		return reject(CodeStaleIncarnation, "worker %s is at incarnation %d, not %d", b.Worker, w.Incarnation, b.Incarnation)
	}
	if w.State == WorkerGone {
		return reject(CodeWorkerNotActive, "worker %s is already gone", b.Worker)
	}
	a.workerLeft(w, LeftExpired)
	return nil
}

func (a *applier) removeWorker(b RemoveWorker) *RejectError {
	w, err := a.s.lookupWorker(b.Worker)
	if err != nil {
		return err
	}
	if w.State == WorkerGone {
		return reject(CodeWorkerNotActive, "worker %s is already gone", b.Worker)
	}
	a.workerLeft(w, LeftRemoved)
	return nil
}

// workerLeft ends a worker's incarnation: handoffs towards it are aborted first
// (nothing may be committed to a gone worker, invariant 6), then WorkerLeft
// orphans what it still owns.
func (a *applier) workerLeft(w *Worker, reason LeftReason) {
	a.abortIncoming(w.ID, "target_left")
	a.emit(WorkerLeft{Worker: w.ID, Incarnation: w.Incarnation, Reason: reason})
}

// abortIncoming aborts every pending handoff whose target is w.
func (a *applier) abortIncoming(w WorkerID, reason string) {
	for _, h := range a.s.handoffsTo(w) {
		a.abortHandoff(h, reason)
	}
}

// finishLeave completes a graceful leave once the leaving worker owns nothing.
func (a *applier) finishLeave(id WorkerID) {
	w := a.s.workers[id]
	if w == nil || w.State != WorkerLeaving || len(a.s.owned[id]) > 0 {
		return
	}
	a.emit(WorkerLeft{Worker: id, Incarnation: w.Incarnation, Reason: LeftLeave})
}

func (a *applier) registerNode(b RegisterNode) *RejectError {
	if a.s.nodes[b.Node] != b.APIAddr {
		a.emit(NodeRegistered(b))
	}
	return nil
}

func (a *applier) cordon(b Cordon) *RejectError {
	w, err := a.s.lookupWorker(b.Worker)
	if err != nil {
		return err
	}
	if w.State == WorkerGone {
		return reject(CodeWorkerNotActive, "worker %s is gone", b.Worker)
	}
	if w.Cordoned == b.On {
		return nil
	}
	if b.On {
		a.abortIncoming(w.ID, "target_cordoned")
	}
	a.emit(WorkerCordoned{Worker: w.ID, On: b.On})
	return nil
}
