package fsm

// EventType tags an event body. Tags are never reused.
type EventType uint8

// Event types: the audit trail's vocabulary (docs/protocol.md lists each one's
// fields and meaning).
const (
	EvWorkerJoined EventType = 1 + iota
	EvLeaveStarted
	EvWorkerLeft
	EvWorkerCordoned
	EvPartitionsDeclared
	EvPartitionRemoved
	EvClaimed
	EvPrepared
	EvDrained
	EvCommitted
	EvActivated
	EvAborted
	EvReleased
	EvCheckpointed
	EvPartitionPinned
	EvRebalanceSet
	EvNodeRegistered
	EvNodeRemoved
	evTypeEnd
)

var eventTypeText = enumText{"", "WorkerJoined", "LeaveStarted", "WorkerLeft", "WorkerCordoned",
	"PartitionsDeclared", "PartitionRemoved", "Claimed", "Prepared", "Drained", "Committed",
	"Activated", "Aborted", "Released", "Checkpointed", "PartitionPinned", "RebalanceSet",
	"NodeRegistered", "NodeRemoved"}

func (t EventType) String() string { return eventTypeText.name(uint8(t)) }

// MarshalText implements encoding.TextMarshaler.
func (t EventType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *EventType) UnmarshalText(b []byte) error {
	v, err := eventTypeText.parse("event type", string(b))
	*t = EventType(v)
	return err
}

// ParseEventType parses an event type name such as "Committed".
func ParseEventType(s string) (EventType, error) {
	var t EventType
	err := t.UnmarshalText([]byte(s))
	return t, err
}

// EventTypes lists every event type in tag order.
func EventTypes() []EventType {
	out := make([]EventType, 0, evTypeEnd-1)
	for t := EventType(1); t < evTypeEnd; t++ {
		out = append(out, t)
	}
	return out
}

// Meta is what every event carries about the command that produced it.
type Meta struct {
	Index     RaftIndex // raft index of the command's log entry
	Seq       uint32    // position of the event among its entry's events
	Term      uint64    // raft term of the entry
	Time      int64     // leader time of the command, Unix nanoseconds
	Actor     string    // who asked (see Header.Actor)
	Cause     string    // why (see Header.Cause)
	RequestID string    // the command's request id, if any
}

// Event is one entry of the audit trail.
type Event struct {
	Meta
	Body EventBody
}

// Type returns the event's type tag.
func (e Event) Type() EventType { return e.Body.Type() }

// EventBody is an event payload. The set is closed: only this package implements it.
type EventBody interface {
	Type() EventType
	// refs lists the partitions, workers and handoff the event concerns, for
	// indexing the audit log.
	refs() refs
}

// refs is what an event is about.
type refs struct {
	partitions []PartitionID
	workers    []WorkerID
	handoff    HandoffID
}

// Partitions returns the partitions an event concerns (for audit indexes).
func (e Event) Partitions() []PartitionID { return e.Body.refs().partitions }

// Workers returns the workers an event concerns (for audit indexes).
func (e Event) Workers() []WorkerID { return e.Body.refs().workers }

// Handoff returns the handoff an event concerns, or 0.
func (e Event) Handoff() HandoffID { return e.Body.refs().handoff }

// WorkerJoined: a worker registered; Incarnation is this index.
type WorkerJoined struct {
	Worker      WorkerID
	Incarnation Incarnation
	Weight      uint32
	Labels      []Label
}

// LeaveStarted: a worker began a graceful leave.
type LeaveStarted struct {
	Worker      WorkerID
	Incarnation Incarnation
}

// WorkerLeft: a worker is gone. Partitions it still owned are orphaned, except
// drained ones, whose handoff may still commit gracefully.
type WorkerLeft struct {
	Worker      WorkerID
	Incarnation Incarnation
	Reason      LeftReason
}

// WorkerCordoned: an operator cordoned (On) or uncordoned a worker.
type WorkerCordoned struct {
	Worker WorkerID
	On     bool
}

// PartitionsDeclared: partitions were added.
type PartitionsDeclared struct {
	Partitions []PartitionSpec
}

// PartitionRemoved: a partition was removed. Owner, if any, must stop processing it.
type PartitionRemoved struct {
	Partition PartitionID
	Owner     WorkerID
	Epoch     Epoch
}

// Claimed: an unassigned partition got an owner.
type Claimed struct {
	Partition   PartitionID
	Worker      WorkerID
	Epoch       Epoch
	ResumeAfter StreamSeq
}

// Prepared: a handoff started. The owner must drain.
type Prepared struct {
	Handoff   HandoffID
	Partition PartitionID
	From      WorkerID
	To        WorkerID // empty: release once drained
	Epoch     Epoch
	Reason    string
	Deadline  int64
}

// Drained: the owner finished every message with sequence <= ThroughSeq and stopped.
type Drained struct {
	Handoff    HandoffID
	Partition  PartitionID
	From       WorkerID
	Epoch      Epoch
	ThroughSeq StreamSeq
}

