package controller_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/batonhq/baton/controller"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/raftnode"
)

// benchConfig is the controller configuration of BenchmarkRebalance: the
// shipped defaults (throttles 256 / 32 per worker, batches of 1000) with
// session and window timings short enough for a benchmark.
func benchConfig() controller.Config {
	c := controller.DefaultConfig()
	c.SessionTTL = 2 * time.Second
	c.HeartbeatInterval = 250 * time.Millisecond
	c.StabilizationWindow = 200 * time.Millisecond
	c.DrainTimeout = 30 * time.Second
	c.Tick = 50 * time.Millisecond
	return c
}

// BenchmarkRebalance places 10,000 partitions on 10 simulated workers, then
// measures two membership changes on the real 3-node cluster:
//
//   - an 11th worker joins: the moves (commits after the join) against the
//     minimum the load change needs (909), and the time from its registration
//     until every partition is active again and the loads are balanced (this
//     includes the stabilization window and the handoff throttles);
//   - one of the 11 dies (heartbeats and all activity stop): the time until
//     all its partitions are active elsewhere, in seconds and as a ratio to
//     the session TTL (which it cannot beat: the expiry waits out the TTL).
//
// It runs the whole twice, on a fresh cluster each time: with a fixed
// per-worker window of 32 (the baseline: the bound before the window
// adapted) and with the shipped adaptive window, and reports the join's
// settle time of each and their ratio.
//
// Workers checkpoint every second, one call per worker for all its
// partitions, and activate and drain in one call per assignment change.
func BenchmarkRebalance(b *testing.B) {
	for range b.N {
		fixed := benchConfig()
		fixed.MaxHandoffsPerWorkerCeiling = fixed.MaxHandoffsPerWorker
		base := benchRebalance(b, fixed)
		got := benchRebalance(b, benchConfig())
		b.ReportMetric(base.Seconds(), "seconds_to_settle_fixed_window")
		b.ReportMetric(got.Seconds(), "seconds_to_settle")
		b.ReportMetric(got.Seconds()/base.Seconds(), "settle/fixed")
	}
}

// benchRebalance is one run of BenchmarkRebalance with controller config
// cfg; it returns the join's settle time.
func benchRebalance(b *testing.B, cfg controller.Config) time.Duration {
	const partitions, workers = 10_000, 10
	h := newHarness(b, cfg)
	opt := defaultSimOptions()
	opt.CheckpointEvery = time.Second
	opt.WatchWait = 5 * time.Second
	var ids []fsm.WorkerID
	for i := range workers {
		ids = append(ids, fsm.WorkerID(fmt.Sprintf("w%02d", i+1)))
	}
	ws := h.startWith(opt, ids...)
	h.declare(partitions)
	start := time.Now()
	v := waitBalanced(h, 2*time.Minute)
	b.Logf("initial claim of %d partitions on %d workers: %.2fs", partitions, workers, time.Since(start).Seconds())

	// Scale out: an 11th worker joins.
	before := v.loads()
	start = time.Now()
	w11 := h.startWith(opt, "w11")[0]
	from := registrationIndex(h, w11.id)
	v = waitBalanced(h, 2*time.Minute)
	settle := time.Since(start)
	after := v.loads()
	moves := len(since(ofType[fsm.Committed](h.events()), from))
	least := minMoves(before, after)
	h.checkBalanced("after the join", v)
	logRounds(b, h.events(), from, w11.id, start)

	// Failover: one of the 11 dies.
	victim := ws[4]
	lost := v.owned(victim.id)
	from = v.index
	start = time.Now()
	victim.Stop()
	waitMovedOff(h, victim.id, lost, 2*time.Minute)
	failover := time.Since(start)
	forced := 0
	for _, e := range since(ofType[fsm.Committed](h.events()), from) {
		if e.Body.Forced && e.Body.From == victim.id {
			forced++
		}
	}

	b.ReportMetric(float64(moves), "moves")
	b.ReportMetric(float64(least), "min_moves")
	b.ReportMetric(float64(moves)/float64(least), "ratio")
	b.ReportMetric(failover.Seconds(), "seconds_to_failover")
	b.ReportMetric(failover.Seconds()/cfg.SessionTTL.Seconds(), "failover/ttl")
	b.Logf("join of w11: %d moves (minimum %d, ratio %.3f), every partition active and balanced after %.2fs (window %s, throttles %d, per worker %d..%d)",
		moves, least, float64(moves)/float64(least), settle.Seconds(), cfg.StabilizationWindow, cfg.MaxHandoffs, cfg.MaxHandoffsPerWorker, cfg.MaxHandoffsPerWorkerCeiling)
	b.Logf("death of %s (%d partitions): all active elsewhere after %.2fs = %.2f x the session TTL of %s; %d forced commits",
		victim.id, len(lost), failover.Seconds(), failover.Seconds()/cfg.SessionTTL.Seconds(), cfg.SessionTTL, forced)
	h.finish()
	return settle
}

