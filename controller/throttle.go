package controller

import (
	"time"

	"github.com/batonhq/baton/fsm"
)

// throttle is the per-worker handoff window: how many handoffs into or out of
// one worker may be pending at once. It works as TCP's congestion window does.
// Every worker starts at Config.MaxHandoffsPerWorker; each handoff of the
// worker's that completes promptly (prepared, drained, committed and activated
// within Config.SlowHandoff) widens it by one, so a worker that keeps up
// doubles its window every round, up to Config.MaxHandoffsPerWorkerCeiling; a
// handoff that is still not active after SlowHandoff halves it, never below
// the start.
//
// That keeps the protection the fixed bound gave (a worker that stalls, or
// whose handlers drain slowly, never has more than it has shown it completes)
// without making a healthy rebalance wait one round trip per 32 moves.
//
// The window is leader-local and rebuilt from nothing at each term, like the
// session table: a new leader starts every worker at MaxHandoffsPerWorker,
// which is always safe. It does no I/O and reads no clock: observe is given
// each round's view and time.
type throttle struct {
	start, ceiling int
	slowAfter      time.Duration

	window map[fsm.WorkerID]int
	// flights are the handoffs seen pending or awaiting activation.
	flights map[fsm.HandoffID]*flight
}

// flight is one handoff the throttle follows until its partition is active
// under the new owner, or it turns out slow or aborted.
type flight struct {
	partition fsm.PartitionID
	from, to  fsm.WorkerID
	seen      time.Time
	// committed: no longer pending, waiting for the new owner's activation.
	committed bool
	// slow: it took longer than slowAfter and has narrowed its workers'
	// windows once; it is followed until it ends so that it does not again.
	slow bool
}

func newThrottle(cfg Config) *throttle {
	return &throttle{
		start: cfg.MaxHandoffsPerWorker, ceiling: cfg.MaxHandoffsPerWorkerCeiling, slowAfter: cfg.SlowHandoff,
		window: map[fsm.WorkerID]int{}, flights: map[fsm.HandoffID]*flight{},
	}
}

// limit is w's window now.
func (t *throttle) limit(w fsm.WorkerID) int {
	if n, ok := t.window[w]; ok {
		return n
	}
	return t.start
}

// observe updates the windows from one round's view: handoffs that completed
// since the last round widen their workers' windows, handoffs slower than
// slowAfter narrow them.
func (t *throttle) observe(v view, now time.Time) {
	pending := make(map[fsm.HandoffID]bool)
	byID := make(map[fsm.PartitionID]*fsm.PartitionInfo)
	for i := range v.partitions {
		p := &v.partitions[i]
		h := p.PendingHandoff
		if h == nil {
			continue
		}
		pending[h.ID] = true
		if _, ok := t.flights[h.ID]; !ok {
			t.flights[h.ID] = &flight{partition: p.ID, from: h.From, to: h.To, seen: now}
		}
	}
	for id, f := range t.flights {
		if !f.committed && !pending[id] {
			f.committed = true
		}
	}
	// Look partitions up only for the handoffs that left the pending set.
	need := false
	for _, f := range t.flights {
		need = need || f.committed
	}
	if need {
		for i := range v.partitions {
			byID[v.partitions[i].ID] = &v.partitions[i]
		}
	}
	for id, f := range t.flights {
		if f.committed {
			p := byID[f.partition]
			switch {
			case p == nil || (f.to != "" && p.Owner != f.to):
				// Removed, or force-committed elsewhere: no signal.
				delete(t.flights, id)
				continue
			case p.Phase == fsm.PhaseActive || (f.to == "" && p.Phase == fsm.PhaseUnassigned):
				if !f.slow && now.Sub(f.seen) <= t.slowAfter {
					t.widen(f.from)
					t.widen(f.to)
				}
				delete(t.flights, id)
				continue
			}
		}
		if !f.slow && now.Sub(f.seen) > t.slowAfter {
			f.slow = true
			t.narrow(f.from)
			t.narrow(f.to)
		}
	}
	live := make(map[fsm.WorkerID]bool, len(v.workers))
	for _, w := range v.workers {
		live[w.ID] = w.State != fsm.WorkerGone
	}
	for w := range t.window {
		if !live[w] {
			delete(t.window, w)
		}
	}
}

func (t *throttle) widen(w fsm.WorkerID) {
	if w != "" {
		t.window[w] = min(t.ceiling, t.limit(w)+1)
	}
}

func (t *throttle) narrow(w fsm.WorkerID) {
	if w != "" {
		t.window[w] = max(t.start, t.limit(w)/2)
	}
}