// Committed: ownership moved to To under a new epoch; To resumes after ResumeAfter.
type Committed struct {
	Handoff     HandoffID
	Partition   PartitionID
	From        WorkerID
	To          WorkerID
	Epoch       Epoch
	ResumeAfter StreamSeq
	Forced      bool
	ForceReason ForceReason // set when Forced
}

// Activated: the owner resumed the partition.
type Activated struct {
	Partition PartitionID
	Worker    WorkerID
	Epoch     Epoch
}

// Aborted: a pending handoff was cancelled.
type Aborted struct {
	Handoff   HandoffID
	Partition PartitionID
	From      WorkerID
	To        WorkerID
	Reason    string
}

// Released: the owner gave the partition up; it is unassigned and its checkpoint
// is ThroughSeq.
type Released struct {
	Partition  PartitionID
	Worker     WorkerID
	Epoch      Epoch
	ThroughSeq StreamSeq
}

// Checkpointed: the owner finished every message of the partition with sequence
// <= Seq. Checkpoints are high-volume; the audit log keeps only the latest per
// partition.
type Checkpointed struct {
	Partition PartitionID
	Worker    WorkerID
	Epoch     Epoch
	Seq       StreamSeq
}

// PartitionPinned: a partition was pinned to Worker, or unpinned (Worker empty).
type PartitionPinned struct {
	Partition PartitionID
	Worker    WorkerID
}

// RebalanceSet: voluntary rebalancing was paused or resumed.
type RebalanceSet struct {
	Paused bool
}

// NodeRegistered: a claim-store node's API address was recorded.
type NodeRegistered struct {
	Node    string
	APIAddr string
}

// NodeRemoved: a claim-store node left the cluster.
type NodeRemoved struct {
	Node string
}

func (NodeRegistered) Type() EventType { return EvNodeRegistered }
func (NodeRemoved) Type() EventType    { return EvNodeRemoved }
func (NodeRegistered) refs() refs      { return refs{} }
func (NodeRemoved) refs() refs         { return refs{} }

func (WorkerJoined) Type() EventType       { return EvWorkerJoined }
func (LeaveStarted) Type() EventType       { return EvLeaveStarted }
func (WorkerLeft) Type() EventType         { return EvWorkerLeft }
func (WorkerCordoned) Type() EventType     { return EvWorkerCordoned }
func (PartitionsDeclared) Type() EventType { return EvPartitionsDeclared }
func (PartitionRemoved) Type() EventType   { return EvPartitionRemoved }
func (Claimed) Type() EventType            { return EvClaimed }
func (Prepared) Type() EventType           { return EvPrepared }
func (Drained) Type() EventType            { return EvDrained }
func (Committed) Type() EventType          { return EvCommitted }
func (Activated) Type() EventType          { return EvActivated }
func (Aborted) Type() EventType            { return EvAborted }
func (Released) Type() EventType           { return EvReleased }
func (Checkpointed) Type() EventType       { return EvCheckpointed }
func (PartitionPinned) Type() EventType    { return EvPartitionPinned }
func (RebalanceSet) Type() EventType       { return EvRebalanceSet }

func workers(ws ...WorkerID) []WorkerID {
	out := ws[:0:0]
	for _, w := range ws {
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

func one(p PartitionID) []PartitionID { return []PartitionID{p} }

func (e WorkerJoined) refs() refs   { return refs{workers: workers(e.Worker)} }
func (e LeaveStarted) refs() refs   { return refs{workers: workers(e.Worker)} }
func (e WorkerLeft) refs() refs     { return refs{workers: workers(e.Worker)} }
func (e WorkerCordoned) refs() refs { return refs{workers: workers(e.Worker)} }
func (e PartitionsDeclared) refs() refs {
	ps := make([]PartitionID, len(e.Partitions))
	for i, s := range e.Partitions {
		ps[i] = s.ID
	}
	return refs{partitions: ps}
}
func (e PartitionRemoved) refs() refs {
	return refs{partitions: one(e.Partition), workers: workers(e.Owner)}
}
func (e Claimed) refs() refs { return refs{partitions: one(e.Partition), workers: workers(e.Worker)} }
func (e Prepared) refs() refs {
	return refs{partitions: one(e.Partition), workers: workers(e.From, e.To), handoff: e.Handoff}
}
func (e Drained) refs() refs {
	return refs{partitions: one(e.Partition), workers: workers(e.From), handoff: e.Handoff}
}
func (e Committed) refs() refs {
	return refs{partitions: one(e.Partition), workers: workers(e.From, e.To), handoff: e.Handoff}
}
func (e Activated) refs() refs { return refs{partitions: one(e.Partition), workers: workers(e.Worker)} }
func (e Aborted) refs() refs {
	return refs{partitions: one(e.Partition), workers: workers(e.From, e.To), handoff: e.Handoff}
}
func (e Released) refs() refs { return refs{partitions: one(e.Partition), workers: workers(e.Worker)} }
func (e Checkpointed) refs() refs {
	return refs{partitions: one(e.Partition), workers: workers(e.Worker)}
}
func (e PartitionPinned) refs() refs {
	return refs{partitions: one(e.Partition), workers: workers(e.Worker)}
}
func (e RebalanceSet) refs() refs { return refs{} }
