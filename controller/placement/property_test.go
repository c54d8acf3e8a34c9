package placement_test

import (
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"github.com/batonhq/baton/controller/placement"
)

// Property tests of the six properties in DESIGN.md over random inputs of
// moderate size. checkPlan covers 1 (justified moves), 2 (bounds), 5
// (eligible targets) and 6 (in-flight) on every plan; the tests below add
// what needs more than one plan.

var propCfgs = []struct {
	name string
	cfg  genCfg
}{
	{"unit", genCfg{maxWorkers: 12, maxParts: 150, maxWorkerWeight: 1, maxPartWeight: 1}},
	{"weighted_workers", genCfg{maxWorkers: 12, maxParts: 150, maxWorkerWeight: 5, maxPartWeight: 1}},
	{"weighted_partitions", genCfg{maxWorkers: 10, maxParts: 120, maxWorkerWeight: 4, maxPartWeight: 6}},
	{"pinned_inflight_unit", genCfg{maxWorkers: 10, maxParts: 120, maxWorkerWeight: 3, maxPartWeight: 1, fixed: true}},
	{"pinned_inflight_weighted", genCfg{maxWorkers: 10, maxParts: 120, maxWorkerWeight: 3, maxPartWeight: 4, fixed: true}},
}

// Properties 1, 2, 3, 5 and 6 on a single plan, plus exact minimality
// for unit partitions whenever the bound is reachable.
func TestPropertyPlan(t *testing.T) {
	for _, pc := range propCfgs {
		t.Run(pc.name, rapid.MakeCheck(func(t *rapid.T) {
			in := genInput(t, pc.cfg)
			m := newRefModel(in)
			plan := mustPlan(t, in)
			lowOK := checkPlan(t, in, plan, m)
			if len(m.eligible) > 0 && m.unit && lowOK {
				if want := m.minMoves(in); len(plan.Moves) != want {
					t.Fatalf("moves %d, minimum %d\n%s", len(plan.Moves), want, plan.Render())
				}
			}
			if len(m.eligible) > 0 && in.Config.Slack == 1 && m.unit && !m.hasFixed && plan.Imbalance >= 1 {
				t.Fatalf("imbalance %v >= 1 with slack 1\n%s", plan.Imbalance, plan.Render())
			}
		}))
	}
}

// Property 1: re-planning the applied plan moves nothing. In-flight
// partitions become movable once their handoff completes and may then be
// rebalanced once, so with them the fixed point is reached one round later.
func TestPropertyIdempotent(t *testing.T) {
	for _, pc := range propCfgs {
		t.Run(pc.name, rapid.MakeCheck(func(t *rapid.T) {
			in := genInput(t, pc.cfg)
			p1 := mustPlan(t, in)
			next := apply(in, p1)
			p2 := mustPlan(t, next)
			checkPlan(t, next, p2, newRefModel(next))
			hadInFlight := len(newRefModel(in).inFlight) > 0
			if !hadInFlight && len(p2.Moves) != 0 {
				t.Fatalf("second round moved %d\nfirst:\n%s\nsecond:\n%s", len(p2.Moves), p1.Render(), p2.Render())
			}
			if p3 := mustPlan(t, apply(next, p2)); len(p3.Moves) != 0 {
				t.Fatalf("third round moved %d\n%s", len(p3.Moves), p3.Render())
			}
		}))
	}
}

// Property 4: the plan does not depend on input order and is reproducible.
func TestPropertyDeterministic(t *testing.T) {
	for _, pc := range propCfgs {
		t.Run(pc.name, rapid.MakeCheck(func(t *rapid.T) {
			in := genInput(t, pc.cfg)
			p1 := mustPlan(t, in)
			shuffled := in
			shuffled.Workers = rapid.Permutation(in.Workers).Draw(t, "workers order")
			shuffled.Partitions = rapid.Permutation(in.Partitions).Draw(t, "partitions order")
			p2 := mustPlan(t, shuffled)
			if !reflect.DeepEqual(p1, p2) || p1.Render() != p2.Render() {
				t.Fatalf("order changed the plan:\n%s\nvs\n%s", p1.Render(), p2.Render())
			}
		}))
	}
}

// Property 3 under random churn: removing or adding one worker moves at
// most the minimum. Starting from a settled state isolates the effect of
// the membership change.
func TestPropertyMembershipChange(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t, genCfg{maxWorkers: 12, maxParts: 200, maxWorkerWeight: 4, maxPartWeight: 1})
		if len(in.Workers) == 0 {
			return
		}
		in = apply(in, mustPlan(t, in))
		i := rapid.IntRange(0, len(in.Workers)-1).Draw(t, "worker")
		in.Workers = append([]placement.Worker(nil), in.Workers...)
		in.Workers[i].Eligible = !in.Workers[i].Eligible
		m := newRefModel(in)
		plan := mustPlan(t, in)
		checkPlan(t, in, plan, m)
		if len(m.eligible) > 0 && len(plan.Moves) != m.minMoves(in) {
			t.Fatalf("toggling %s: moves %d, minimum %d", in.Workers[i].ID, len(plan.Moves), m.minMoves(in))
		}
		if !in.Workers[i].Eligible {
			for _, mv := range plan.Moves {
				if mv.From != in.Workers[i].ID && mv.Reason != placement.ReasonRebalanceUnderload {
					t.Fatalf("%s left, but %+v moved", in.Workers[i].ID, mv)
				}
			}
		}
	})
}
