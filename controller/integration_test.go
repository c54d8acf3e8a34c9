package controller_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/controller"
	"github.com/batonhq/baton/controller/placement"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

// The tests in this file run a real 3-node claim store (loopback TCP, the
// HTTP API and a controller on every node) with simulated workers that use
// the real client. They wait on conditions only; every one ends with
// harness.finish, which checks the replicas, the state invariants and the
// whole audit log's history.

// TestCluster_ClaimScaleOutScaleIn: the initial claim places every partition
// within the fair-share bound without a single move; adding two workers and
// one worker leaving keep the bound and move no more than 5% above the
// minimum the load change needs.
func TestCluster_ClaimScaleOutScaleIn(t *testing.T) {
	h := newHarness(t, testConfig())
	ws := h.start("w1", "w2", "w3")
	h.declare(60)
	v := h.waitSettled()
	h.checkBalanced("initial claim", v)
	evs := h.events()
	if n := len(ofType[fsm.Committed](evs)); n != 0 {
		t.Errorf("initial claim: %d commits, want every partition claimed in place", n)
	}
	if n := len(ofType[fsm.Claimed](evs)); n != 60 {
		t.Errorf("initial claim: %d claims, want 60", n)
	}

	// Scale out by two. Rebalancing is paused while they register, so that
	// the controller plans once for the final membership: the stabilization
	// window does the same for joins that land close together, but a
	// pass/fail test must not depend on two registrations landing within it.
	before := v.loads()
	h.setPaused(true)
	h.start("w4", "w5")
	from := h.setPaused(false)
	v = h.waitSettled()
	h.checkBalanced("scale out 3->5", v)
	h.checkMoves("scale out 3->5", from, before, v.loads())

	// Scale in: w5 leaves gracefully; only its partitions move.
	before = v.loads()
	from = h.read().index
	h.workers[4].Leave() // w5
	h.waitFor("w5 gone", func(v clusterView) error {
		if !v.gone("w5") {
			return errors.New("w5 still there")
		}
		return nil
	})
	v = h.waitSettled()
	h.checkBalanced("scale in 5->4", v)
	h.checkMoves("scale in 5->4", from, before, v.loads())
	for _, w := range ws {
		if len(w.Owned()) == 0 {
			t.Errorf("%s processes nothing", w.id)
		}
	}
	h.finish()
}

// TestCluster_ExpiredWorkerFailsOverFromLastCheckpoint: a worker that stops
// heartbeating is expired after its TTL, and each of its partitions is
// force-committed (owner_left) to a live worker resuming exactly after the
// last checkpoint the dead worker reported.
func TestCluster_ExpiredWorkerFailsOverFromLastCheckpoint(t *testing.T) {
	h := newHarness(t, testConfig())
	ws := h.start("w1", "w2", "w3")
	h.declare(30)
	h.waitSettled()
	victim := ws[2]
	h.waitFor("a checkpoint on every partition of w3", func(v clusterView) error {
		last := victim.LastCheckpoints()
		for _, p := range v.parts {
			if p.Owner != victim.id {
				continue
			}
			if r := last[p.ID]; r.Epoch != p.Epoch || r.Seq == 0 {
				return fmt.Errorf("%s: no checkpoint at epoch %d yet", p.ID, p.Epoch)
			}
		}
		return nil
	})
	// The audit log keeps only the newest checkpoint of each partition: the
	// survivors stop checkpointing so that the victim's last ones stay there
	// to be compared with.
	ws[0].StopCheckpoints()
	ws[1].StopCheckpoints()
	owned := h.read().owned(victim.id)
	if len(owned) == 0 {
		t.Fatal("w3 owns nothing")
	}

	victim.StopHeartbeats()
	h.waitFor("w3 expired", func(v clusterView) error {
		if !v.gone(victim.id) {
			return errors.New("w3 still live")
		}
		return nil
	})
	victim.Stop()
	v := h.waitSettled()
	h.checkBalanced("after failover", v)

	evs := h.events()
	var left fsm.RaftIndex
	for _, e := range ofType[fsm.WorkerLeft](evs) {
		if e.Body.Worker == victim.id {
			if e.Body.Reason != fsm.LeftExpired {
				t.Errorf("w3 left with reason %s, want expired", e.Body.Reason)
			}
			left = e.Index
		}
	}
	if left == 0 {
		t.Fatal("no WorkerLeft for w3")
	}
	reported := victim.LastCheckpoints()
	for _, p := range owned {
		var ckpt *typed[fsm.Checkpointed]
		for _, e := range ofType[fsm.Checkpointed](evs) {
			if e.Body.Partition == p && e.Index < left {
				ckpt = &e
			}
		}
		var commit *typed[fsm.Committed]
		for _, e := range since(ofType[fsm.Committed](evs), left) {
			if e.Body.Partition == p {
				commit = &e
				break
			}
		}
		switch {
		case ckpt == nil:
			t.Errorf("%s: no checkpoint before w3 left in the audit log", p)
		case commit == nil:
			t.Errorf("%s: no commit after w3 left", p)
		case !commit.Body.Forced || commit.Body.ForceReason != fsm.ForceOwnerLeft || commit.Body.From != victim.id:
			t.Errorf("%s: commit %+v, want forced (owner_left) from w3", p, commit.Body)
		case commit.Body.ResumeAfter != ckpt.Body.Seq || ckpt.Body.Seq != reported[p].Seq:
			t.Errorf("%s: resumes after %d; last checkpoint in the log %d, last one w3 reported %d",
				p, commit.Body.ResumeAfter, ckpt.Body.Seq, reported[p].Seq)
		}
		if o := v.partition(p).Owner; o == victim.id || !v.eligible(o) {
			t.Errorf("%s: owned by %s after failover", p, o)
		}
	}
	h.finish()
}

