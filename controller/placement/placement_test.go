package placement_test

import (
	"strings"
	"testing"

	"github.com/batonhq/baton/controller/placement"
)

type (
	W  = placement.Worker
	P  = placement.Partition
	ID = placement.WorkerID
)

func parts(n int, owner ID) []P {
	ps := unassigned(n)
	for i := range ps {
		ps[i].Owner = owner
	}
	return ps
}

func concat(lists ...[]P) []P {
	var out []P
	for _, l := range lists {
		for _, p := range l {
			p.ID = pid(len(out))
			out = append(out, p)
		}
	}
	return out
}

// TestPlanScenarios pins down each move reason, pins, handoffs and the
// degenerate cases on hand-sized inputs.
func TestPlanScenarios(t *testing.T) {
	w := func(id ID, weight uint32, eligible bool) W { return W{ID: id, Weight: weight, Eligible: eligible} }
	cases := []struct {
		name        string
		workers     []W
		parts       []P
		slack       float64
		wantReasons map[placement.Reason]int
		wantLoads   map[ID]uint64
		wantDetail  string // substring of some move's Detail
		wantWarn    string // substring of some warning
		wantTarget  map[placement.PartitionID]ID
	}{
		{
			name:        "claims spread evenly over an empty cluster",
			workers:     []W{w("a", 1, true), w("b", 1, true), w("c", 1, true)},
			parts:       unassigned(10),
			wantReasons: map[placement.Reason]int{placement.ReasonUnassigned: 10},
			wantDetail:  "no owner; ",
		},
		{
			name:      "balanced cluster is left alone",
			workers:   []W{w("a", 1, true), w("b", 1, true)},
			parts:     concat(parts(5, "a"), parts(5, "b")),
			wantLoads: map[ID]uint64{"a": 5, "b": 5},
		},
		{
			name:      "imbalance within slack 1 is left alone",
			workers:   []W{w("a", 2, true), w("b", 1, true)},
			parts:     concat(parts(4, "a"), parts(5, "b")), // fair 6 and 3, bounds 5..7 and 3..3
			slack:     3,                                    // bounds widen to 2..10 and 1..5
			wantLoads: map[ID]uint64{"a": 4, "b": 5},
		},
		{
			name:        "cordoned worker is emptied, and only its partitions move",
			workers:     []W{w("a", 1, true), w("b", 1, true), w("c", 1, false)},
			parts:       concat(parts(3, "a"), parts(3, "b"), parts(3, "c")),
			wantReasons: map[placement.Reason]int{placement.ReasonOwnerIneligible: 3},
			wantLoads:   map[ID]uint64{"a": 4, "b": 5, "c": 0},
			wantDetail:  "owner c not eligible",
		},
		{
			name:        "owner unknown to the membership counts as ineligible",
			workers:     []W{w("a", 1, true)},
			parts:       parts(2, "ghost"),
			wantReasons: map[placement.Reason]int{placement.ReasonOwnerIneligible: 2},
			wantLoads:   map[ID]uint64{"a": 2},
		},
		{
			name:        "overloaded worker sheds exactly its excess",
			workers:     []W{w("a", 1, true), w("b", 1, true)},
			parts:       concat(parts(7, "a"), parts(1, "b")),
			wantReasons: map[placement.Reason]int{placement.ReasonRebalanceOverload: 3},
			wantLoads:   map[ID]uint64{"a": 4, "b": 4},
			wantDetail:  "a load 7 > upper bound 4",
		},
		{
			name:        "joiner below its lower bound pulls",
			workers:     []W{w("a", 1, true), w("b", 1, true), w("c", 1, true), w("n", 1, true)},
			parts:       concat(parts(3, "a"), parts(3, "b"), parts(3, "c")), // fair 2.25: bounds 2..3
			wantReasons: map[placement.Reason]int{placement.ReasonRebalanceUnderload: 2},
			wantDetail:  "n load 0 < lower bound 2",
		},
		{
			name:        "pinned partition goes to its pin even when that overloads it",
			workers:     []W{w("a", 1, true), w("b", 1, true)},
			parts:       []P{{ID: "p1", Weight: 1, Owner: "a", Pinned: "b"}, {ID: "p2", Weight: 1, Owner: "a", Pinned: "b"}, {ID: "p3", Weight: 1, Owner: "b", Pinned: "b"}},
			wantReasons: map[placement.Reason]int{placement.ReasonPinned: 2},
			wantLoads:   map[ID]uint64{"a": 0, "b": 3},
			wantDetail:  "pinned to b",
			wantWarn:    "b saturated",
		},
		{
			name:       "pin to a cordoned worker is ignored",
			workers:    []W{w("a", 1, true), w("b", 1, false)},
			parts:      []P{{ID: "p1", Weight: 1, Owner: "a", Pinned: "b"}},
			wantLoads:  map[ID]uint64{"a": 1, "b": 0},
			wantTarget: map[placement.PartitionID]ID{"p1": "a"},
		},
		{
			name:    "pins that leave nothing movable make a lower bound unreachable",
			workers: []W{w("a", 1, true), w("b", 1, true), w("c", 1, true)},
			slack:   0.001, // bounds 1..2 for every worker
			parts: []P{
				{ID: "p1", Weight: 1, Owner: "a", Pinned: "a"}, {ID: "p2", Weight: 1, Owner: "a", Pinned: "a"},
				{ID: "p3", Weight: 1, Owner: "b", Pinned: "b"}, {ID: "p4", Weight: 1, Owner: "b", Pinned: "b"},
			},
			wantLoads: map[ID]uint64{"a": 2, "b": 2, "c": 0},
			wantWarn:  "c load 0 < lower bound 1",
		},
		{
			name:       "in-flight partition counts on its target and is not moved",
			workers:    []W{w("a", 1, true), w("b", 1, true)},
			parts:      concat(parts(2, "a"), []P{{Weight: 1, Owner: "a", InFlightTo: "b"}}, parts(1, "b")),
			wantLoads:  map[ID]uint64{"a": 2, "b": 2},
			wantTarget: map[placement.PartitionID]ID{pid(2): "b"},
		},
		{
			name:        "in-flight partition wins over its pin this round",
			workers:     []W{w("a", 1, true), w("b", 1, true)},
			parts:       []P{{ID: "p1", Weight: 1, Owner: "a", InFlightTo: "a", Pinned: "b"}},
			wantTarget:  map[placement.PartitionID]ID{"p1": "a"},
			wantReasons: map[placement.Reason]int{},
		},
		{
			name:        "handoff to an ineligible worker is replanned from the owner",
			workers:     []W{w("a", 1, true), w("b", 1, false)},
			parts:       []P{{ID: "p1", Weight: 1, Owner: "a", InFlightTo: "b"}},
			wantTarget:  map[placement.PartitionID]ID{"p1": "a"},
			wantWarn:    "in flight to ineligible worker b",
			wantReasons: map[placement.Reason]int{},
		},
		{
			name:       "no eligible workers: everything stays, unassigned stays unassigned",
			workers:    []W{w("a", 1, false)},
			parts:      concat(parts(2, "a"), unassigned(1)),
			wantTarget: map[placement.PartitionID]ID{pid(0): "a", pid(2): ""},
			wantWarn:   "no eligible workers: all 3 partitions left where they are (1 unassigned)",
		},
		{
			name:        "weights split load proportionally",
			workers:     []W{w("a", 1, true), w("b", 2, true), w("c", 3, true)},
			parts:       unassigned(60),
			wantReasons: map[placement.Reason]int{placement.ReasonUnassigned: 60},
			wantLoads:   map[ID]uint64{"a": 10, "b": 20, "c": 30},
		},
		{
			name:        "heavy partitions widen the bound by their weight minus one",
			workers:     []W{w("a", 1, true), w("b", 1, true)},
			parts:       []P{{ID: "big", Weight: 5}, {ID: "s1", Weight: 1}, {ID: "s2", Weight: 1}, {ID: "s3", Weight: 1}},
			wantReasons: map[placement.Reason]int{placement.ReasonUnassigned: 4},
			wantLoads:   map[ID]uint64{"a": 5, "b": 3}, // fair 4, bounds 0..8; claims go below fair share first
		},
		{
			name:    "no partitions",
			workers: []W{w("a", 1, true)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := placement.Input{Workers: tc.workers, Partitions: tc.parts, Config: placement.Config{Slack: tc.slack}}
			if tc.slack == 0 {
				in.Config = placement.DefaultConfig()
			}
			plan := mustPlan(t, in)
			checkPlan(t, in, plan, newRefModel(in))
			if tc.wantReasons != nil {
				got := map[placement.Reason]int{}
				for _, m := range plan.Moves {
					got[m.Reason]++
				}
				if len(got) != len(tc.wantReasons) {
					t.Errorf("moves by reason %v, want %v", got, tc.wantReasons)
				}
				for r, n := range tc.wantReasons {
					if got[r] != n {
						t.Errorf("moves by reason %v, want %v", got, tc.wantReasons)
					}
				}
			}
			for _, wl := range plan.Workers {
				if want, ok := tc.wantLoads[wl.Worker]; ok && wl.Load != want {
					t.Errorf("%s load %d, want %d", wl.Worker, wl.Load, want)
				}
			}
			for p, want := range tc.wantTarget {
				if got, _ := plan.TargetOf(p); got != want {
					t.Errorf("%s target %q, want %q", p, got, want)
				}
			}
			if tc.wantDetail != "" && !anyContains(plan.Moves, tc.wantDetail) {
				t.Errorf("no move detail contains %q:\n%s", tc.wantDetail, plan.Render())
			}
			if tc.wantWarn == "" && len(plan.Warnings) > 0 || tc.wantWarn != "" && !strings.Contains(strings.Join(plan.Warnings, "\n"), tc.wantWarn) {
				t.Errorf("warnings %q, want one containing %q", plan.Warnings, tc.wantWarn)
			}
		})
	}
}

