package placement_test

// An independent model of the bound and of the minimum number of moves,
// written from DESIGN.md with exact rationals rather than from the
// implementation's integer tricks, so that the two can be checked against
// each other.

import (
	"fmt"
	"math"
	"math/big"

	"github.com/batonhq/baton/controller/placement"
)

type refBound struct {
	lo, hi    int64
	saturated bool
}

// refModel is the reference view of an input.
type refModel struct {
	eligible map[placement.WorkerID]uint32
	bounds   map[placement.WorkerID]refBound
	fixedAt  map[placement.PartitionID]placement.WorkerID // pinned or in flight
	inFlight map[placement.PartitionID]bool
	initial  map[placement.WorkerID]int64 // load before the plan: fixed + movable on eligible owner
	fixed    map[placement.WorkerID]int64
	unit     bool // every movable partition has weight 1
	hasFixed bool
}

func newRefModel(in placement.Input) *refModel {
	m := &refModel{
		eligible: map[placement.WorkerID]uint32{},
		bounds:   map[placement.WorkerID]refBound{},
		fixedAt:  map[placement.PartitionID]placement.WorkerID{},
		inFlight: map[placement.PartitionID]bool{},
		initial:  map[placement.WorkerID]int64{},
		fixed:    map[placement.WorkerID]int64{},
		unit:     true,
	}
	for _, w := range in.Workers {
		if w.Eligible {
			m.eligible[w.ID] = w.Weight
		}
	}
	if len(m.eligible) == 0 {
		return m
	}
	var total, pmax int64 = 0, 1
	for _, p := range in.Partitions {
		total += int64(p.Weight)
		_, inflight := m.eligible[p.InFlightTo]
		_, pinned := m.eligible[p.Pinned]
		switch {
		case inflight:
			m.fixedAt[p.ID], m.inFlight[p.ID] = p.InFlightTo, true
		case pinned:
			m.fixedAt[p.ID] = p.Pinned
		}
		if at, ok := m.fixedAt[p.ID]; ok {
			m.fixed[at] += int64(p.Weight)
			m.initial[at] += int64(p.Weight)
			m.hasFixed = true
			continue
		}
		pmax = max(pmax, int64(p.Weight))
		m.unit = m.unit && p.Weight == 1
		if _, ok := m.eligible[p.Owner]; ok {
			m.initial[p.Owner] += int64(p.Weight)
		}
	}
	s := new(big.Rat).SetFrac64(int64(math.Round(in.Config.Slack*1000)), 1000)
	sat := map[placement.WorkerID]bool{}
	for {
		ws, vs := big.NewRat(total, 1), new(big.Rat)
		for id, v := range m.eligible {
			if sat[id] {
				ws.Sub(ws, big.NewRat(m.fixed[id], 1))
			} else {
				vs.Add(vs, big.NewRat(int64(v), 1))
			}
		}
		changed := false
		for id, v := range m.eligible {
			if sat[id] {
				continue
			}
			fair := new(big.Rat).Mul(ws, big.NewRat(int64(v), 1))
			fair.Quo(fair, vs)
			k := max(0, ratCeil(new(big.Rat).Mul(s, big.NewRat(int64(v), 1)))-1) + pmax - 1
			b := refBound{lo: max(0, ratFloor(fair)-k), hi: ratCeil(fair) + k}
			m.bounds[id] = b
			if m.fixed[id] > b.hi {
				sat[id], changed = true, true
			}
		}
		if !changed {
			break
		}
	}
	for id := range sat {
		m.bounds[id] = refBound{lo: m.fixed[id], hi: m.fixed[id], saturated: true}
	}
	return m
}

func ratFloor(r *big.Rat) int64 {
	q := new(big.Int).Div(r.Num(), r.Denom()) // Euclidean; r >= 0 here
	return q.Int64()
}

func ratCeil(r *big.Rat) int64 {
	f := ratFloor(r)
	if r.IsInt() {
		return f
	}
	return f + 1
}

// minMoves is the minimum number of moves for unit movable partitions,
// when the bound is reachable at all: every orphan and every forced pin
// moves, over-loaded workers must shed their excess E, and under-loaded
// workers need D units of incoming partitions, of which orphans can supply
// O; so moves >= pins + O + max(E, D-O), and the greedy achieves it.
func (m *refModel) minMoves(in placement.Input) int {
	pins, orphans := 0, 0
	for _, p := range in.Partitions {
		if at, ok := m.fixedAt[p.ID]; ok {
			if !m.inFlight[p.ID] && at != p.Owner {
				pins++
			}
			continue
		}
		if _, ok := m.eligible[p.Owner]; !ok {
			orphans++
		}
	}
	var excess, deficit int64
	for id, b := range m.bounds {
		excess += max(0, m.initial[id]-b.hi)
		deficit += max(0, b.lo-m.initial[id])
	}
	return pins + orphans + int(max(excess, deficit-int64(orphans)))
}

// apply returns the input as it would be after every move and every
// in-flight handoff completed.
func apply(in placement.Input, plan placement.Plan) placement.Input {
	out := in
	out.Partitions = make([]placement.Partition, len(in.Partitions))
	for i, p := range in.Partitions {
		to, _ := plan.TargetOf(p.ID)
		p.Owner, p.InFlightTo = to, ""
		out.Partitions[i] = p
	}
	return out
}

// mustPlan runs the default strategy and fails the test on error.
func mustPlan(t failer, in placement.Input) placement.Plan {
	t.Helper()
	plan, err := placement.BoundedRendezvous{}.Plan(in)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return plan
}

// loadsOf recomputes per-worker load from the targets.
func loadsOf(in placement.Input, plan placement.Plan) map[placement.WorkerID]int64 {
	weight := map[placement.PartitionID]int64{}
	for _, p := range in.Partitions {
		weight[p.ID] = int64(p.Weight)
	}
	loads := map[placement.WorkerID]int64{}
	for _, tg := range plan.Targets {
		loads[tg.Worker] += weight[tg.Partition]
	}
	return loads
}

// workers makes n eligible unit-weight workers w00..w(n-1).
func workers(n int) []placement.Worker {
	ws := make([]placement.Worker, n)
	for i := range ws {
		ws[i] = placement.Worker{ID: wid(i), Weight: 1, Eligible: true}
	}
	return ws
}

func wid(i int) placement.WorkerID    { return placement.WorkerID(fmt.Sprintf("w%02d", i)) }
func pid(i int) placement.PartitionID { return placement.PartitionID(fmt.Sprintf("p%06d", i)) }

// unassigned makes n unit partitions with no owner.
func unassigned(n int) []placement.Partition {
	ps := make([]placement.Partition, n)
	for i := range ps {
		ps[i] = placement.Partition{ID: pid(i), Weight: 1}
	}
	return ps
}

// settled places n unit partitions on ws from scratch and applies the plan:
// the steady state a cluster reaches before a scale event.
func settled(t failer, ws []placement.Worker, n int) placement.Input {
	t.Helper()
	in := placement.Input{Workers: ws, Partitions: unassigned(n), Config: placement.DefaultConfig()}
	return apply(in, mustPlan(t, in))
}
