// Package delivery checks what workers handled against what was published, per
// partition: messages lost, handled twice, or handled out of stream order. It
// tells the duplicates a crash explains (a message after the resume point of a
// forced commit, handled before and after it) from those nothing explains.
//
// cmd/baton's demo and the end-to-end tests use it. It does no I/O: callers
// collect the published sequences, the handled records in handling order, and
// the forced commits from the audit log (ForcedCommits).
package delivery

import (
	"fmt"
	"slices"
	"sort"

	"github.com/batonhq/baton/fsm"
)

// Record is one handling of one message.
type Record struct {
	Partition fsm.PartitionID
	Seq       fsm.StreamSeq
	Epoch     fsm.Epoch
	Worker    fsm.WorkerID // optional, for messages
}

// ForcedCommit is a forced ownership change: the new owner, at Epoch, resumed
// after ResumeAfter (the last checkpoint) instead of after a drain.
type ForcedCommit struct {
	Partition   fsm.PartitionID
	Epoch       fsm.Epoch
	ResumeAfter fsm.StreamSeq
}

// ForcedCommits returns the forced commits among audit events.
func ForcedCommits(evs []fsm.Event) []ForcedCommit {
	var out []ForcedCommit
	for _, ev := range evs {
		if c, ok := ev.Body.(fsm.Committed); ok && c.Forced {
			out = append(out, ForcedCommit{Partition: c.Partition, Epoch: c.Epoch, ResumeAfter: c.ResumeAfter})
		}
	}
	return out
}

// OrderByEpoch sorts one partition's records into handling order when they
// come from several workers' logs: by epoch (each epoch has one owner), and
// within an epoch in the order given. Records of one worker must be in the
// order that worker handled them.
func OrderByEpoch(recs []Record) {
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Epoch < recs[j].Epoch })
}

// Partition is the verdict for one partition.
type Partition struct {
	Produced  int // messages published
	Processed int // distinct published messages handled at least once
	Lost      int // published, never handled
	// Duplicated counts handlings of an already handled message that no forced
	// commit explains; CrashDuplicates those that one does.
	Duplicated      int
	CrashDuplicates int
	// Reordered counts first handlings of a message after a later one.
	Reordered int
	// Unexpected counts handled sequences that were never published (a
	// publish whose acknowledgement was lost, or a wrong subject mapping).
	Unexpected int
	// Forced is set when the partition had a forced commit.
	Forced bool
	// Problems describes the first few anomalies, for humans.
	Problems []string
}

// Exact reports whether every published message was handled exactly once, in
// order, and nothing else was.
func (p Partition) Exact() bool {
	return p.Lost == 0 && p.Duplicated == 0 && p.CrashDuplicates == 0 && p.Reordered == 0 && p.Unexpected == 0
}

// Report is the verdict over all partitions.
type Report struct {
	Produced, Processed, Lost, Duplicated, CrashDuplicates, Reordered, Unexpected int
	Partitions                                                                    map[fsm.PartitionID]Partition
}

// OK reports whether nothing was lost, duplicated beyond what crashes explain,
// or reordered.
func (r Report) OK() bool { return r.Lost == 0 && r.Duplicated == 0 && r.Reordered == 0 }

// String renders the totals on one line.
func (r Report) String() string {
	return fmt.Sprintf("produced=%d processed=%d lost=%d duplicated=%d reordered=%d", r.Produced, r.Processed, r.Lost, r.Duplicated, r.Reordered)
}

// Problems lists every partition's anomalies, sorted by partition.
func (r Report) Problems() []string {
	ids := make([]fsm.PartitionID, 0, len(r.Partitions))
	for id := range r.Partitions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []string
	for _, id := range ids {
		for _, p := range r.Partitions[id].Problems {
			out = append(out, fmt.Sprintf("%s: %s", id, p))
		}
	}
	return out
}

const maxProblems = 5

// Check compares, per partition, the published sequences (in publish order)
// with the handled records (in handling order; see OrderByEpoch). A repeated
// handling of seq s is a crash duplicate if a forced commit of the partition at
// epoch E resumed before s, the first handling was at an epoch below E and the
// repeat at E or later; otherwise it is a duplicate.
func Check(published map[fsm.PartitionID][]fsm.StreamSeq, handled map[fsm.PartitionID][]Record, forced []ForcedCommit) Report {
	byPart := map[fsm.PartitionID][]ForcedCommit{}
	for _, f := range forced {
		byPart[f.Partition] = append(byPart[f.Partition], f)
	}
	ids := map[fsm.PartitionID]bool{}
	for p := range published {
		ids[p] = true
	}
	for p := range handled {
		ids[p] = true
	}
	r := Report{Partitions: map[fsm.PartitionID]Partition{}}
	for id := range ids {
		pr := checkPartition(published[id], handled[id], byPart[id])
		r.Partitions[id] = pr
		r.Produced += pr.Produced
		r.Processed += pr.Processed
		r.Lost += pr.Lost
		r.Duplicated += pr.Duplicated
		r.CrashDuplicates += pr.CrashDuplicates
		r.Reordered += pr.Reordered
		r.Unexpected += pr.Unexpected
	}
	return r
}

func checkPartition(published []fsm.StreamSeq, handled []Record, forced []ForcedCommit) Partition {
	pr := Partition{Produced: len(published), Forced: len(forced) > 0}
	problem := func(format string, args ...any) {
		if len(pr.Problems) < maxProblems {
			pr.Problems = append(pr.Problems, fmt.Sprintf(format, args...))
		}
	}
	want := make(map[fsm.StreamSeq]bool, len(published))
	for _, s := range published {
		want[s] = true
	}
	first := make(map[fsm.StreamSeq]Record, len(handled))
	var maxSeq fsm.StreamSeq
	for _, h := range handled {
		if f, ok := first[h.Seq]; ok {
			if crashExplains(forced, f, h) {
				pr.CrashDuplicates++
			} else {
				pr.Duplicated++
				problem("seq %d handled again at epoch %d (first at epoch %d), not after a forced commit's resume point", h.Seq, h.Epoch, f.Epoch)
			}
			continue
		}
		first[h.Seq] = h
		if !want[h.Seq] {
			pr.Unexpected++
			problem("seq %d handled but never published", h.Seq)
			continue
		}
		pr.Processed++
		if h.Seq < maxSeq {
			pr.Reordered++
			problem("seq %d handled after seq %d (epoch %d)", h.Seq, maxSeq, h.Epoch)
			continue
		}
		maxSeq = h.Seq
	}
	for _, s := range published {
		if _, ok := first[s]; !ok {
			pr.Lost++
			problem("seq %d lost", s)
		}
	}
	return pr
}

func crashExplains(forced []ForcedCommit, first, again Record) bool {
	for _, f := range forced {
		if first.Epoch < f.Epoch && f.Epoch <= again.Epoch && again.Seq > f.ResumeAfter {
			return true
		}
	}
	return false
}