// TestCluster_StuckDrainForcedAtDeadlineThenFenced: an owner that never
// drains loses the partition at the drain deadline (forced, drain_deadline,
// from its last checkpoint); its late drain, checkpoint and release under the
// old epoch are refused.
func TestCluster_StuckDrainForcedAtDeadlineThenFenced(t *testing.T) {
	cfg := testConfig()
	cfg.DrainTimeout = 1500 * time.Millisecond
	h := newHarness(t, cfg)
	ws := h.start("w1", "w2", "w3")
	h.declare(30)
	h.waitSettled()
	stuck := ws[0]
	stuck.NeverDrain()
	from := h.read().index
	// w4 joining takes at least two partitions off each of w1..w3 (10 -> 7 or 8).
	h.start("w4")
	v := h.waitSettled()
	h.checkBalanced("after the deadline", v)

	evs := h.events()
	var prepared []typed[fsm.Prepared]
	for _, e := range since(ofType[fsm.Prepared](evs), from) {
		if e.Body.From == stuck.id {
			prepared = append(prepared, e)
		}
	}
	if len(prepared) < 2 {
		t.Fatalf("%d handoffs out of w1, want at least 2", len(prepared))
	}
	reported := stuck.LastCheckpoints()
	for _, p := range prepared {
		var commit *typed[fsm.Committed]
		for _, e := range ofType[fsm.Committed](evs) {
			if e.Body.Handoff == p.Body.Handoff {
				commit = &e
			}
		}
		switch {
		case commit == nil:
			t.Errorf("handoff %s of %s never committed", p.Body.Handoff, p.Body.Partition)
		case !commit.Body.Forced || commit.Body.ForceReason != fsm.ForceDrainDeadline:
			t.Errorf("handoff %s: commit %+v, want forced at the drain deadline", p.Body.Handoff, commit.Body)
		case commit.Time < p.Body.Deadline:
			t.Errorf("handoff %s: forced at %d, before its deadline %d", p.Body.Handoff, commit.Time, p.Body.Deadline)
		case reported[p.Body.Partition].Epoch != p.Body.Epoch || commit.Body.ResumeAfter != reported[p.Body.Partition].Seq:
			t.Errorf("handoff %s: resumes after %d, w1's last checkpoint %+v at epoch %d",
				p.Body.Handoff, commit.Body.ResumeAfter, reported[p.Body.Partition], p.Body.Epoch)
		}
	}

	// The deposed owner's late reports carry the old epoch (and a handoff
	// that is no longer pending): each is refused.
	ctx := h.ctx()
	for _, p := range prepared {
		id, epoch := p.Body.Partition, p.Body.Epoch
		seq := reported[id].Seq + 100
		res, err := stuck.cl.Drained(ctx, stuck.id, stuck.inc, []fsm.DrainItem{{Handoff: p.Body.Handoff, Partition: id, Epoch: epoch, ThroughSeq: seq}})
		if err != nil {
			t.Fatalf("late drain of %s: %v", id, err)
		}
		if ierr := client.ItemErrors(res); !errors.Is(ierr, fsm.ErrUnknownHandoff) && !errors.Is(ierr, fsm.ErrStaleEpoch) {
			t.Errorf("late drain of %s: %v, want unknown_handoff or stale_epoch", id, ierr)
		}
		res, err = stuck.cl.Checkpoints(ctx, stuck.id, stuck.inc, []fsm.CheckpointItem{{Partition: id, Epoch: epoch, Seq: seq}})
		if err != nil {
			t.Fatalf("late checkpoint of %s: %v", id, err)
		}
		if ierr := client.ItemErrors(res); !errors.Is(ierr, fsm.ErrStaleEpoch) {
			t.Errorf("late checkpoint of %s: %v, want stale_epoch", id, ierr)
		}
		res, err = stuck.cl.Released(ctx, stuck.id, stuck.inc, []fsm.ReleaseItem{{Partition: id, Epoch: epoch, ThroughSeq: seq}})
		if err != nil {
			t.Fatalf("late release of %s: %v", id, err)
		}
		if ierr := client.ItemErrors(res); !errors.Is(ierr, fsm.ErrStaleEpoch) {
			t.Errorf("late release of %s: %v, want stale_epoch", id, ierr)
		}
	}
	h.finish()
}

