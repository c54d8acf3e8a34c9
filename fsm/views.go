package fsm

import (
	"cmp"
	"slices"
	"strings"
)

// Assignment is what one worker must do, as of state index Index.
type Assignment struct {
	Worker      WorkerID    `json:"worker"`
	Incarnation Incarnation `json:"incarnation"`
	State       WorkerState `json:"state"`
	Cordoned    bool        `json:"cordoned,omitempty"`
	// Index is the applied raft index this view reflects; a blocking query waits
	// for it to pass the caller's last seen index.
	Index RaftIndex `json:"index"`
	// Partitions the worker owns, sorted by id, in every phase. The worker
	// processes those activating or active, drains those preparing, and stays off
	// those drained or orphaned.
	Partitions []AssignedPartition `json:"partitions,omitempty"`
	// Handed are partitions this incarnation gave up whose next owner has not
	// activated yet: on an Interest stream the worker keeps covering their
	// subjects (without processing) until then.
	Handed []HandedPartition `json:"handed,omitempty"`
}

// HandedPartition is a partition handed off and not yet activated elsewhere.
type HandedPartition struct {
	Partition PartitionID `json:"partition"`
	Subjects  []string    `json:"subjects,omitempty"`
	Owner     WorkerID    `json:"owner,omitempty"`
	Phase     Phase       `json:"phase"`
}

// AssignedPartition is one owned partition in an Assignment.
type AssignedPartition struct {
	Partition   PartitionID `json:"partition"`
	Subjects    []string    `json:"subjects,omitempty"`
	Epoch       Epoch       `json:"epoch"`
	Phase       Phase       `json:"phase"`
	ResumeAfter StreamSeq   `json:"resume_after"`
	Checkpoint  StreamSeq   `json:"checkpoint"`
	// Lingerers are the earlier owners since the last activation; the worker
	// cleans up the consumers of those that are gone (another incarnation).
	Lingerers []Lingerer `json:"lingerers,omitempty"`
	// Handoff is the pending handoff out of this worker (0 if none), with its
	// target (empty for a release) and drain deadline.
	Handoff   HandoffID `json:"handoff,omitempty"`
	HandoffTo WorkerID  `json:"handoff_to,omitempty"`
	Deadline  int64     `json:"deadline,omitempty"`
}

// Assignment returns worker w's assignment. ok is false if the worker is unknown
// (never joined, or gone and forgotten).
func (s *State) Assignment(w WorkerID) (a Assignment, ok bool) {
	wk := s.workers[w]
	if wk == nil {
		return Assignment{Worker: w, Index: s.applied}, false
	}
	a = Assignment{Worker: w, Incarnation: wk.Incarnation, State: wk.State, Cordoned: wk.Cordoned, Index: s.applied}
	for _, p := range s.ownedSorted(w) {
		ap := AssignedPartition{
			Partition: p.ID, Subjects: p.Subjects, Epoch: p.Epoch, Phase: p.Phase,
			ResumeAfter: p.ResumeAfter, Checkpoint: p.Checkpoint, Handoff: p.Handoff,
		}
		if h := s.handoffs[p.Handoff]; h != nil {
			ap.HandoffTo, ap.Deadline = h.To, h.Deadline
		}
		for _, l := range p.Lingerers {
			lw := s.workers[l.Worker]
			l.Gone = lw == nil || lw.Incarnation != l.Incarnation || lw.State == WorkerGone
			ap.Lingerers = append(ap.Lingerers, l)
		}
		a.Partitions = append(a.Partitions, ap)
	}
	ids := make([]PartitionID, 0, len(s.lingering[w]))
	for id := range s.lingering[w] {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		p := s.partitions[id]
		for _, l := range p.Lingerers {
			if l.Worker == w && l.Incarnation == wk.Incarnation {
				a.Handed = append(a.Handed, HandedPartition{Partition: id, Subjects: p.Subjects, Owner: p.Owner, Phase: p.Phase})
				break
			}
		}
	}
	return a, true
}

// PartitionInfo is the full state of one partition.
type PartitionInfo struct {
	Partition
	// PendingHandoff is a copy of the pending handoff, if any.
	PendingHandoff *Handoff `json:"pending_handoff,omitempty"`
}

// PartitionView returns one partition's full state.
func (s *State) PartitionView(id PartitionID) (PartitionInfo, bool) {
	p := s.partitions[id]
	if p == nil {
		return PartitionInfo{}, false
	}
	info := PartitionInfo{Partition: *p}
	info.ownedAt = 0 // the state's bookkeeping, not the partition's
	if h := s.handoffs[p.Handoff]; h != nil {
		hc := *h
		info.PendingHandoff = &hc
	}
	return info, true
}

// Partitions returns up to limit partitions with ids greater than after, sorted
// by id (limit <= 0: all). Paging by id keeps each page bounded.
func (s *State) Partitions(after PartitionID, limit int) []PartitionInfo {
	ids := make([]PartitionID, 0, len(s.partitions))
	for id := range s.partitions {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]PartitionInfo, len(ids))
	for i, id := range ids {
		out[i], _ = s.PartitionView(id)
	}
	return out
}

// Workers returns every known worker, sorted by id.
func (s *State) Workers() []Worker {
	out := make([]Worker, 0, len(s.workers))
	for _, w := range s.workers {
		out = append(out, *w)
	}
	slices.SortFunc(out, func(a, b Worker) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// Worker returns one worker.
func (s *State) Worker(id WorkerID) (Worker, bool) {
	w := s.workers[id]
	if w == nil {
		return Worker{}, false
	}
	return *w, true
}

// Handoffs returns the pending handoffs, sorted by id.
func (s *State) Handoffs() []Handoff {
	out := make([]Handoff, 0, len(s.handoffs))
	for _, h := range s.handoffs {
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b Handoff) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Node is a claim-store node and the address of its HTTP API.
type Node struct {
	ID      string `json:"id,omitempty"`
	APIAddr string `json:"api_addr,omitempty"`
}

// Nodes returns the registered claim-store nodes, sorted by id.
func (s *State) Nodes() []Node {
	out := make([]Node, 0, len(s.nodes))
	for id, addr := range s.nodes {
		out = append(out, Node{ID: id, APIAddr: addr})
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// NodeAPIAddr returns a node's API address, or "" if it is not registered.
func (s *State) NodeAPIAddr(id string) string { return s.nodes[id] }

// Summary counts the cluster's state.
type Summary struct {
	Index             RaftIndex           `json:"index"`
	Term              uint64              `json:"term"`
	Workers           map[WorkerState]int `json:"workers,omitempty"`
	Cordoned          int                 `json:"cordoned"`
	Partitions        int                 `json:"partitions"`
	PartitionsByPhase map[Phase]int       `json:"partitions_by_phase,omitempty"`
	Handoffs          int                 `json:"handoffs"`
	Paused            bool                `json:"paused,omitempty"`
}

// Summary returns cluster-wide counts.
func (s *State) Summary() Summary {
	sum := Summary{
		Index: s.applied, Term: s.term, Workers: map[WorkerState]int{},
		Partitions: len(s.partitions), PartitionsByPhase: map[Phase]int{},
		Handoffs: len(s.handoffs), Paused: s.paused,
	}
	for _, w := range s.workers {
		sum.Workers[w.State]++
		if w.Cordoned {
			sum.Cordoned++
		}
	}
	for _, p := range s.partitions {
		sum.PartitionsByPhase[p.Phase]++
	}
	return sum
}
