package fsm_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/fsm/fsmtest"
)

// world builds the state every rejection case starts from:
//
//	w1 (incarnation 1) owns p1 (active, epoch 1, checkpoint 10) and
//	    p2 (preparing towards w2, handoff h1, epoch 1)
//	w2 (incarnation 2) active; w3 cordoned; w4 leaving (owns p4, active)
//	p3 unassigned
func world(t testing.TB) *fsmtest.Env {
	t.Helper()
	e := fsmtest.New(t)
	must := func(b fsm.Body) {
		t.Helper()
		if r := e.Apply(fsm.Command{Header: fsm.Header{Actor: "test"}, Body: b}); r.FirstError() != nil {
			t.Fatalf("setup %T: %v", b, r.FirstError())
		}
	}
	for _, w := range []fsm.WorkerID{"w1", "w2", "w3", "w4"} {
		must(fsm.Join{Worker: w})
	}
	must(fsm.Declare{Partitions: []fsm.PartitionSpec{
		{ID: "p1", Subjects: []string{"o.p1.>"}}, {ID: "p2", Subjects: []string{"o.p2.>"}},
		{ID: "p3", Subjects: []string{"o.p3.>"}}, {ID: "p4", Subjects: []string{"o.p4.>"}},
	}})
	must(fsm.Claim{Items: []fsm.ClaimItem{{Partition: "p1", Worker: "w1"}, {Partition: "p2", Worker: "w1"}, {Partition: "p4", Worker: "w4"}}})
	must(fsm.Activate{Worker: "w1", Incarnation: 1, Items: []fsm.ActivateItem{{Partition: "p1", Epoch: 1}, {Partition: "p2", Epoch: 1}}})
	must(fsm.Activate{Worker: "w4", Incarnation: 4, Items: []fsm.ActivateItem{{Partition: "p4", Epoch: 1}}})
	must(fsm.Checkpoint{Worker: "w1", Incarnation: 1, Items: []fsm.CheckpointItem{{Partition: "p1", Epoch: 1, Seq: 10}}})
	must(fsm.Prepare{Items: []fsm.PrepareItem{{Partition: "p2", Epoch: 1, From: "w1", To: "w2"}}})
	must(fsm.Cordon{Worker: "w3", On: true})
	must(fsm.Leave{Worker: "w4", Incarnation: 4})
	return e
}

