package placement_test

import (
	"slices"
	"strings"

	"pgregory.net/rapid"

	"github.com/batonhq/baton/controller/placement"
)

// failer is what checkPlan needs from *testing.T and *rapid.T.
type failer interface {
	Helper()
	Fatalf(format string, args ...any)
}

// genCfg bounds a random input.
type genCfg struct {
	maxWorkers, maxParts int
	maxWorkerWeight      uint32
	maxPartWeight        uint32
	fixed                bool // allow pinned and in-flight partitions
}

// genInput draws a random input: workers of random weight and eligibility;
// partitions owned by nobody, an eligible or ineligible worker, or an
// unknown one; optionally pins and handoffs, some to ineligible workers.
func genInput(t *rapid.T, c genCfg) placement.Input {
	nw := rapid.IntRange(0, c.maxWorkers).Draw(t, "workers")
	in := placement.Input{Config: placement.Config{
		Slack: rapid.SampledFrom([]float64{0, 0.5, 1, 1, 1, 2, 3.7}).Draw(t, "slack"),
	}}
	names := []placement.WorkerID{"", "gone"}
	for i := range nw {
		in.Workers = append(in.Workers, placement.Worker{
			ID:       wid(i),
			Weight:   rapid.Uint32Range(1, c.maxWorkerWeight).Draw(t, "wweight"),
			Eligible: rapid.IntRange(0, 4).Draw(t, "eligible") != 0,
		})
		names = append(names, wid(i))
	}
	pick := rapid.SampledFrom(names)
	// Fixed targets are drawn from a skewed set (w00 half the time) and at
	// a per-input rate, so that some workers are saturated by pins and some
	// lower bounds are unreachable.
	pickFixed := rapid.OneOf(rapid.Just(wid(0)), pick)
	var pinRate, flightRate int
	if c.fixed {
		pinRate = rapid.IntRange(0, 8).Draw(t, "pin rate /8")
		flightRate = rapid.IntRange(0, 4).Draw(t, "in-flight rate /8")
	}
	np := rapid.IntRange(0, c.maxParts).Draw(t, "partitions")
	for i := range np {
		p := placement.Partition{ID: pid(i), Weight: 1, Owner: pick.Draw(t, "owner")}
		if c.maxPartWeight > 1 {
			p.Weight = rapid.Uint32Range(1, c.maxPartWeight).Draw(t, "pweight")
		}
		if rapid.IntRange(0, 7).Draw(t, "pin?") < pinRate {
			p.Pinned = pickFixed.Draw(t, "pin")
		}
		if rapid.IntRange(0, 7).Draw(t, "inflight?") < flightRate {
			p.InFlightTo = pickFixed.Draw(t, "inflight")
		}
		in.Partitions = append(in.Partitions, p)
	}
	return in
}

// lowWarned reports whether the plan warned that w is below its lower bound.
func lowWarned(plan placement.Plan, w placement.WorkerID) bool {
	for _, s := range plan.Warnings {
		if strings.HasPrefix(s, string(w)+" load ") && strings.Contains(s, "< lower bound") {
			return true
		}
	}
	return false
}