// TestCluster_TargetDiesMidHandoff: w1 leaves but drains slowly; w3, the
// target of some of its handoffs, dies before the drain. Its expiry aborts
// those handoffs (target_left) and the controller prepares them again towards
// the live worker, where they commit once w1 drains.
func TestCluster_TargetDiesMidHandoff(t *testing.T) {
	h := newHarness(t, testConfig())
	ws := h.start("w1", "w2", "w3")
	h.declare(30)
	h.waitSettled()
	src, live, target := ws[0], ws[1], ws[2]
	src.NeverDrain()
	src.Leave()
	h.waitFor("handoffs from w1 to w3", func(v clusterView) error {
		for _, ho := range v.handoffs {
			if ho.From == src.id && ho.To == target.id {
				return nil
			}
		}
		return fmt.Errorf("handoffs %v", v.handoffs)
	})
	target.Stop()
	h.waitFor("w3 expired and w1's partitions heading to w2", func(v clusterView) error {
		if !v.gone(target.id) {
			return errors.New("w3 still live")
		}
		pending := map[fsm.PartitionID]fsm.Handoff{}
		for _, ho := range v.handoffs {
			pending[ho.Partition] = ho
		}
		for _, p := range v.owned(src.id) {
			if ho, ok := pending[p]; !ok || ho.To != live.id {
				return fmt.Errorf("%s: pending handoff %+v, want one to w2", p, ho)
			}
		}
		return nil
	})
	src.ResumeDrains()
	h.waitFor("w1 gone", func(v clusterView) error {
		if !v.gone(src.id) {
			return errors.New("w1 still there")
		}
		return nil
	})
	v := h.waitSettled()
	if n := len(v.owned(live.id)); n != 30 {
		t.Errorf("w2 owns %d partitions, want all 30", n)
	}

	evs := h.events()
	var aborted []typed[fsm.Aborted]
	for _, e := range ofType[fsm.Aborted](evs) {
		if e.Body.To == target.id {
			aborted = append(aborted, e)
		}
	}
	if len(aborted) == 0 {
		t.Fatal("no handoff towards w3 was aborted")
	}
	for _, a := range aborted {
		if a.Body.Reason != "target_left" || a.Body.From != src.id {
			t.Errorf("abort %+v, want from w1 with reason target_left", a.Body)
		}
		p := a.Body.Partition
		var replanned *typed[fsm.Prepared]
		for _, e := range since(ofType[fsm.Prepared](evs), a.Index) {
			if e.Body.Partition == p {
				replanned = &e
				break
			}
		}
		if replanned == nil || replanned.Body.To != live.id {
			t.Errorf("%s: not prepared again towards w2 after the abort: %+v", p, replanned)
			continue
		}
		var commit *typed[fsm.Committed]
		for _, e := range ofType[fsm.Committed](evs) {
			if e.Body.Handoff == replanned.Body.Handoff {
				commit = &e
			}
		}
		if commit == nil || commit.Body.Forced || commit.Body.To != live.id {
			t.Errorf("%s: re-planned handoff %s ended %+v, want a graceful commit to w2", p, replanned.Body.Handoff, commit)
		}
	}
	h.finish()
}