func anyContains(moves []placement.Move, s string) bool {
	for _, m := range moves {
		if strings.Contains(m.Detail, s) {
			return true
		}
	}
	return false
}

// TestMovesOrderedByUrgency checks the documented sort: availability
// first, then pins, then balance, then partition ID.
func TestMovesOrderedByUrgency(t *testing.T) {
	in := placement.Input{
		Config:  placement.DefaultConfig(),
		Workers: []W{{ID: "a", Weight: 1, Eligible: true}, {ID: "b", Weight: 1, Eligible: true}, {ID: "x", Weight: 1}},
		Partitions: concat(parts(6, "a"), []P{
			{Weight: 1, Owner: "a", Pinned: "b"}, {Weight: 1}, {Weight: 1, Owner: "x"},
		}),
	}
	plan := mustPlan(t, in)
	var got []string
	for _, m := range plan.Moves {
		got = append(got, string(m.Reason))
	}
	want := "owner_ineligible unassigned pinned rebalance_overload"
	if strings.Join(got, " ") != want {
		t.Fatalf("reasons in order %v, want %s\n%s", got, want, plan.Render())
	}
}

// TestRender fixes the dry-run output for one small plan, so a reviewer
// sees what `baton plan` prints and any change to it is deliberate.
func TestRender(t *testing.T) {
	in := placement.Input{
		Config: placement.DefaultConfig(),
		Workers: []W{
			{ID: "w1", Weight: 1, Eligible: true}, {ID: "w2", Weight: 1, Eligible: true},
			{ID: "w3", Weight: 1}, {ID: "w4", Weight: 2, Eligible: true},
		},
		Partitions: concat(parts(6, "w1"), []P{
			{Weight: 1, Owner: "w3"}, {Weight: 1}, {Weight: 1, Owner: "w1", Pinned: "w2"},
			{Weight: 1, Owner: "w1", InFlightTo: "w4"}, {Weight: 1, Owner: "w1", InFlightTo: "w3"},
		}),
	}
	plan := mustPlan(t, in)
	want := `plan: 11 partitions, 7 moves (owner_ineligible 1, unassigned 1, pinned 1, rebalance_overload 4), imbalance 0.250
moves:
  p000006  w3  -> w4  owner_ineligible    owner w3 not eligible; w4 load 3 -> 4, bounds 4..7
  p000007  -   -> w2  unassigned          no owner; w2 load 2 -> 3, bounds 2..3
  p000008  w1  -> w2  pinned              pinned to w2
  p000000  w1  -> w4  rebalance_overload  w1 load 7 > upper bound 3
  p000002  w1  -> w2  rebalance_overload  w1 load 6 > upper bound 3
  p000005  w1  -> w4  rebalance_overload  w1 load 5 > upper bound 3
  p000010  w1  -> w4  rebalance_overload  w1 load 4 > upper bound 3
workers:
  w1  weight 1  load 3  fair 2.75 bounds 2..3 fixed 0
  w2  weight 1  load 3  fair 2.75 bounds 2..3 fixed 1
  w3  weight 1  load 0  ineligible
  w4  weight 2  load 5  fair 5.50 bounds 4..7 fixed 1
warning: 1 handoff(s) in flight to ineligible worker w3: planned from their owners; abort them
`
	if got := plan.Render(); got != want {
		t.Fatalf("render:\n%s\nwant:\n%s", got, want)
	}
}

// TestTargetOf covers lookups of present and absent partitions.
func TestTargetOf(t *testing.T) {
	plan := mustPlan(t, placement.Input{Config: placement.DefaultConfig(), Workers: workers(2), Partitions: unassigned(5)})
	for _, tg := range plan.Targets {
		if got, ok := plan.TargetOf(tg.Partition); !ok || got != tg.Worker {
			t.Fatalf("TargetOf(%s) = %q, %v; want %q", tg.Partition, got, ok, tg.Worker)
		}
	}
	if _, ok := plan.TargetOf("nope"); ok {
		t.Fatal("TargetOf(nope) found a target")
	}
}
