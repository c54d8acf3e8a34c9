package fsm

import (
	"fmt"
	"strconv"
)

// WorkerID names a worker process. It is stable across restarts of that process.
type WorkerID string

// PartitionID names a partition, a unit of ordered work.
type PartitionID string

// HandoffID identifies one handoff of one partition. The state machine allocates
// them from a counter, so they are unique for the life of the cluster.
type HandoffID uint64

// Epoch is a partition's fencing token. It strictly increases at every change of
// owner (claim or commit) and is never reused.
type Epoch uint64

// StreamSeq is a JetStream stream sequence number.
type StreamSeq uint64

// RaftIndex is the index of a raft log entry.
type RaftIndex uint64

// Incarnation identifies one life of a worker: the raft index of the WorkerJoined
// event that started it. A restarted worker gets a new, larger incarnation, which
// fences requests from its previous life.
type Incarnation uint64

func (w WorkerID) String() string    { return string(w) }
func (p PartitionID) String() string { return string(p) }

// String renders a handoff id as "h<n>", the form operators type.
func (h HandoffID) String() string { return "h" + strconv.FormatUint(uint64(h), 10) }

func (e Epoch) String() string       { return strconv.FormatUint(uint64(e), 10) }
func (s StreamSeq) String() string   { return strconv.FormatUint(uint64(s), 10) }
func (i RaftIndex) String() string   { return strconv.FormatUint(uint64(i), 10) }
func (i Incarnation) String() string { return strconv.FormatUint(uint64(i), 10) }

// ParseHandoffID parses the "h<n>" form (or a bare number).
func ParseHandoffID(s string) (HandoffID, error) {
	t := s
	if len(t) > 0 && (t[0] == 'h' || t[0] == 'H') {
		t = t[1:]
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("fsm: invalid handoff id %q", s)
	}
	return HandoffID(n), nil
}

// enumText maps an enum's values to their stable wire names. Index 0 is the
// invalid zero value of every enum, so an unset field never reads as valid.
type enumText []string

func (t enumText) name(v uint8) string {
	if int(v) < len(t) && v != 0 {
		return t[v]
	}
	return "invalid(" + strconv.Itoa(int(v)) + ")"
}

func (t enumText) valid(v uint8) bool { return v != 0 && int(v) < len(t) }

func (t enumText) parse(kind, s string) (uint8, error) {
	for i := 1; i < len(t); i++ {
		if t[i] == s {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("fsm: unknown %s %q", kind, s)
}

// WorkerState is the lifecycle state of a worker.
type WorkerState uint8

// Worker states.
const (
	// WorkerActive workers may receive partitions.
	WorkerActive WorkerState = 1 + iota
	// WorkerLeaving workers are handing their partitions off before they go; they
	// receive nothing new.
	WorkerLeaving
	// WorkerGone workers have left, expired or been removed. A gone worker still
	// owning partitions keeps them (orphaned) until they are force-committed
	// elsewhere; it is forgotten once it owns nothing.
	WorkerGone
)

var workerStateText = enumText{"", "active", "leaving", "gone"}

func (s WorkerState) String() string { return workerStateText.name(uint8(s)) }

// MarshalText implements encoding.TextMarshaler.
func (s WorkerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *WorkerState) UnmarshalText(b []byte) error {
	v, err := workerStateText.parse("worker state", string(b))
	*s = WorkerState(v)
	return err
}

// Phase is where a partition stands in its lifecycle (docs/protocol.md).
type Phase uint8

// Partition phases.
const (
	// PhaseUnassigned: no owner. Claim assigns one.
	PhaseUnassigned Phase = 1 + iota
	// PhaseActivating: the owner was just claimed or committed and has not yet
	// reported that it resumed after ResumeAfter.
	PhaseActivating
	// PhaseActive: the owner is processing.
	PhaseActive
	// PhasePreparing: a handoff is prepared; the owner must stop, finish in-flight
	// work and report Drained. It is still the owner.
	PhasePreparing
	// PhaseDrained: the owner reported through_seq; the handoff may commit.
	PhaseDrained
	// PhaseOrphaned: the owner left without draining. Only a forced commit (which
	// resumes from the last checkpoint) moves the partition on.
	PhaseOrphaned
)

var phaseText = enumText{"", "unassigned", "activating", "active", "preparing", "drained", "orphaned"}

func (p Phase) String() string { return phaseText.name(uint8(p)) }

// MarshalText implements encoding.TextMarshaler.
func (p Phase) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Phase) UnmarshalText(b []byte) error {
	v, err := phaseText.parse("phase", string(b))
	*p = Phase(v)
	return err
}

// LeftReason says why a worker left.
type LeftReason uint8

// Reasons for WorkerLeft.
const (
	// LeftLeave: the worker left gracefully after handing everything off.
	LeftLeave LeftReason = 1 + iota
	// LeftExpired: the worker's session expired (no heartbeat within its TTL).
	LeftExpired
	// LeftRemoved: an operator removed the worker.
	LeftRemoved
	// LeftReplaced: a new incarnation of the same worker id registered.
	LeftReplaced
)

var leftReasonText = enumText{"", "leave", "expired", "removed", "replaced"}

func (r LeftReason) String() string { return leftReasonText.name(uint8(r)) }

// MarshalText implements encoding.TextMarshaler.
func (r LeftReason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *LeftReason) UnmarshalText(b []byte) error {
	v, err := leftReasonText.parse("left reason", string(b))
	*r = LeftReason(v)
	return err
}

// ForceReason says why a commit skipped the drain.
type ForceReason uint8

// Reasons for a forced commit (invariant 3).
const (
	// ForceOwnerLeft: the old owner is gone (its WorkerLeft precedes the commit).
	ForceOwnerLeft ForceReason = 1 + iota
	// ForceDrainDeadline: the handoff's drain deadline passed without a drain.
	ForceDrainDeadline
	// ForceOperator: an operator forced the move explicitly.
	ForceOperator
)

var forceReasonText = enumText{"", "owner_left", "drain_deadline", "operator"}

func (r ForceReason) String() string { return forceReasonText.name(uint8(r)) }

// MarshalText implements encoding.TextMarshaler.
func (r ForceReason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *ForceReason) UnmarshalText(b []byte) error {
	v, err := forceReasonText.parse("force reason", string(b))
	*r = ForceReason(v)
	return err
}
