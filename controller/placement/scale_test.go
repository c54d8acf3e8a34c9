package placement_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/batonhq/baton/controller/placement"
)

func join(n int, weight uint32) func([]W) []W {
	return func(ws []W) []W {
		for i := range n {
			ws = append(ws, W{ID: ID(fmt.Sprintf("new%02d", i)), Weight: weight, Eligible: true})
		}
		return ws
	}
}

func remove(n int) func([]W) []W { return func(ws []W) []W { return ws[:len(ws)-n] } }

func cordon(n int) func([]W) []W {
	return func(ws []W) []W {
		for i := len(ws) - n; i < len(ws); i++ {
			ws[i].Eligible = false
		}
		return ws
	}
}

// TestScaleOutIn is property 3 on realistic sizes: starting from a settled
// cluster, a membership change moves exactly the minimum the bound needs,
// the moves go only to joiners (scale out) or only come from leavers
// (scale in), and the work is spread over the other workers evenly.
func TestScaleOutIn(t *testing.T) {
	cases := []struct {
		name      string
		workers   int
		parts     int
		change    func([]W) []W
		wantMoves int  // 0: only check against the reference minimum
		even      bool // existing workers start equal, so they give/receive within 1
	}{
		{"10k on 10, one joins", 10, 10000, join(1, 1), 909, true},
		{"10k on 10, five join", 10, 10000, join(5, 1), 3330, true},
		{"10k on 10, ten join", 10, 10000, join(10, 1), 5000, true},
		{"10k on 10, weight-2 worker joins", 10, 10000, join(1, 2), 1665, true},
		{"10k on 10, one leaves", 10, 10000, remove(1), 1000, true},
		{"10k on 10, two leave", 10, 10000, remove(2), 2000, true},
		{"10k on 10, one cordoned", 10, 10000, cordon(1), 1000, true},
		{"10k on 10, seven leave", 10, 10000, remove(7), 7000, true},
		{"1000 on 7, one joins", 7, 1000, join(1, 1), 0, true},
		// 1000/7 leaves survivors at 142 or 143, so what each needs differs.
		{"1000 on 7, one leaves", 7, 1000, remove(1), 0, false},
		{"997 on 13, three weight-3 workers join", 13, 997, join(3, 3), 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := settled(t, workers(tc.workers), tc.parts)
			oldIDs := map[ID]bool{}
			for _, w := range before.Workers {
				oldIDs[w.ID] = true
			}
			in := before
			in.Workers = tc.change(append([]W(nil), before.Workers...))
			m := newRefModel(in)
			plan := mustPlan(t, in)
			checkPlan(t, in, plan, m)

			minimum := m.minMoves(in)
			if tc.wantMoves != 0 && minimum != tc.wantMoves {
				t.Fatalf("reference minimum %d, table says %d", minimum, tc.wantMoves)
			}
			if len(plan.Moves) != minimum {
				t.Fatalf("moves %d, minimum %d (allowed up to %d)", len(plan.Moves), minimum, minimum*105/100)
			}
			joined, left := map[ID]bool{}, map[ID]bool{}
			for _, w := range in.Workers {
				if !oldIDs[w.ID] {
					joined[w.ID] = true
				}
			}
			for _, w := range before.Workers {
				if _, ok := m.eligible[w.ID]; !ok {
					left[w.ID] = true
				}
			}
			given, got := map[ID]int{}, map[ID]int{}
			for _, mv := range plan.Moves {
				if len(joined) > 0 && !joined[mv.To] {
					t.Fatalf("scale out moved %+v to an existing worker", mv)
				}
				if len(left) > 0 && !left[mv.From] {
					t.Fatalf("scale in moved %+v from a staying worker", mv)
				}
				given[mv.From]++
				got[mv.To]++
			}
			if !tc.even {
				return
			}
			spread := got
			if len(joined) > 0 {
				spread = given
			}
			lo, hi := len(plan.Moves), 0
			for id := range m.eligible {
				if !joined[id] {
					lo, hi = min(lo, spread[id]), max(hi, spread[id])
				}
			}
			if hi-lo > 1 {
				t.Fatalf("uneven: existing workers gave/received between %d and %d partitions", lo, hi)
			}
		})
	}
}

// TestRandomIDs repeats the headline join with random partition IDs, so
// the result does not hinge on sequential names hashing well.
func TestRandomIDs(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed, 1))
	ps := make([]P, 10000)
	for i := range ps {
		ps[i] = P{ID: placement.PartitionID(fmt.Sprintf("%016x", rng.Uint64())), Weight: 1}
	}
	in := placement.Input{Workers: workers(10), Partitions: ps, Config: placement.DefaultConfig()}
	in = apply(in, mustPlan(t, in))
	in.Workers = append(in.Workers, W{ID: "new", Weight: 1, Eligible: true})
	plan := mustPlan(t, in)
	checkPlan(t, in, plan, newRefModel(in))
	if len(plan.Moves) != 909 {
		t.Fatalf("moves %d, want 909", len(plan.Moves))
	}
}
