package delivery

import (
	"reflect"
	"slices"
	"testing"

	"github.com/batonhq/baton/fsm"
)

func recs(p fsm.PartitionID, pairs ...uint64) []Record {
	var out []Record
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, Record{Partition: p, Seq: fsm.StreamSeq(pairs[i]), Epoch: fsm.Epoch(pairs[i+1])})
	}
	return out
}

func TestCheck(t *testing.T) {
	pub := map[fsm.PartitionID][]fsm.StreamSeq{"a": {1, 3, 5, 7}}
	tests := []struct {
		name    string
		handled []Record // (seq, epoch) pairs for partition a
		forced  []ForcedCommit
		want    Partition
		ok      bool
	}{
		{"exact across a graceful handoff", recs("a", 1, 1, 3, 1, 5, 2, 7, 2), nil,
			Partition{Produced: 4, Processed: 4}, true},
		{"lost", recs("a", 1, 1, 3, 1, 7, 2), nil,
			Partition{Produced: 4, Processed: 3, Lost: 1}, false},
		{"duplicate without a forced commit", recs("a", 1, 1, 3, 1, 3, 2, 5, 2, 7, 2), nil,
			Partition{Produced: 4, Processed: 4, Duplicated: 1}, false},
		{"duplicates after a forced commit's resume point are the crash's",
			recs("a", 1, 1, 3, 1, 5, 1, 3, 2, 5, 2, 7, 2), []ForcedCommit{{Partition: "a", Epoch: 2, ResumeAfter: 1}},
			Partition{Produced: 4, Processed: 4, CrashDuplicates: 2, Forced: true}, true},
		{"a duplicate at or before the resume point is not explained",
			recs("a", 1, 1, 3, 1, 1, 2, 5, 2, 7, 2), []ForcedCommit{{Partition: "a", Epoch: 2, ResumeAfter: 1}},
			Partition{Produced: 4, Processed: 4, Duplicated: 1, Forced: true}, false},
		{"a forced commit of another epoch explains nothing",
			recs("a", 1, 1, 3, 1, 3, 1, 5, 1, 7, 1), []ForcedCommit{{Partition: "a", Epoch: 2, ResumeAfter: 0}},
			Partition{Produced: 4, Processed: 4, Duplicated: 1, Forced: true}, false},
		{"reordered", recs("a", 1, 1, 5, 1, 3, 1, 7, 1), nil,
			Partition{Produced: 4, Processed: 4, Reordered: 1}, false},
		{"unexpected", recs("a", 1, 1, 2, 1, 3, 1, 5, 1, 7, 1), nil,
			Partition{Produced: 4, Processed: 4, Unexpected: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(pub, map[fsm.PartitionID][]Record{"a": tt.handled}, tt.forced)
			got := r.Partitions["a"]
			got.Problems = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if r.OK() != tt.ok {
				t.Errorf("OK() = %v, want %v (%s)", r.OK(), tt.ok, r)
			}
			if wantProblems := !tt.want.Exact() && tt.want.CrashDuplicates == 0; wantProblems != (len(r.Problems()) > 0) {
				t.Errorf("problems %q", r.Problems())
			}
		})
	}
}

func TestCheck_Totals(t *testing.T) {
	pub := map[fsm.PartitionID][]fsm.StreamSeq{"a": {1, 2}, "b": {3}}
	r := Check(pub, map[fsm.PartitionID][]Record{"a": recs("a", 1, 1, 2, 1), "b": nil}, nil)
	if r.String() != "produced=3 processed=2 lost=1 duplicated=0 reordered=0" {
		t.Errorf("got %s", r)
	}
}

func TestOrderByEpoch(t *testing.T) {
	// Two workers' logs appended one after the other: w2's epoch-2 records
	// first, then w1's epoch-1 ones.
	rs := append(recs("a", 5, 2, 7, 2), recs("a", 1, 1, 3, 1)...)
	OrderByEpoch(rs)
	var seqs []fsm.StreamSeq
	for _, r := range rs {
		seqs = append(seqs, r.Seq)
	}
	if want := []fsm.StreamSeq{1, 3, 5, 7}; !slices.Equal(seqs, want) {
		t.Errorf("got %v, want %v", seqs, want)
	}
}

func TestForcedCommits(t *testing.T) {
	evs := []fsm.Event{
		{Body: fsm.Committed{Partition: "a", Epoch: 2, ResumeAfter: 10}},
		{Body: fsm.Committed{Partition: "b", Epoch: 3, ResumeAfter: 20, Forced: true}},
		{Body: fsm.Activated{Partition: "b", Epoch: 3}},
	}
	got := ForcedCommits(evs)
	if len(got) != 1 || got[0] != (ForcedCommit{Partition: "b", Epoch: 3, ResumeAfter: 20}) {
		t.Errorf("got %+v", got)
	}
}
