package api

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/batonhq/baton/fsm"
)

// samplePlan has every field of a dry run set.
func samplePlan() Plan {
	return Plan{
		Index: 42, Paused: true, Imbalance: 0.25,
		Workers: []PlanWorker{
			{Worker: "w1", Weight: 2, Eligible: true, Load: 5, Fixed: 1, Fair: 4.5, Lower: 4, Upper: 5},
			{Worker: "w2", Weight: 1, Load: 3, Fixed: 3, Lower: 3, Upper: 3, Saturated: true},
		},
		Moves: []PlanMove{{Partition: "p1", From: "w2", To: "w1", Reason: "owner_ineligible", Detail: "w2 cordoned"}},
		Actions: []PlanAction{
			{Partition: "p1", From: "w2", To: "w1", Action: PlanPrepare, Reason: "owner_ineligible", Detail: "w2 cordoned"},
			{Partition: "p2", Action: PlanHold, Reason: "unassigned", Detail: "stabilization window"},
		},
		Pending: []fsm.Handoff{{ID: 7, Partition: "p3", From: "w1", To: "w2", Epoch: 3, Reason: "pinned",
			Deadline: 1700000000000000000, PreparedIndex: 40, PreparedTime: 1690000000000000000, Drained: true,
			ThroughSeq: 99, DrainedTime: 1695000000000000000}},
		Warnings: []string{"w2 saturated"},
		Rendered: "plan:\n  p1 w2 -> w1\n",
	}
}

// TestPlan_WireShapeUnchanged: a Plan encodes exactly as the dry run did
// before it had a type of its own (testdata/plan_v1.json was written by the
// controller's former DryRun, placement types with untagged fields
// included), and that document decodes to the same Plan.
func TestPlan_WireShapeUnchanged(t *testing.T) {
	golden, err := os.ReadFile("testdata/plan_v1.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(samplePlan(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(got, '\n'), golden) {
		t.Errorf("the plan's encoding changed:\n%s\nwant\n%s", got, golden)
	}
	var back Plan
	if err := json.Unmarshal(golden, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, samplePlan()) {
		t.Errorf("decoded %+v\nwant %+v", back, samplePlan())
	}
}

// FuzzPlan_JSON: whatever JSON decodes as a Plan (a client reads it from any
// node it is pointed at) encodes again, and that encoding is a fixed point:
// decoded and encoded once more it gives the same bytes and the same value.
func FuzzPlan_JSON(f *testing.F) {
	raw, err := json.Marshal(samplePlan())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte(`{"index":1,"workers":null,"moves":[],"actions":[{"partition":"p","action":"hold"}]}`))
	f.Add([]byte(`{"workers":[{"worker":"w1","LOAD":3,"Fair":1e308}],"pending":[]}`))
	f.Add([]byte(`{"imbalance":-0,"rendered":"\u001b[2J","warnings":[""]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Plan
		if err := json.Unmarshal(data, &p); err != nil {
			return
		}
		raw, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("a decoded plan does not encode: %v", err)
		}
		var back Plan
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("re-decode: %v (%s)", err, raw)
		}
		again, err := json.Marshal(back)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(raw, again) {
			t.Fatalf("unstable encoding:\n%s\n%s", raw, again)
		}
		var third Plan
		if err := json.Unmarshal(again, &third); err != nil || !reflect.DeepEqual(third, back) {
			t.Fatalf("decoding the fixed point twice differs: %+v vs %+v (%v)", third, back, err)
		}
	})
}

// TestDependsOnlyOnFSM: the wire types depend on fsm and the standard
// library alone, so that the controller and the applier, which return and
// read them, can import them without pulling in raft, the server or each
// other (DESIGN.md §2).
func TestDependsOnlyOnFSM(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(strings.Split(dep, "/")[0], ".") &&
			dep != "github.com/batonhq/baton/api" && !strings.HasPrefix(dep, "github.com/batonhq/baton/fsm") {
			t.Errorf("api depends on %s", dep)
		}
	}
}