// TestRejections: every command naming a missing or unknown id, a stale epoch or
// incarnation, the wrong phase or the wrong worker is refused with its own code,
// and neither the state nor the audit trail changes.
func TestRejections(t *testing.T) {
	tests := []struct {
		name string
		body fsm.Body
		want error
	}{
		// Missing or malformed ids.
		{"join without id", fsm.Join{}, fsm.ErrInvalidArgument},
		{"join with bad id", fsm.Join{Worker: "w 1"}, fsm.ErrInvalidArgument},
		{"join with bad label", fsm.Join{Worker: "w9", Labels: []fsm.Label{{Key: "", Value: "x"}}}, fsm.ErrInvalidArgument},
		{"join with duplicate label", fsm.Join{Worker: "w9", Labels: []fsm.Label{{"a", "1"}, {"a", "2"}}}, fsm.ErrInvalidArgument},
		{"join over weight", fsm.Join{Worker: "w9", Weight: 1_000_000}, fsm.ErrInvalidArgument},
		{"claim without partition", fsm.Claim{Items: []fsm.ClaimItem{{Worker: "w2"}}}, fsm.ErrInvalidArgument},
		{"declare without subjects", fsm.Declare{Partitions: []fsm.PartitionSpec{{ID: "p9"}}}, fsm.ErrInvalidArgument},
		{"declare bad subject", fsm.Declare{Partitions: []fsm.PartitionSpec{{ID: "p9", Subjects: []string{"a..b"}}}}, fsm.ErrInvalidArgument},
		{"prepare with long reason", fsm.Prepare{Items: []fsm.PrepareItem{{Partition: "p1", Epoch: 1, From: "w1", To: "w2", Reason: string(make([]byte, 300))}}}, fsm.ErrInvalidArgument},
		{"force without reason", fsm.ForceCommit{Items: []fsm.ForceItem{{Partition: "p1", Epoch: 1, To: "w2"}}}, fsm.ErrInvalidArgument},
		// Unknown ids.
		{"claim unknown partition", fsm.Claim{Items: []fsm.ClaimItem{{Partition: "p9", Worker: "w2"}}}, fsm.ErrUnknownPartition},
		{"claim for unknown worker", fsm.Claim{Items: []fsm.ClaimItem{{Partition: "p3", Worker: "w9"}}}, fsm.ErrUnknownWorker},
		{"leave unknown worker", fsm.Leave{Worker: "w9", Incarnation: 1}, fsm.ErrUnknownWorker},
		{"expire unknown worker", fsm.Expire{Worker: "w9", Incarnation: 1}, fsm.ErrUnknownWorker},
		{"remove unknown worker", fsm.RemoveWorker{Worker: "w9"}, fsm.ErrUnknownWorker},
		{"cordon unknown worker", fsm.Cordon{Worker: "w9", On: true}, fsm.ErrUnknownWorker},
		{"pin to unknown worker", fsm.Pin{Partition: "p1", Worker: "w9"}, fsm.ErrUnknownWorker},
		{"pin unknown partition", fsm.Pin{Partition: "p9", Worker: "w1"}, fsm.ErrUnknownPartition},
		{"drain unknown handoff", fsm.DrainReport{Worker: "w1", Incarnation: 1, Items: []fsm.DrainItem{{Handoff: 99, Partition: "p2", Epoch: 1}}}, fsm.ErrUnknownHandoff},
		{"commit unknown handoff", fsm.Commit{Items: []fsm.CommitItem{{Handoff: 99, Partition: "p2"}}}, fsm.ErrUnknownHandoff},
		{"abort unknown handoff", fsm.Abort{Items: []fsm.AbortItem{{Handoff: 99, Partition: "p2"}}}, fsm.ErrUnknownHandoff},
		{"remove unknown node", fsm.RemoveNode{Node: "n9"}, fsm.ErrUnknownNode},
		{"register node without address", fsm.RegisterNode{Node: "n9"}, fsm.ErrInvalidArgument},
		{"remove unknown partition", fsm.RemovePartitions{Partitions: []fsm.PartitionID{"p9"}}, fsm.ErrUnknownPartition},
		// Stale epochs and incarnations.
		{"prepare at stale epoch", fsm.Prepare{Items: []fsm.PrepareItem{{Partition: "p1", Epoch: 0, From: "w1", To: "w2"}}}, fsm.ErrStaleEpoch},
		{"drain at stale epoch", fsm.DrainReport{Worker: "w1", Incarnation: 1, Items: []fsm.DrainItem{{Handoff: 1, Partition: "p2", Epoch: 2, ThroughSeq: 5}}}, fsm.ErrStaleEpoch},
		{"checkpoint at stale epoch", fsm.Checkpoint{Worker: "w1", Incarnation: 1, Items: []fsm.CheckpointItem{{Partition: "p1", Epoch: 2, Seq: 11}}}, fsm.ErrStaleEpoch},
		{"release at stale epoch", fsm.Release{Worker: "w1", Incarnation: 1, Items: []fsm.ReleaseItem{{Partition: "p1", Epoch: 3, ThroughSeq: 11}}}, fsm.ErrStaleEpoch},
		{"activate at stale epoch", fsm.Activate{Worker: "w4", Incarnation: 4, Items: []fsm.ActivateItem{{Partition: "p4", Epoch: 9}}}, fsm.ErrStaleEpoch},
		{"force at stale epoch", fsm.ForceCommit{Items: []fsm.ForceItem{{Partition: "p1", Epoch: 5, To: "w2", Reason: fsm.ForceOperator}}}, fsm.ErrStaleEpoch},
		{"checkpoint from old incarnation", fsm.Checkpoint{Worker: "w1", Incarnation: 9, Items: []fsm.CheckpointItem{{Partition: "p1", Epoch: 1, Seq: 11}}}, fsm.ErrStaleIncarnation},
		{"expire old incarnation", fsm.Expire{Worker: "w1", Incarnation: 9}, fsm.ErrStaleIncarnation},
		{"leave old incarnation", fsm.Leave{Worker: "w1", Incarnation: 9}, fsm.ErrStaleIncarnation},
		// Wrong phase.
		{"claim owned partition", fsm.Claim{Items: []fsm.ClaimItem{{Partition: "p1", Worker: "w2"}}}, fsm.ErrWrongPhase},
		{"prepare unassigned partition", fsm.Prepare{Items: []fsm.PrepareItem{{Partition: "p3", Epoch: 0, From: "", To: "w2"}}}, fsm.ErrWrongPhase},
		{"commit before drain", fsm.Commit{Items: []fsm.CommitItem{{Handoff: 1, Partition: "p2"}}}, fsm.ErrWrongPhase},
		{"activate active partition", fsm.Activate{Worker: "w1", Incarnation: 1, Items: []fsm.ActivateItem{{Partition: "p1", Epoch: 1}}}, fsm.ErrWrongPhase},
		{"force unassigned partition", fsm.ForceCommit{Items: []fsm.ForceItem{{Partition: "p3", Epoch: 0, To: "w2", Reason: fsm.ForceOperator}}}, fsm.ErrWrongPhase},
		{"prepare during handoff", fsm.Prepare{Items: []fsm.PrepareItem{{Partition: "p2", Epoch: 1, From: "w1", To: "w2"}}}, fsm.ErrHandoffInProgress},
		{"release during handoff", fsm.Release{Worker: "w1", Incarnation: 1, Items: []fsm.ReleaseItem{{Partition: "p2", Epoch: 1, ThroughSeq: 1}}}, fsm.ErrHandoffInProgress},
		{"remove during handoff", fsm.RemovePartitions{Partitions: []fsm.PartitionID{"p2"}}, fsm.ErrHandoffInProgress},
		{"force a live owner", fsm.ForceCommit{Items: []fsm.ForceItem{{Partition: "p1", Epoch: 1, To: "w2", Reason: fsm.ForceOwnerLeft}}}, fsm.ErrNotForceable},
		{"force before a deadline", fsm.ForceCommit{Items: []fsm.ForceItem{{Partition: "p2", Epoch: 1, To: "w2", Reason: fsm.ForceDrainDeadline}}}, fsm.ErrNotForceable},
		// Wrong worker.
		{"drain by non-owner", fsm.DrainReport{Worker: "w2", Incarnation: 2, Items: []fsm.DrainItem{{Handoff: 1, Partition: "p2", Epoch: 1}}}, fsm.ErrNotOwner},
		{"checkpoint by non-owner", fsm.Checkpoint{Worker: "w2", Incarnation: 2, Items: []fsm.CheckpointItem{{Partition: "p1", Epoch: 1, Seq: 11}}}, fsm.ErrNotOwner},
		{"release by non-owner", fsm.Release{Worker: "w2", Incarnation: 2, Items: []fsm.ReleaseItem{{Partition: "p1", Epoch: 1, ThroughSeq: 11}}}, fsm.ErrNotOwner},
		{"activate by non-owner", fsm.Activate{Worker: "w2", Incarnation: 2, Items: []fsm.ActivateItem{{Partition: "p4", Epoch: 1}}}, fsm.ErrNotOwner},
		{"prepare from non-owner", fsm.Prepare{Items: []fsm.PrepareItem{{Partition: "p1", Epoch: 1, From: "w2", To: "w3"}}}, fsm.ErrNotOwner},
		{"prepare to itself", fsm.Prepare{Items: []fsm.PrepareItem{{Partition: "p1", Epoch: 1, From: "w1", To: "w1"}}}, fsm.ErrSameWorker},
		{"claim for cordoned worker", fsm.Claim{Items: []fsm.ClaimItem{{Partition: "p3", Worker: "w3"}}}, fsm.ErrWorkerCordoned},
		{"prepare to cordoned worker", fsm.Prepare{Items: []fsm.PrepareItem{{Partition: "p1", Epoch: 1, From: "w1", To: "w3"}}}, fsm.ErrWorkerCordoned},
		{"claim for leaving worker", fsm.Claim{Items: []fsm.ClaimItem{{Partition: "p3", Worker: "w4"}}}, fsm.ErrWorkerNotActive},
		{"force to leaving worker", fsm.ForceCommit{Items: []fsm.ForceItem{{Partition: "p1", Epoch: 1, To: "w4", Reason: fsm.ForceOperator}}}, fsm.ErrWorkerNotActive},
		{"join live worker without replace", fsm.Join{Worker: "w1"}, fsm.ErrWorkerExists},
		// Sequences that go backwards.
		{"checkpoint backwards", fsm.Checkpoint{Worker: "w1", Incarnation: 1, Items: []fsm.CheckpointItem{{Partition: "p1", Epoch: 1, Seq: 9}}}, fsm.ErrSeqRegressed},
		{"release below checkpoint", fsm.Release{Worker: "w1", Incarnation: 1, Items: []fsm.ReleaseItem{{Partition: "p1", Epoch: 1, ThroughSeq: 9}}}, fsm.ErrSeqRegressed},
		// Conflicts and bounds.
		{"declare overlapping subject", fsm.Declare{Partitions: []fsm.PartitionSpec{{ID: "p9", Subjects: []string{"o.*.x"}}}}, fsm.ErrSubjectOverlap},
		{"declare existing with other spec", fsm.Declare{Partitions: []fsm.PartitionSpec{{ID: "p1", Subjects: []string{"o.other"}}}}, fsm.ErrPartitionExists},
		{"too many labels", fsm.Join{Worker: "w9", Labels: make([]fsm.Label, 17)}, fsm.ErrLimitExceeded},
		{"too many subjects", fsm.Declare{Partitions: []fsm.PartitionSpec{{ID: "p9", Subjects: make([]string, 17)}}}, fsm.ErrLimitExceeded},
		{"too many items", fsm.Claim{Items: make([]fsm.ClaimItem, 10_001)}, fsm.ErrLimitExceeded},
	}
	codes := map[fsm.Code]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := world(t)
			before := snapshotBytes(t, e.State)
			events := len(e.Events)
			res := e.Apply(fsm.Command{Header: fsm.Header{Actor: "test"}, Body: tt.body})
			err := res.FirstError()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			// A command that fails the check before proposing is refused
			// with one EntryRejected event (invariant 7); one the state
			// rejects leaves no event.
			wantEvents := 0
			if cerr := fsm.DefaultConfig().CheckCommand(fsm.Command{Body: tt.body}); cerr != nil {
				wantEvents = 1
				if !errors.Is(cerr, tt.want) {
					t.Fatalf("check: got %v, want %v", cerr, tt.want)
				}
			}
			if res.Rejected() != 1 || len(res.Events) != wantEvents || len(e.Events) != events+wantEvents {
				t.Fatalf("rejection emitted %d events, want %d (rejected %d)", len(res.Events), wantEvents, res.Rejected())
			}
			if wantEvents == 1 && res.Events[0].Type() != fsm.EvEntryRejected {
				t.Fatalf("refusal emitted %s, want EntryRejected", res.Events[0].Type())
			}
			prev, err := fsm.ReadSnapshot(bytes.NewReader(before), e.State.Config())
			if err != nil {
				t.Fatal(err)
			}
			if err := fsm.SameContent(prev, e.State); err != nil {
				t.Fatalf("rejected command changed the state: %v", err)
			}
		})
		codes[tt.want.(*fsm.RejectError).Code] = true
	}
	for _, c := range fsm.Codes() {
		if !codes[c] && c != fsm.CodeRequestIDReused && c != fsm.CodeUnknownCommand {
			t.Errorf("code %s has no rejection case", c)
		}
	}
}

func snapshotBytes(t *testing.T, s *fsm.State) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRejectError_IsComparesCodes: errors.Is matches by code, also for an error
// rebuilt from its wire form.
func TestRejectError_IsComparesCodes(t *testing.T) {
	wire := &fsm.RejectError{Code: fsm.CodeStaleEpoch, Msg: "from the wire"}
	if !errors.Is(wire, fsm.ErrStaleEpoch) || errors.Is(wire, fsm.ErrNotOwner) {
		t.Fatal("Is must compare codes")
	}
	wrapped := errors.Join(errors.New("context"), wire)
	if !errors.Is(wrapped, fsm.ErrStaleEpoch) {
		t.Fatal("Is must see through wrapping")
	}
}
