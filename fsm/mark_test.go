package fsm

import (
	"bytes"
	"testing"
)

// TestMarkDigest_ChangesOnlyTheAppliedIndex: a mark emits nothing and is
// never rejected; a replica that applied it, and one whose log held another
// entry there that never reached the state machine (a no-op), hold
// byte-identical states once both apply the next command.
func TestMarkDigest_ChangesOnlyTheAppliedIndex(t *testing.T) {
	setup := []Command{
		{Header: Header{Actor: "test", Time: 10}, Body: Join{Worker: "w1"}},
		{Header: Header{Actor: "test", Time: 11}, Body: Declare{Partitions: []PartitionSpec{{ID: "p1", Subjects: []string{"a.>"}}}}},
		{Header: Header{Actor: "test", Time: 12}, Body: Claim{Items: []ClaimItem{{Partition: "p1", Worker: "w1"}}}},
	}
	marked, plain := mustNew(t), mustNew(t)
	for i, c := range setup {
		for _, s := range []*State{marked, plain} {
			if r := s.Apply(RaftIndex(i+1), 1, c); r.FirstError() != nil {
				t.Fatalf("setup %d: %v", i, r.FirstError())
			}
		}
	}
	before := snapshotBytes(t, marked)
	r := marked.Apply(4, 1, Command{Header: Header{Actor: "node:n1", Cause: "digest mark", Time: 13}, Body: MarkDigest{}})
	if r.Err != nil || len(r.Events) != 0 || r.Items != nil {
		t.Fatalf("mark: err %v, %d events, items %v; want none", r.Err, len(r.Events), r.Items)
	}
	if marked.AppliedIndex() != 4 {
		t.Fatalf("applied index %d after the mark, want 4", marked.AppliedIndex())
	}
	if bytes.Equal(before, snapshotBytes(t, marked)) {
		t.Fatal("the mark did not move the applied index in the encoding")
	}
	next := Command{Header: Header{Actor: "test", Time: 14}, Body: Cordon{Worker: "w1", On: true}}
	for _, s := range []*State{marked, plain} {
		if r := s.Apply(5, 1, next); r.FirstError() != nil {
			t.Fatal(r.FirstError())
		}
	}
	if !bytes.Equal(snapshotBytes(t, marked), snapshotBytes(t, plain)) {
		t.Fatal("the mark changed the state beyond the applied index")
	}
	if err := marked.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

func mustNew(t *testing.T) *State {
	t.Helper()
	s, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