// checkPlan asserts the properties every plan must have, whatever the
// input; it returns whether every lower bound was met.
func checkPlan(t failer, in placement.Input, plan placement.Plan, m *refModel) (lowOK bool) {
	t.Helper()
	if len(plan.Targets) != len(in.Partitions) ||
		!slices.IsSortedFunc(plan.Targets, func(a, b placement.Target) int { return strings.Compare(string(a.Partition), string(b.Partition)) }) {
		t.Fatalf("targets: want %d sorted by ID, got %v", len(in.Partitions), plan.Targets)
	}
	moved := map[placement.PartitionID]placement.Move{}
	for _, mv := range plan.Moves {
		moved[mv.Partition] = mv
	}
	if len(moved) != len(plan.Moves) {
		t.Fatalf("a partition moves twice: %v", plan.Moves)
	}
	for _, p := range in.Partitions {
		to, _ := plan.TargetOf(p.ID)
		mv, isMove := moved[p.ID]
		if len(m.eligible) == 0 {
			// Property 5, degenerate case: nothing moves.
			if to != p.Owner || isMove {
				t.Fatalf("%s: no eligible workers but target %q (owner %q)", p.ID, to, p.Owner)
			}
			continue
		}
		if _, ok := m.eligible[to]; !ok { // property 5
			t.Fatalf("%s targets ineligible worker %q", p.ID, to)
		}
		if m.inFlight[p.ID] { // property 6
			if to != p.InFlightTo || isMove {
				t.Fatalf("%s in flight to %s: target %s, move %v", p.ID, p.InFlightTo, to, isMove)
			}
			continue
		}
		if at, ok := m.fixedAt[p.ID]; ok && to != at {
			t.Fatalf("%s pinned to eligible %s but targets %s", p.ID, at, to)
		}
		if isMove != (to != p.Owner) || (isMove && (mv.From != p.Owner || mv.To != to)) {
			t.Fatalf("%s owner %q target %q: move %+v (present %v)", p.ID, p.Owner, to, mv, isMove)
		}
		if !isMove {
			continue
		}
		// Property 1: an eligible owner loses a partition only for a reason.
		ok := true
		switch mv.Reason {
		case placement.ReasonUnassigned:
			ok = p.Owner == ""
		case placement.ReasonOwnerIneligible:
			_, elig := m.eligible[p.Owner]
			ok = p.Owner != "" && !elig
		case placement.ReasonPinned:
			ok = m.fixedAt[p.ID] == to
		case placement.ReasonRebalanceOverload:
			ok = m.initial[p.Owner] > m.bounds[p.Owner].hi
		case placement.ReasonRebalanceUnderload:
			ok = m.initial[to] < m.bounds[to].lo
		default:
			ok = false
		}
		if !ok || mv.Detail == "" {
			t.Fatalf("%s move %+v not justified (initial from %d, to %d; bounds %+v %+v)",
				p.ID, mv, m.initial[p.Owner], m.initial[to], m.bounds[p.Owner], m.bounds[to])
		}
	}
	if len(m.eligible) == 0 {
		if len(plan.Warnings) == 0 || len(plan.Moves) != 0 {
			t.Fatalf("no eligible workers: want a warning and no moves, got %v / %v", plan.Warnings, plan.Moves)
		}
		return true
	}

	// Property 2 and the summary's honesty.
	loads := loadsOf(in, plan)
	lowOK = true
	shed := map[placement.WorkerID]int64{}
	for _, mv := range plan.Moves {
		if mv.Reason == placement.ReasonRebalanceOverload {
			shed[mv.From]++
		}
	}
	for _, wl := range plan.Workers {
		b, elig := m.bounds[wl.Worker]
		if !elig {
			if wl.Eligible || wl.Load != 0 {
				t.Fatalf("ineligible %s: %+v", wl.Worker, wl)
			}
			continue
		}
		if int64(wl.Load) != loads[wl.Worker] || int64(wl.Fixed) != m.fixed[wl.Worker] {
			t.Fatalf("%s summary %+v, recomputed load %d fixed %d", wl.Worker, wl, loads[wl.Worker], m.fixed[wl.Worker])
		}
		if int64(wl.Lower) != b.lo || int64(wl.Upper) != b.hi || wl.Saturated != b.saturated {
			t.Fatalf("%s bounds %d..%d sat %v, reference %+v", wl.Worker, wl.Lower, wl.Upper, wl.Saturated, b)
		}
		if loads[wl.Worker] > b.hi {
			t.Fatalf("%s load %d > upper bound %d\n%s", wl.Worker, loads[wl.Worker], b.hi, plan.Render())
		}
		if loads[wl.Worker] < b.lo {
			lowOK = false
			if !lowWarned(plan, wl.Worker) {
				t.Fatalf("%s load %d < lower bound %d without a warning\n%s", wl.Worker, loads[wl.Worker], b.lo, plan.Render())
			}
		}
		// Property 1, quantitative: for unit partitions an overloaded worker
		// sheds exactly its excess, never more.
		if m.unit && shed[wl.Worker] > max(0, m.initial[wl.Worker]-b.hi) {
			t.Fatalf("%s shed %d, excess only %d", wl.Worker, shed[wl.Worker], m.initial[wl.Worker]-b.hi)
		}
	}
	if !m.hasFixed && !lowOK {
		t.Fatalf("lower bound missed without pinned or in-flight load\n%s", plan.Render())
	}
	return lowOK
}
