package placement_test

import (
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/batonhq/baton/controller/placement"
)

// bruteForce enumerates every assignment of the movable partitions to the
// eligible workers (in the spirit of etcd raft's quorum/quick_test.go) and
// returns the fewest moves of any assignment that meets every bound, or
// feasible=false if none does.
func bruteForce(in placement.Input, m *refModel) (minMoves int, feasible bool) {
	var ids []placement.WorkerID
	for id := range m.eligible {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	load := make([]int64, len(ids))
	for i, id := range ids {
		load[i] = m.fixed[id]
	}
	forced := 0
	var movable []placement.Partition
	for _, p := range in.Partitions {
		if at, ok := m.fixedAt[p.ID]; ok {
			if !m.inFlight[p.ID] && at != p.Owner {
				forced++
			}
			continue
		}
		movable = append(movable, p)
	}
	best := -1
	var rec func(k, moves int)
	rec = func(k, moves int) {
		if best >= 0 && moves >= best {
			return // cannot improve
		}
		if k == len(movable) {
			for i, id := range ids {
				if load[i] < m.bounds[id].lo {
					return
				}
			}
			best = moves
			return
		}
		p := movable[k]
		for i, id := range ids {
			if load[i]+int64(p.Weight) > m.bounds[id].hi {
				continue
			}
			load[i] += int64(p.Weight)
			cost := 0
			if id != p.Owner {
				cost = 1
			}
			rec(k+1, moves+cost)
			load[i] -= int64(p.Weight)
		}
	}
	rec(0, 0)
	if best < 0 {
		return 0, false
	}
	return forced + best, true
}

// TestBruteForceReference checks the plan against exhaustive search on
// tiny clusters: for unit partitions the plan meets the bound exactly when
// some assignment does, with exactly the minimum number of moves (and the
// closed-form minimum of DESIGN.md agrees). For weighted partitions,
// minimum movement is bin packing and not promised; checkPlan still
// demands the upper bound always and the lower bound whenever no pinned or
// in-flight load is involved, and the excess over the optimum is logged.
func TestBruteForceReference(t *testing.T) {
	cases := []struct {
		name string
		cfg  genCfg
	}{
		{"unit_equal_workers", genCfg{maxWorkers: 4, maxParts: 8, maxWorkerWeight: 1, maxPartWeight: 1}},
		{"unit_weighted_workers", genCfg{maxWorkers: 4, maxParts: 8, maxWorkerWeight: 3, maxPartWeight: 1}},
		{"unit_pinned_inflight", genCfg{maxWorkers: 4, maxParts: 8, maxWorkerWeight: 3, maxPartWeight: 1, fixed: true}},
		{"weighted_partitions", genCfg{maxWorkers: 4, maxParts: 7, maxWorkerWeight: 3, maxPartWeight: 3}},
		{"weighted_pinned_inflight", genCfg{maxWorkers: 4, maxParts: 7, maxWorkerWeight: 3, maxPartWeight: 3, fixed: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var st bruteStats
			rapid.Check(t, func(rt *rapid.T) {
				// Tiny inputs are cheap; several per check widen coverage.
				for range 10 {
					st.check(rt, genInput(rt, tc.cfg))
				}
			})
			t.Logf("%d plans: %d bound unreachable (pins), %d optimal, %d extra moves in total, %d reachable lower bounds missed",
				st.plans, st.unreachable, st.optimal, st.extra, st.missed)
		})
	}
}

type bruteStats struct{ plans, unreachable, optimal, extra, missed int }

func (st *bruteStats) check(t *rapid.T, in placement.Input) {
	m := newRefModel(in)
	if len(m.eligible) == 0 {
		return
	}
	plan := mustPlan(t, in)
	lowOK := checkPlan(t, in, plan, m)
	best, feasible := bruteForce(in, m)
	st.plans++
	switch {
	case m.unit && feasible != lowOK:
		t.Fatalf("bound reachable=%v but plan met it=%v\n%s", feasible, lowOK, plan.Render())
	case m.unit && feasible && (len(plan.Moves) != best || best != m.minMoves(in)):
		t.Fatalf("moves %d, brute-force minimum %d, closed form %d\n%s", len(plan.Moves), best, m.minMoves(in), plan.Render())
	case !feasible && lowOK:
		t.Fatalf("plan met a bound brute force says is unreachable\n%s", plan.Render())
	case !feasible:
		st.unreachable++
	case !lowOK:
		st.missed++ // weighted with fixed load only; checkPlan demanded a warning
	case len(plan.Moves) == best:
		st.optimal++
	default:
		st.extra += len(plan.Moves) - best
	}
}
