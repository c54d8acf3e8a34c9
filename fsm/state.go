package fsm

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Worker is the state machine's record of one worker.
type Worker struct {
	ID          WorkerID    `json:"id"`
	Incarnation Incarnation `json:"incarnation"`
	Weight      uint32      `json:"weight,omitempty"`
	Labels      []Label     `json:"labels,omitempty"` // sorted by key
	State       WorkerState `json:"state"`
	Cordoned    bool        `json:"cordoned,omitempty"`
	JoinedTime  int64       `json:"joined_time"` // leader time of the WorkerJoined, Unix nanoseconds
}

// Partition is the state machine's record of one partition.
type Partition struct {
	ID       PartitionID `json:"id"`
	Subjects []string    `json:"subjects,omitempty"` // sorted
	Weight   uint32      `json:"weight,omitempty"`
	// Owner is the worker allowed to process the partition (empty when
	// unassigned). During a handoff the old owner stays owner until commit.
	Owner WorkerID `json:"owner"`
	// Epoch is the current fencing token; 0 until the first claim. It keeps its
	// value while unassigned so the next claim moves past it.
	Epoch Epoch `json:"epoch"`
	Phase Phase `json:"phase"`
	// ownedAt is the partition's position in its owner's list (State.owned),
	// so that it leaves the list in constant time. It sits in what was
	// padding after Phase and is zero in every copy handed out.
	ownedAt int32
	// ResumeAfter is where the current owner resumes: it processes messages with
	// sequence > ResumeAfter.
	ResumeAfter StreamSeq `json:"resume_after"`
	// Checkpoint: every message with sequence <= Checkpoint is finished.
	Checkpoint StreamSeq `json:"checkpoint"`
	// Handoff is the pending handoff, 0 if none.
	Handoff HandoffID `json:"handoff,omitempty"`
	// Pinned is the worker placement must keep the partition on, if eligible.
	Pinned WorkerID `json:"pinned"`
	// DeclaredIndex is the raft index of the PartitionsDeclared that added it.
	DeclaredIndex RaftIndex `json:"declared_index"`
	// OwnerIndex is the raft index of the Claimed or Committed that set the
	// current owner (0 when unassigned). The audit log's retention keeps it.
	OwnerIndex RaftIndex `json:"owner_index,omitempty"`
	// OwnerIncarnation is the incarnation of the owner that was given the
	// partition; it names that owner's consumer.
	OwnerIncarnation Incarnation `json:"owner_incarnation,omitempty"`
	// Lingerers are the earlier owners (worker incarnations) since the last
	// activation: a live one keeps covering the partition's subjects (on
	// Interest streams a gap in coverage loses messages) until the next owner
	// activates; a gone one's consumer is cleaned up by the next owner.
	Lingerers []Lingerer `json:"lingerers,omitempty"`
}

// Lingerer is an earlier owner of a partition awaiting the next activation.
type Lingerer struct {
	Worker      WorkerID    `json:"worker"`
	Incarnation Incarnation `json:"incarnation"`
	// Gone is set in assignment views (never in the state) when that
	// incarnation has left: its consumer is the next owner's to clean up.
	Gone bool `json:"gone,omitempty"`
}

// maxLingerers bounds Partition.Lingerers: the oldest are dropped first.
const maxLingerers = 8

// Handoff is a pending move of one partition.
type Handoff struct {
	ID        HandoffID   `json:"id"`
	Partition PartitionID `json:"partition"`
	From      WorkerID    `json:"from"`
	To        WorkerID    `json:"to"`    // empty: release once drained
	Epoch     Epoch       `json:"epoch"` // the partition's epoch when prepared
	Reason    string      `json:"reason,omitempty"`
	Deadline  int64       `json:"deadline,omitempty"` // Unix nanoseconds; 0 = none
	// PreparedIndex and PreparedTime record when the handoff began.
	PreparedIndex RaftIndex `json:"prepared_index"`
	PreparedTime  int64     `json:"prepared_time,omitempty"`
	// Drained is set once the owner reported ThroughSeq.
	Drained     bool      `json:"drained,omitempty"`
	ThroughSeq  StreamSeq `json:"through_seq"`
	DrainedTime int64     `json:"drained_time,omitempty"`
}

// State is the whole replicated state. The zero value is not usable: call New.
type State struct {
	cfg Config

	applied RaftIndex
	term    uint64

	workers     map[WorkerID]*Worker
	partitions  map[PartitionID]*Partition
	handoffs    map[HandoffID]*Handoff
	lastHandoff HandoffID         // the last allocated handoff id
	paused      bool              // voluntary rebalancing paused
	nodes       map[string]string // claim-store node id -> API address
	requests    requestTable

	// Derived indexes, rebuilt on restore and never encoded.
	owned     map[WorkerID][]*Partition             // partitions by Owner, in no order; see setOwner
	lingering map[WorkerID]map[PartitionID]struct{} // partitions by Lingerers' workers
	subjects  *SubjectIndex

	// scratch is reused by every Apply to check and hash commands, so that
	// they allocate no walker or buffer of their own.
	scratch scratch
}

