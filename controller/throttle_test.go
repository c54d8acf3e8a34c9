package controller

import (
	"slices"
	"testing"
	"time"

	"github.com/batonhq/baton/fsm"
)

// scaleOut puts 800 partitions on four workers, then a fifth joins, and
// plays rounds (1 ms apart, workers acting at once) until nothing changes.
// It returns how many prepares each round sent into the new worker (rounds
// with none left out), failing if one round sent more than its window, and
// checks that it ends with its fair 160.
func scaleOut(t *testing.T, s *sim) []int {
	t.Helper()
	s.join("w1", "w2", "w3", "w4")
	s.declare(800)
	s.settle()
	s.join("w5")
	var batches []int
	for range 200 {
		s.now = s.now.Add(time.Millisecond)
		before := s.env.Index()
		d := s.round(true)
		into := 0
		for _, p := range d.prepares {
			if p.To == "w5" {
				into++
			}
		}
		if into > s.thr.limit("w5") {
			t.Fatalf("%d prepares into w5, window %d", into, s.thr.limit("w5"))
		}
		if into > 0 {
			batches = append(batches, into)
		}
		s.workersAct()
		if s.env.Index() == before {
			break
		}
	}
	if got := s.owners()["w5"]; got != 160 {
		t.Fatalf("w5 holds %d, want 160", got)
	}
	return batches
}

// A worker whose handoffs complete promptly doubles its window every round
// (each completed handoff widens it by one), up to the ceiling.
func TestThrottle_WindowDoublesWhileTheWorkerKeepsUp(t *testing.T) {
	s := newSim(t)
	s.cfg.MaxHandoffs = 1000
	s.cfg.MaxHandoffsPerWorker = 4
	s.cfg.MaxHandoffsPerWorkerCeiling = 64
	// 160 partitions move to w5: 4 + 8 + 16 + 32 + 64 + 36.
	if got, want := scaleOut(t, s), []int{4, 8, 16, 32, 64, 36}; !slices.Equal(got, want) {
		t.Fatalf("batches into w5 %v, want %v", got, want)
	}
}

// A fixed window (ceiling = start) never widens.
func TestThrottle_FixedWindow(t *testing.T) {
	s := newSim(t)
	s.cfg.MaxHandoffsPerWorker = 4
	s.cfg.MaxHandoffsPerWorkerCeiling = 4
	if got := slices.Max(scaleOut(t, s)); got != 4 {
		t.Fatalf("at most %d prepares into w5 in a round, want 4 (the fixed window)", got)
	}
}

// pendingView is a view of partitions p0.. with one handoff each, from →
// to, preparing.
func pendingView(from, to fsm.WorkerID, ids ...fsm.HandoffID) view {
	v := view{workers: []fsm.Worker{{ID: from, State: fsm.WorkerActive}, {ID: to, State: fsm.WorkerActive}}}
	for i, id := range ids {
		pid := fsm.PartitionID("p" + string(rune('0'+i)))
		v.partitions = append(v.partitions, fsm.PartitionInfo{Partition: fsm.Partition{ID: pid, Owner: from, Phase: fsm.PhasePreparing},
			PendingHandoff: &fsm.Handoff{ID: id, Partition: pid, From: from, To: to}})
	}
	return v
}

// finished turns every handoff of v into a partition in phase under owner.
func finished(v view, owner fsm.WorkerID, phase fsm.Phase) view {
	out := view{workers: v.workers}
	for _, p := range v.partitions {
		p.PendingHandoff, p.Owner, p.Phase = nil, owner, phase
		out.partitions = append(out.partitions, p)
	}
	return out
}

func TestThrottle_Observe(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxHandoffsPerWorker, cfg.MaxHandoffsPerWorkerCeiling, cfg.SlowHandoff = 4, 16, time.Second
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name     string
		rounds   func(thr *throttle)
		from, to int // windows of a and b afterwards
	}{
		{"prompt handoffs widen both workers by one each", func(thr *throttle) {
			v := pendingView("a", "b", 1, 2, 3)
			thr.observe(v, t0)
			thr.observe(finished(v, "b", fsm.PhaseActive), t0.Add(100*time.Millisecond))
		}, 7, 7},
		{"committed but not yet active: no signal yet", func(thr *throttle) {
			v := pendingView("a", "b", 1, 2, 3)
			thr.observe(v, t0)
			thr.observe(finished(v, "b", fsm.PhaseActivating), t0.Add(100*time.Millisecond))
		}, 4, 4},
		{"activated after the slow bound: narrowed, never below the start", func(thr *throttle) {
			v := pendingView("a", "b", 1)
			thr.observe(v, t0)
			thr.observe(finished(v, "b", fsm.PhaseActivating), t0.Add(100*time.Millisecond))
			thr.observe(finished(v, "b", fsm.PhaseActive), t0.Add(2*time.Second))
		}, 4, 4},
		{"a slow handoff halves a widened window once", func(thr *throttle) {
			thr.window["a"], thr.window["b"] = 16, 12
			v := pendingView("a", "b", 1)
			thr.observe(v, t0)
			thr.observe(v, t0.Add(1500*time.Millisecond))
			thr.observe(v, t0.Add(3*time.Second))
			thr.observe(finished(v, "b", fsm.PhaseActive), t0.Add(4*time.Second))
		}, 8, 6},
		{"widening stops at the ceiling", func(thr *throttle) {
			thr.window["a"] = 15
			v := pendingView("a", "b", 1, 2, 3)
			thr.observe(v, t0)
			thr.observe(finished(v, "b", fsm.PhaseActive), t0)
		}, 16, 7},
		{"force-committed elsewhere: no signal", func(thr *throttle) {
			v := pendingView("a", "b", 1, 2)
			thr.observe(v, t0)
			thr.observe(finished(v, "c", fsm.PhaseActive), t0)
		}, 4, 4},
		{"a gone worker's window is forgotten", func(thr *throttle) {
			v := pendingView("a", "b", 1, 2)
			thr.observe(v, t0)
			thr.observe(finished(v, "b", fsm.PhaseActive), t0)
			v.workers[0].State = fsm.WorkerGone
			thr.observe(view{workers: v.workers}, t0)
		}, 4, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			thr := newThrottle(cfg)
			tt.rounds(thr)
			if a, b := thr.limit("a"), thr.limit("b"); a != tt.from || b != tt.to {
				t.Fatalf("windows a=%d b=%d, want %d and %d", a, b, tt.from, tt.to)
			}
		})
	}
}
