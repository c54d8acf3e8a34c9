package audit

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/fsm/fsmtest"
)

// sim drives an fsmtest.Env with a seeded random but mostly valid workload:
// joins, expiries and replacements, declarations and removals, claims,
// activations, checkpoints, graceful and forced handoffs, aborts, releases and
// operator settings. Env checks every invariant and the history after each
// command, so the event stream it collects is a realistic audit trail.
type sim struct {
	e      *fsmtest.Env
	rng    *rand.Rand
	nextW  int
	nextP  int
	nextRq int
}

func newSim(tb testing.TB, seed uint64) *sim {
	tb.Helper()
	tb.Logf("workload seed %d", seed)
	return &sim{e: fsmtest.New(tb), rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// workload returns an Env after steps random commands.
func workload(tb testing.TB, seed uint64, steps int) *fsmtest.Env {
	tb.Helper()
	s := newSim(tb, seed)
	s.run(steps)
	return s.e
}

func (s *sim) apply(body fsm.Body, actor string) fsm.Result {
	s.nextRq++
	hdr := fsm.Header{Actor: actor, Cause: "sim"}
	if s.rng.IntN(3) == 0 {
		hdr.RequestID = fmt.Sprintf("rq-%d", s.nextRq)
	}
	return s.e.Apply(fsm.Command{Header: hdr, Body: body})
}

func (s *sim) eligible() []fsm.Worker {
	var out []fsm.Worker
	for _, w := range s.e.State.Workers() {
		if w.State == fsm.WorkerActive && !w.Cordoned {
			out = append(out, w)
		}
	}
	return out
}

func (s *sim) partitions(match func(fsm.PartitionInfo) bool) []fsm.PartitionInfo {
	var out []fsm.PartitionInfo
	for _, p := range s.e.State.Partitions("", 0) {
		if match(p) {
			out = append(out, p)
		}
	}
	return out
}

func pick[T any](r *rand.Rand, xs []T) (T, bool) {
	var zero T
	if len(xs) == 0 {
		return zero, false
	}
	return xs[r.IntN(len(xs))], true
}

func (s *sim) phase(ph fsm.Phase) func(fsm.PartitionInfo) bool {
	return func(p fsm.PartitionInfo) bool { return p.Phase == ph }
}

// run applies n commands, advancing the leader clock (now and then backwards,
// as after a failover to a leader with a slower clock).
func (s *sim) run(n int) {
	for range n {
		s.e.Now += int64(1+s.rng.IntN(500)) * 1e6
		if s.rng.IntN(50) == 0 {
			s.e.Now -= int64(s.rng.IntN(300)) * 1e6
		}
		s.step()
	}
}

func (s *sim) step() {
	r := s.rng
	ws := s.eligible()
	switch k := r.IntN(100); {
	case len(ws) < 3 || k < 4:
		s.nextW++
		s.apply(fsm.Join{Worker: fsm.WorkerID(fmt.Sprintf("w%d", s.nextW%9)), Weight: uint32(1 + r.IntN(3)),
			Replace: r.IntN(4) == 0}, "worker")
	case s.e.State.Summary().Partitions < 8 || (k < 8 && s.e.State.Summary().Partitions < 40):
		var specs []fsm.PartitionSpec
		for range 1 + r.IntN(4) {
			s.nextP++
			specs = append(specs, fsm.PartitionSpec{ID: fsm.PartitionID(fmt.Sprintf("p%03d", s.nextP)),
				Subjects: []string{fmt.Sprintf("orders.%d.>", s.nextP)}, StartAfter: fsm.StreamSeq(r.IntN(5))})
		}
		s.apply(fsm.Declare{Partitions: specs}, "operator:alice")
	case k < 20:
		var items []fsm.ClaimItem
		for _, p := range s.partitions(s.phase(fsm.PhaseUnassigned)) {
			if w, ok := pick(r, ws); ok && r.IntN(2) == 0 {
				items = append(items, fsm.ClaimItem{Partition: p.ID, Worker: w.ID})
			}
		}
		if len(items) > 0 {
			s.apply(fsm.Claim{Items: items}, "controller")
		}
	case k < 30:
		s.report(fsm.PhaseActivating, func(w fsm.WorkerID, inc fsm.Incarnation, ps []fsm.PartitionInfo) fsm.Body {
			var items []fsm.ActivateItem
			for _, p := range ps {
				items = append(items, fsm.ActivateItem{Partition: p.ID, Epoch: p.Epoch})
			}
			return fsm.Activate{Worker: w, Incarnation: inc, Items: items}
		})
	case k < 55:
		s.report(0, func(w fsm.WorkerID, inc fsm.Incarnation, ps []fsm.PartitionInfo) fsm.Body {
			var items []fsm.CheckpointItem
			for _, p := range ps {
				if p.Phase == fsm.PhaseActive || p.Phase == fsm.PhaseActivating || p.Phase == fsm.PhasePreparing {
					items = append(items, fsm.CheckpointItem{Partition: p.ID, Epoch: p.Epoch,
						Seq: p.Checkpoint + fsm.StreamSeq(1+r.IntN(20))})
				}
			}
			return fsm.Checkpoint{Worker: w, Incarnation: inc, Items: items}
		})
	case k < 65:
		if p, ok := pick(r, s.partitions(func(p fsm.PartitionInfo) bool { return p.Phase == fsm.PhaseActive })); ok {
			to, _ := pick(r, ws)
			if to.ID == p.Owner || r.IntN(5) == 0 {
				to.ID = "" // a release
			}
			var timeout int64
			if r.IntN(3) == 0 {
				timeout = 1e9
			}
			s.apply(fsm.Prepare{Items: []fsm.PrepareItem{{Partition: p.ID, Epoch: p.Epoch, From: p.Owner, To: to.ID,
				Reason: "rebalance", DrainTimeout: timeout}}}, "controller")
		}
	case k < 73:
		if p, ok := pick(r, s.partitions(s.phase(fsm.PhasePreparing))); ok && r.IntN(5) > 0 {
			inc := s.e.Incarnation(p.Owner)
			s.apply(fsm.DrainReport{Worker: p.Owner, Incarnation: inc, Items: []fsm.DrainItem{{Handoff: p.Handoff,
				Partition: p.ID, Epoch: p.Epoch, ThroughSeq: p.Checkpoint + fsm.StreamSeq(r.IntN(10))}}}, "worker")
		} else if ok {
			s.apply(fsm.Abort{Items: []fsm.AbortItem{{Handoff: p.Handoff, Partition: p.ID, Reason: "sim"}}}, "controller")
		}
	case k < 80:
		var items []fsm.CommitItem
		for _, p := range s.partitions(s.phase(fsm.PhaseDrained)) {
			items = append(items, fsm.CommitItem{Handoff: p.Handoff, Partition: p.ID})
		}
		if len(items) > 0 {
			s.apply(fsm.Commit{Items: items}, "controller")
		}
	case k < 84:
		var items []fsm.ForceItem
		for _, p := range s.partitions(func(p fsm.PartitionInfo) bool {
			return p.Phase == fsm.PhaseOrphaned || (p.PendingHandoff != nil && !p.PendingHandoff.Drained &&
				p.PendingHandoff.Deadline != 0 && p.PendingHandoff.Deadline <= s.e.Now && p.PendingHandoff.To != "")
		}) {
			reason := fsm.ForceOwnerLeft
			to, _ := pick(r, ws)
			if p.Phase != fsm.PhaseOrphaned {
				reason, to.ID = fsm.ForceDrainDeadline, p.PendingHandoff.To
			}
			items = append(items, fsm.ForceItem{Partition: p.ID, Epoch: p.Epoch, To: to.ID, Reason: reason})
		}
		if len(items) > 0 {
			s.apply(fsm.ForceCommit{Items: items}, "controller")
		}
	case k < 88:
		if w, ok := pick(r, ws); ok && len(ws) > 3 {
			s.apply(fsm.Expire{Worker: w.ID, Incarnation: w.Incarnation}, "controller")
		}
	case k < 91:
		if p, ok := pick(r, s.partitions(func(p fsm.PartitionInfo) bool {
			return p.Phase == fsm.PhaseActive && p.Handoff == 0
		})); ok {
			s.apply(fsm.Release{Worker: p.Owner, Incarnation: s.e.Incarnation(p.Owner), Items: []fsm.ReleaseItem{{
				Partition: p.ID, Epoch: p.Epoch, ThroughSeq: p.Checkpoint + fsm.StreamSeq(r.IntN(5))}}}, "worker")
		}
	case k < 93:
		if p, ok := pick(r, s.partitions(s.phase(fsm.PhaseUnassigned))); ok {
			s.apply(fsm.RemovePartitions{Partitions: []fsm.PartitionID{p.ID}}, "operator:alice")
		}
	case k < 95:
		if w, ok := pick(r, s.e.State.Workers()); ok {
			s.apply(fsm.Cordon{Worker: w.ID, On: !w.Cordoned && r.IntN(2) == 0}, "operator:bob")
		}
	case k < 97:
		if p, ok := pick(r, s.e.State.Partitions("", 0)); ok {
			w, _ := pick(r, ws)
			s.apply(fsm.Pin{Partition: p.ID, Worker: w.ID}, "operator:bob")
		}
	case k < 98:
		s.apply(fsm.SetRebalance{Paused: r.IntN(2) == 0}, "operator:bob")
	case k < 99:
		s.apply(fsm.RegisterNode{Node: fmt.Sprintf("n%d", r.IntN(3)), APIAddr: fmt.Sprintf("http://10.0.0.%d:80", r.IntN(9))}, "raftnode")
	default:
		if w, ok := pick(r, ws); ok && len(ws) > 3 {
			s.apply(fsm.Leave{Worker: w.ID, Incarnation: w.Incarnation}, "worker")
		}
	}
}

// report has one worker report on its partitions (all of them when phase is 0).
func (s *sim) report(phase fsm.Phase, body func(fsm.WorkerID, fsm.Incarnation, []fsm.PartitionInfo) fsm.Body) {
	owners := map[fsm.WorkerID][]fsm.PartitionInfo{}
	for _, p := range s.partitions(func(p fsm.PartitionInfo) bool {
		return p.Owner != "" && (phase == 0 || p.Phase == phase)
	}) {
		owners[p.Owner] = append(owners[p.Owner], p)
	}
	ids := make([]fsm.WorkerID, 0, len(owners))
	for w := range owners {
		ids = append(ids, w)
	}
	slices.Sort(ids)
	w, ok := pick(s.rng, ids)
	if !ok {
		return
	}
	b := body(w, s.e.Incarnation(w), owners[w])
	s.apply(b, "worker:"+string(w))
}

// groups splits events into the per-entry batches raftnode would append.
func groups(events []fsm.Event) [][]fsm.Event {
	var out [][]fsm.Event
	for i := 0; i < len(events); {
		j := i + 1
		for j < len(events) && events[j].Index == events[i].Index {
			j++
		}
		out = append(out, events[i:j])
		i = j
	}
	return out
}

// batches splits events into random multi-entry batches (raftnode's ApplyBatch),
// never splitting an entry.
func batches(r *rand.Rand, events []fsm.Event) [][]fsm.Event {
	var out [][]fsm.Event
	var cur []fsm.Event
	for _, g := range groups(events) {
		cur = append(cur, g...)
		if r.IntN(4) == 0 {
			out, cur = append(out, cur), nil
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// compacted is what the log retains of events without trimming: every event
// but the checkpoints superseded by a later one of the same partition.
func compacted(events []fsm.Event) []fsm.Event {
	latest := map[fsm.PartitionID]int{}
	for i, ev := range events {
		if cp, ok := ev.Body.(fsm.Checkpointed); ok {
			latest[cp.Partition] = i
		}
	}
	var out []fsm.Event
	for i, ev := range events {
		if cp, ok := ev.Body.(fsm.Checkpointed); ok && latest[cp.Partition] != i {
			continue
		}
		out = append(out, ev)
	}
	return out
}