// scratch is Apply's reusable walker and encoding buffer.
type scratch struct {
	w   walker
	enc encoder
}

// New returns an empty state bounded by cfg.
func New(cfg Config) (*State, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newState(cfg), nil
}

func newState(cfg Config) *State {
	return &State{
		cfg:        cfg,
		workers:    make(map[WorkerID]*Worker),
		partitions: make(map[PartitionID]*Partition),
		handoffs:   make(map[HandoffID]*Handoff),
		nodes:      make(map[string]string),
		requests:   newRequestTable(),
		owned:      make(map[WorkerID][]*Partition),
		lingering:  make(map[WorkerID]map[PartitionID]struct{}),
		subjects:   NewSubjectIndex(),
	}
}

// Config returns the bounds the state was created with.
func (s *State) Config() Config { return s.cfg }

// AppliedIndex returns the raft index of the last applied command.
func (s *State) AppliedIndex() RaftIndex { return s.applied }

// Term returns the raft term of the last applied command.
func (s *State) Term() uint64 { return s.term }

// Paused reports whether voluntary rebalancing is paused.
func (s *State) Paused() bool { return s.paused }

// setOwner moves p to owner w (empty: unassigned), keeping the owned index.
// Each owner's list is in no particular order (whatever reads it sorts): p
// leaves it by moving the last entry into its place, so that a move costs
// the same whatever the list's length.
func (s *State) setOwner(p *Partition, w WorkerID) {
	if p.Owner != "" {
		s.unlistOwned(p)
	}
	p.Owner = w
	if w != "" {
		list := s.owned[w]
		p.ownedAt = int32(len(list))
		s.owned[w] = append(list, p)
	}
}

// unlistOwned removes p from its owner's list.
func (s *State) unlistOwned(p *Partition) {
	list := s.owned[p.Owner]
	i, last := int(p.ownedAt), len(list)-1
	if i > last || list[i] != p {
		panic(fmt.Sprintf("fsm: partition %s is not at %d in %s's owned list", p.ID, i, p.Owner))
	}
	list[i] = list[last]
	list[i].ownedAt = int32(i)
	list[last] = nil
	list = list[:last]
	p.ownedAt = 0
	switch {
	case len(list) == 0:
		delete(s.owned, p.Owner)
	case cap(list) > 64 && len(list) < cap(list)/4:
		// Give back the memory of a list that shrank a lot.
		s.owned[p.Owner] = slices.Clone(list)
	default:
		s.owned[p.Owner] = list
	}
}

// setLingerers replaces p's lingerers, keeping the lingering index.
func (s *State) setLingerers(p *Partition, ls []Lingerer) {
	for _, l := range p.Lingerers {
		if set := s.lingering[l.Worker]; set != nil {
			delete(set, p.ID)
			if len(set) == 0 {
				delete(s.lingering, l.Worker)
			}
		}
	}
	if len(ls) > maxLingerers {
		ls = ls[len(ls)-maxLingerers:]
	}
	p.Lingerers = ls
	for _, l := range ls {
		set := s.lingering[l.Worker]
		if set == nil {
			set = make(map[PartitionID]struct{})
			s.lingering[l.Worker] = set
		}
		set[p.ID] = struct{}{}
	}
}

// addLingerer records p's current owner as a lingerer before it loses p.
func (s *State) addLingerer(p *Partition) {
	if p.Owner == "" {
		return
	}
	ls := append(slices.Clone(p.Lingerers), Lingerer{Worker: p.Owner, Incarnation: p.OwnerIncarnation})
	s.setLingerers(p, ls)
}

// ownedSorted lists the partitions w owns, sorted by id, so that whatever
// iterates them produces the same output on every replica.
func (s *State) ownedSorted(w WorkerID) []*Partition {
	out := slices.Clone(s.owned[w])
	slices.SortFunc(out, func(a, b *Partition) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// handoffsTo lists the pending handoffs targeting w, sorted by id.
func (s *State) handoffsTo(w WorkerID) []*Handoff {
	var out []*Handoff
	for _, h := range s.handoffs {
		if h.To == w {
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b *Handoff) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// pruneIfDone forgets a gone worker once it owns nothing and no partition waits
// for its coverage as a lingerer (its assignment still lists those, so that a
// leaving worker knows when it may delete its consumer). Its incarnation lives
// on in the audit log, and a new join gets a larger one (the join's raft index).
func (s *State) pruneIfDone(w WorkerID) {
	wk := s.workers[w]
	if wk == nil || wk.State != WorkerGone || len(s.owned[w]) > 0 || s.lingers(w, wk.Incarnation) {
		return
	}
	delete(s.workers, w)
}

// lingers reports whether incarnation inc of w is a lingerer of any partition.
func (s *State) lingers(w WorkerID, inc Incarnation) bool {
	for id := range s.lingering[w] {
		for _, l := range s.partitions[id].Lingerers {
			if l.Worker == w && l.Incarnation == inc {
				return true
			}
		}
	}
	return false
}

func maxSeq(a, b StreamSeq) StreamSeq {
	if a > b {
		return a
	}
	return b
}