// TestCluster_LeaderKilledMidHandoff: the leader dies while handoffs are
// prepared and their owner has not drained yet; the new leader finishes every
// one of them, and the cluster ends at rest and balanced.
func TestCluster_LeaderKilledMidHandoff(t *testing.T) {
	h := newHarness(t, testConfig())
	ws := h.start("w1", "w2", "w3")
	h.declare(30)
	h.waitSettled()
	slow := ws[0]
	slow.NeverDrain()
	h.start("w4")
	v := h.waitFor("a handoff out of w1 waiting for its drain", func(v clusterView) error {
		for _, ho := range v.handoffs {
			if ho.From == slow.id && !ho.Drained {
				return nil
			}
		}
		return fmt.Errorf("handoffs %v", v.handoffs)
	})
	open := map[fsm.HandoffID]bool{}
	for _, ho := range v.handoffs {
		if ho.From == slow.id {
			open[ho.ID] = true
		}
	}
	leader := h.c.Leader(t)
	killed := slices.Index(h.c.Nodes, leader)
	h.c.Kill(t, killed)
	t.Logf("killed leader %s with handoffs %v open", leader.ID, v.handoffs)
	slow.ResumeDrains()

	v = h.waitSettled()
	h.checkBalanced("after the leader change", v)
	evs := h.events()
	prepTerm := map[fsm.HandoffID]uint64{}
	for _, e := range ofType[fsm.Prepared](evs) {
		prepTerm[e.Body.Handoff] = e.Term
	}
	ended := map[fsm.HandoffID]bool{}
	for _, e := range ofType[fsm.Committed](evs) {
		if open[e.Body.Handoff] {
			ended[e.Body.Handoff] = true
			if e.Term <= prepTerm[e.Body.Handoff] {
				t.Errorf("handoff %s committed in term %d, prepared in %d: want the new leader's term", e.Body.Handoff, e.Term, prepTerm[e.Body.Handoff])
			}
		}
	}
	for _, e := range ofType[fsm.Aborted](evs) {
		if open[e.Body.Handoff] {
			ended[e.Body.Handoff] = true
		}
	}
	for id := range open {
		if !ended[id] {
			t.Errorf("handoff %s open at the kill never ended", id)
		}
	}

	h.c.Restart(t, killed)
	h.finish()
}

// TestCluster_ThrottlesHoldAtEveryEvent replays the audit log of a large
// rebalance and checks the handoff throttles after every event: at most
// MaxHandoffs pending cluster-wide, at most MaxHandoffsPerWorker into or out
// of any worker (a fixed window here: the ceiling equals the start; the
// window's adaptation is tested on decide, in throttle_test.go).
func TestCluster_ThrottlesHoldAtEveryEvent(t *testing.T) {
	cfg := testConfig()
	cfg.MaxHandoffs, cfg.MaxHandoffsPerWorker, cfg.MaxHandoffsPerWorkerCeiling = 3, 2, 2
	h := newHarness(t, cfg)
	h.start("w1", "w2", "w3")
	h.declare(60)
	h.waitSettled()
	from := h.read().index
	h.start("w4", "w5", "w6")
	v := h.waitSettled()
	h.checkBalanced("after the rebalance", v)

	evs := h.events()
	if n := len(since(ofType[fsm.Committed](evs), from)); n < 30 {
		t.Fatalf("%d moves, want at least 30 (60 partitions from 3 to 6 workers)", n)
	}
	pending := map[fsm.HandoffID]fsm.Prepared{}
	byPartition := map[fsm.PartitionID]fsm.HandoffID{}
	end := func(id fsm.HandoffID) {
		if p, ok := pending[id]; ok {
			delete(byPartition, p.Partition)
			delete(pending, id)
		}
	}
	peak := 0
	for _, ev := range evs {
		switch b := ev.Body.(type) {
		case fsm.Prepared:
			pending[b.Handoff] = b
			byPartition[b.Partition] = b.Handoff
		case fsm.Committed:
			end(b.Handoff)
		case fsm.Aborted:
			end(b.Handoff)
		case fsm.Released:
			if id, ok := byPartition[b.Partition]; ok {
				end(id)
			}
		default:
			continue
		}
		perWorker := map[fsm.WorkerID]int{}
		for _, p := range pending {
			perWorker[p.From]++
			if p.To != "" {
				perWorker[p.To]++
			}
		}
		if len(pending) > cfg.MaxHandoffs {
			t.Errorf("event %d.%d %s: %d handoffs pending, max %d", ev.Index, ev.Seq, ev.Type(), len(pending), cfg.MaxHandoffs)
		}
		for w, n := range perWorker {
			if n > cfg.MaxHandoffsPerWorker {
				t.Errorf("event %d.%d %s: %d handoffs pending on %s, max %d", ev.Index, ev.Seq, ev.Type(), n, w, cfg.MaxHandoffsPerWorker)
			}
		}
		peak = max(peak, len(pending))
	}
	if peak != cfg.MaxHandoffs {
		t.Errorf("at most %d handoffs were ever pending: the throttle of %d was never used in full", peak, cfg.MaxHandoffs)
	}
	if len(pending) != 0 {
		t.Errorf("%d handoffs still pending at the end of the log", len(pending))
	}
	h.finish()
}

