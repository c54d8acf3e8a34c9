package controller

import (
	"testing"
	"time"

	"github.com/batonhq/baton/fsm"
)

func TestInactivity(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	part := func(id fsm.PartitionID, ph fsm.Phase) fsm.PartitionInfo {
		return fsm.PartitionInfo{Partition: fsm.Partition{ID: id, Phase: ph}}
	}
	inHandoff := func(id fsm.PartitionID, prepared time.Time) fsm.PartitionInfo {
		p := part(id, fsm.PhasePreparing)
		p.PendingHandoff = &fsm.Handoff{Partition: id, PreparedTime: prepared.UnixNano()}
		return p
	}
	steps := []struct {
		name  string
		at    time.Duration // after t0
		parts []fsm.PartitionInfo
		want  time.Duration
	}{
		{"all active", 0, []fsm.PartitionInfo{part("p1", fsm.PhaseActive), part("p2", fsm.PhaseActive)}, 0},
		{"p1 unassigned: counts from now", time.Second, []fsm.PartitionInfo{part("p1", fsm.PhaseUnassigned), part("p2", fsm.PhaseActive)}, 0},
		{"p1 still out", 5 * time.Second, []fsm.PartitionInfo{part("p1", fsm.PhaseActivating), part("p2", fsm.PhaseActive)}, 4 * time.Second},
		{"p2's handoff started before this leader saw it", 6 * time.Second,
			[]fsm.PartitionInfo{part("p1", fsm.PhaseActivating), inHandoff("p2", t0.Add(-10*time.Second))}, 16 * time.Second},
		{"p2 active again: p1 is the oldest", 7 * time.Second, []fsm.PartitionInfo{part("p1", fsm.PhaseOrphaned), part("p2", fsm.PhaseActive)}, 6 * time.Second},
		{"p1 active: nothing out", 8 * time.Second, []fsm.PartitionInfo{part("p1", fsm.PhaseActive), part("p2", fsm.PhaseActive)}, 0},
		{"p1 out again counts afresh", 9 * time.Second, []fsm.PartitionInfo{part("p1", fsm.PhaseDrained), part("p2", fsm.PhaseActive)}, 0},
		{"p1 removed, p3 declared", 12 * time.Second, []fsm.PartitionInfo{part("p2", fsm.PhaseActive), part("p3", fsm.PhaseUnassigned)}, 0},
		{"p3 still unassigned", 15 * time.Second, []fsm.PartitionInfo{part("p2", fsm.PhaseActive), part("p3", fsm.PhaseUnassigned)}, 3 * time.Second},
	}
	var in inactivity
	for _, s := range steps {
		if got := in.observe(s.parts, t0.Add(s.at)); got != s.want {
			t.Fatalf("%s: oldest inactive %s, want %s", s.name, got, s.want)
		}
	}
	if len(in.since) != 1 {
		t.Fatalf("remembers %d partitions, want only p3", len(in.since))
	}
}