// logRounds logs, for each prepare command that moved partitions into w
// after index from, when it was applied (since start) and how many it moved:
// the handoff window's progress.
func logRounds(b *testing.B, evs []fsm.Event, from fsm.RaftIndex, w fsm.WorkerID, start time.Time) {
	var rounds []string
	var n int
	last := fsm.RaftIndex(0)
	at := time.Duration(0)
	flush := func() {
		if n > 0 {
			rounds = append(rounds, fmt.Sprintf("%s:%d", at.Round(time.Millisecond), n))
		}
	}
	for _, e := range evs {
		p, ok := e.Body.(fsm.Prepared)
		if !ok || e.Index <= from || p.To != w {
			continue
		}
		if e.Index != last {
			flush()
			at, n, last = time.Unix(0, e.Time).Sub(start), 0, e.Index
		}
		n++
	}
	flush()
	b.Logf("prepares into %s (time since its start: moves): %v", w, rounds)
}

// registrationIndex returns the index of w's current incarnation's join.
func registrationIndex(h *harness, w fsm.WorkerID) fsm.RaftIndex {
	h.t.Helper()
	v := h.read()
	return fsm.RaftIndex(v.workers[w].Incarnation)
}

// waitBalanced waits, on the leader's structural changes, until every
// partition is active on an eligible worker, no handoff is pending and every
// eligible worker (all of weight 1) holds floor or ceil of P/N partitions.
func waitBalanced(h *harness, timeout time.Duration) clusterView {
	h.t.Helper()
	return waitChange(h, "a balanced cluster", timeout, func(s *fsm.State) error {
		// Cheap first: no allocation per partition while handoffs run.
		sum := s.Summary()
		if n := sum.PartitionsByPhase[fsm.PhaseActive]; n != sum.Partitions || sum.Handoffs != 0 {
			return fmt.Errorf("%d of %d partitions active, %d handoffs", n, sum.Partitions, sum.Handoffs)
		}
		v := viewOf(s)
		if err := v.settledErr(); err != nil {
			return err
		}
		n := 0
		for id := range v.workers {
			if v.eligible(id) {
				n++
			}
		}
		lo, hi := len(v.parts)/n, (len(v.parts)+n-1)/n
		for id, l := range v.loads() {
			if l < lo || l > hi {
				return fmt.Errorf("%s holds %d, bound %d..%d", id, l, lo, hi)
			}
		}
		return nil
	})
}

// waitMovedOff waits until every partition in lost is active on a worker
// other than dead.
func waitMovedOff(h *harness, dead fsm.WorkerID, lost []fsm.PartitionID, timeout time.Duration) clusterView {
	h.t.Helper()
	return waitChange(h, "failover", timeout, func(s *fsm.State) error {
		for _, id := range lost {
			if p, _ := s.PartitionView(id); p.Owner == dead || p.Phase != fsm.PhaseActive {
				return fmt.Errorf("%s is %s on %s", id, p.Phase, p.Owner)
			}
		}
		return nil
	})
}

// waitChange checks cond on the leader's state after each structural change
// (not checkpoints) until it holds or timeout passes, and returns the state
// it held on. cond runs under the state's read lock.
func waitChange(h *harness, what string, timeout time.Duration, cond func(*fsm.State) error) clusterView {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last fsm.RaftIndex
	var lastErr error
	for {
		var r *raftnode.Node
		for _, n := range h.c.Nodes {
			if nr := n.Raft(); nr != nil && nr.IsLeader() {
				r = nr
			}
		}
		if r == nil {
			lastErr = errors.New("no leader")
			if !sleepCtx(ctx, 20*time.Millisecond) {
				h.t.Fatalf("waiting for %s: %v", what, lastErr)
			}
			continue
		}
		var v clusterView
		err := r.Read(ctx, raftnode.Stale, func(s *fsm.State) {
			if lastErr = cond(s); lastErr == nil {
				v = viewOf(s)
			}
		})
		if err == nil && lastErr == nil {
			return v
		}
		if err != nil {
			lastErr = err
		}
		wctx, wcancel := context.WithTimeout(ctx, time.Second)
		idx, err := r.WaitChange(wctx, last)
		wcancel()
		if err == nil {
			last = idx
		}
		if ctx.Err() != nil {
			h.t.Fatalf("waiting for %s: %v", what, lastErr)
		}
	}
}