// TestCluster_OperatorVerbs drives pause/resume, the dry run, pin and cordon
// through the API.
func TestCluster_OperatorVerbs(t *testing.T) {
	h := newHarness(t, testConfig())
	ws := h.start("w1", "w2", "w3")
	h.declare(30)
	h.waitSettled()
	ctx := h.ctx()

	// Paused: new workers get nothing by rebalancing, but a leaving
	// worker's partitions still move.
	pausedAt := h.setPaused(true)
	h.start("w4", "w5")
	h.waitFor("a dry run that holds rebalancing", func(clusterView) error {
		dr, err := h.tryDryRun()
		if err != nil {
			return err
		}
		if !dr.Paused || len(dr.Moves) == 0 {
			return fmt.Errorf("dry run paused=%v with %d moves", dr.Paused, len(dr.Moves))
		}
		return nil
	})
	ws[2].Leave()
	h.waitFor("w3 gone", func(v clusterView) error {
		if !v.gone("w3") {
			return errors.New("w3 still there")
		}
		return nil
	})
	v := h.waitQuiet()
	for _, e := range since(ofType[fsm.Committed](h.events()), pausedAt) {
		if e.Body.From != "w3" {
			t.Errorf("while paused, %s moved %s -> %s", e.Body.Partition, e.Body.From, e.Body.To)
		}
	}
	for _, w := range []fsm.WorkerID{"w1", "w2"} {
		if n := len(v.owned(w)); n != 10 {
			t.Errorf("while paused, %s went from 10 partitions to %d", w, n)
		}
	}

	// The dry run lists what resuming will do, with reasons; resuming does
	// exactly that.
	dr := h.dryRun()
	if !dr.Paused || len(dr.Moves) == 0 {
		t.Fatalf("dry run while paused: paused=%v, %d moves", dr.Paused, len(dr.Moves))
	}
	held := map[fsm.PartitionID]bool{}
	for _, n := range dr.Actions {
		if n.Action == api.PlanHold && strings.Contains(n.Detail, "paused") {
			held[n.Partition] = true
		}
	}
	planned := map[string]bool{}
	for _, m := range dr.Moves {
		if r := placement.Reason(m.Reason); r != placement.ReasonRebalanceOverload && r != placement.ReasonRebalanceUnderload {
			t.Errorf("dry run: move %+v is not a rebalance", m)
		}
		if !held[fsm.PartitionID(m.Partition)] {
			t.Errorf("dry run: move of %s not shown as held by the pause", m.Partition)
		}
		planned[fmt.Sprintf("%s %s->%s %s", m.Partition, m.From, m.To, m.Reason)] = true
	}
	t.Logf("dry run while paused:\n%s", dr.Rendered)
	resumedAt := h.setPaused(false)
	v = h.waitSettled()
	h.checkBalanced("after resume", v)
	done := map[string]bool{}
	for _, e := range since(ofType[fsm.Prepared](h.events()), resumedAt) {
		done[fmt.Sprintf("%s %s->%s %s", e.Body.Partition, e.Body.From, e.Body.To, e.Body.Reason)] = true
	}
	if !mapsEqual(planned, done) {
		t.Errorf("resume made moves %v, the dry run planned %v", sortedKeys(done), sortedKeys(planned))
	}

	// Pin: a partition of w1 goes to w2 and stays there.
	pinned := v.owned("w1")[0]
	if _, err := h.cl.Pin(ctx, pinned, "w2"); err != nil {
		t.Fatalf("pin: %v", err)
	}
	v = h.waitFor("pinned partition on w2", func(v clusterView) error {
		if p := v.partition(pinned); p.Owner != "w2" || p.Phase != fsm.PhaseActive {
			return fmt.Errorf("%s is %s on %s", pinned, p.Phase, p.Owner)
		}
		return nil
	})
	pinnedAt := v.index
	h.waitSettled()

	// Cordon: w1 is emptied and gets nothing, not even the partitions of a
	// worker that leaves meanwhile, until it is uncordoned.
	if _, err := h.cl.Cordon(ctx, "w1", true); err != nil {
		t.Fatalf("cordon: %v", err)
	}
	cordonedAt := h.read().index
	h.waitSettled() // settled means every partition is on an eligible worker
	if n := len(ws[0].Owned()); n != 0 {
		// The worker's own view may lag the state by a watch round trip.
		h.waitFor("w1 empty in its own view", func(clusterView) error {
			if n := len(ws[0].Owned()); n != 0 {
				return fmt.Errorf("w1 processes %d partitions", n)
			}
			return nil
		})
	}
	h.workers[4].Leave() // w5
	h.waitFor("w5 gone", func(v clusterView) error {
		if !v.gone("w5") {
			return errors.New("w5 still there")
		}
		return nil
	})
	v = h.waitSettled()
	if n := len(v.owned("w1")); n != 0 {
		t.Errorf("cordoned w1 owns %d partitions", n)
	}
	res, err := h.cl.Cordon(ctx, "w1", false)
	if err != nil {
		t.Fatalf("uncordon: %v", err)
	}
	uncordonedAt := res.Index
	v = h.waitSettled()
	h.checkBalanced("after uncordon", v)
	if len(v.owned("w1")) == 0 {
		t.Error("uncordoned w1 got nothing back")
	}

	evs := h.events()
	for _, ev := range evs {
		if ev.Index <= cordonedAt || ev.Index >= uncordonedAt {
			continue
		}
		var to fsm.WorkerID
		switch b := ev.Body.(type) {
		case fsm.Claimed:
			to = b.Worker
		case fsm.Prepared:
			to = b.To
		case fsm.Committed:
			to = b.To
		}
		if to == "w1" {
			t.Errorf("event %d %s gives %s to cordoned w1", ev.Index, ev.Type(), ev.Partitions())
		}
	}
	for _, e := range since(ofType[fsm.Committed](evs), pinnedAt) {
		if e.Body.Partition == pinned {
			t.Errorf("pinned %s moved %s -> %s at %d", pinned, e.Body.From, e.Body.To, e.Index)
		}
	}
	if o := v.partition(pinned).Owner; o != "w2" {
		t.Errorf("pinned %s on %s, want w2", pinned, o)
	}
	h.finish()
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// leaderNode is a controller.Node that is always the leader of an empty
// state and honours contexts, as raftnode does.
type leaderNode struct{ state *fsm.State }

var _ controller.Node = leaderNode{}

func (leaderNode) IsLeader() bool                     { return true }
func (leaderNode) LeadershipChanged() <-chan struct{} { return nil }
func (n leaderNode) Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	return fsm.Result{}, ctx.Err()
}
func (n leaderNode) Read(ctx context.Context, c raftnode.Consistency, fn func(*fsm.State)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fn(n.state)
	return nil
}
func (leaderNode) WaitChange(ctx context.Context, after fsm.RaftIndex) (fsm.RaftIndex, error) {
	<-ctx.Done()
	return after, ctx.Err()
}

// TestController_CloseWhileLeading: Close returns while the node is still the
// leader. (It used to spin, re-entering its leadership loop, until the node
// lost leadership: a cluster whose leader's controller was closed first
// stalled for tens of seconds.)
func TestController_CloseWhileLeading(t *testing.T) {
	s, err := fsm.New(fsm.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	ctrl, err := controller.New(leaderNode{state: s}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		ctrl.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(testcluster.Timeout):
		t.Fatal("Close did not return while the node leads")
	}
}
