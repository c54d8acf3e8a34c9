package fsm

import (
	"fmt"
	"slices"
	"strconv"
)

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
	EvEntryRejected
	evTypeEnd
)

// eventTypes is the one table of event tags: each tag's name and the zero
// body its decoder fills. The rest of an event (fields, encoding, format) is
// its body type's walk method.
var eventTypes = [evTypeEnd]struct {
	name string
	zero EventBody
}{
	EvWorkerJoined:       {"WorkerJoined", WorkerJoined{}},
	EvLeaveStarted:       {"LeaveStarted", LeaveStarted{}},
	EvWorkerLeft:         {"WorkerLeft", WorkerLeft{}},
	EvWorkerCordoned:     {"WorkerCordoned", WorkerCordoned{}},
	EvPartitionsDeclared: {"PartitionsDeclared", PartitionsDeclared{}},
	EvPartitionRemoved:   {"PartitionRemoved", PartitionRemoved{}},
	EvClaimed:            {"Claimed", Claimed{}},
	EvPrepared:           {"Prepared", Prepared{}},
	EvDrained:            {"Drained", Drained{}},
	EvCommitted:          {"Committed", Committed{}},
	EvActivated:          {"Activated", Activated{}},
	EvAborted:            {"Aborted", Aborted{}},
	EvReleased:           {"Released", Released{}},
	EvCheckpointed:       {"Checkpointed", Checkpointed{}},
	EvPartitionPinned:    {"PartitionPinned", PartitionPinned{}},
	EvRebalanceSet:       {"RebalanceSet", RebalanceSet{}},
	EvNodeRegistered:     {"NodeRegistered", NodeRegistered{}},
	EvNodeRemoved:        {"NodeRemoved", NodeRemoved{}},
	EvEntryRejected:      {"EntryRejected", EntryRejected{}},
}

func (t EventType) String() string {
	if t == 0 || t >= evTypeEnd {
		return "invalid(" + strconv.Itoa(int(t)) + ")"
	}
	return eventTypes[t].name
}

// MarshalText implements encoding.TextMarshaler.
func (t EventType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *EventType) UnmarshalText(b []byte) error {
	for i := EventType(1); i < evTypeEnd; i++ {
		if eventTypes[i].name == string(b) {
			*t = i
			return nil
		}
	}
	*t = 0
	return fmt.Errorf("fsm: unknown event type %q", b)
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

// NewEventBody returns the zero body of event type t (for decoders of other
// encodings, such as the API's JSON), or false for an unknown type.
func NewEventBody(t EventType) (EventBody, bool) {
	if t == 0 || t >= evTypeEnd {
		return nil, false
	}
	return eventTypes[t].zero, true
}

// Meta is what every event carries about the command that produced it.
type Meta struct {
	Index     RaftIndex `json:"index"`                // raft index of the command's log entry
	Seq       uint32    `json:"seq"`                  // position of the event among its entry's events
	Term      uint64    `json:"term"`                 // raft term of the entry
	Time      int64     `json:"time"`                 // leader time of the command, Unix nanoseconds
	Actor     string    `json:"actor,omitempty"`      // who asked (see Header.Actor)
	Cause     string    `json:"cause,omitempty"`      // why (see Header.Cause)
	RequestID string    `json:"request_id,omitempty"` // the command's request id, if any
}

func (m *Meta) walk(w *walker) {
	w.u64("index", (*uint64)(&m.Index), optional|hidden)
	w.u32("seq", &m.Seq, optional|hidden)
	w.u64("term", &m.Term, optional|hidden)
	w.nanos("time", &m.Time, 0, 0, hidden)
	w.text("actor", &m.Actor, MaxActorLen, optional|hidden)
	w.text("cause", &m.Cause, MaxCauseLen, optional|hidden)
	w.text("request_id", &m.RequestID, MaxRequestIDLen, optional|hidden)
}

// Event is one entry of the audit trail.
type Event struct {
	Meta
	Body EventBody `json:"body"`
}

// Type returns the event's type tag.
func (e Event) Type() EventType { return e.Body.Type() }

// EventBody is an event payload. The set is closed: only this package implements it.
type EventBody interface {
	Type() EventType
	// refs lists the partitions, workers and handoff the event concerns, for
	// indexing the audit log.
	refs() refs
	// walk describes the body's fields to w, in encoding order, and returns
	// the body (decoded, when w decodes).
	walk(w *walker) EventBody
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
	Worker      WorkerID    `json:"worker"`
	Incarnation Incarnation `json:"incarnation"`
	Weight      uint32      `json:"weight,omitempty"`
	Labels      []Label     `json:"labels,omitempty"`
}

func (b WorkerJoined) walk(w *walker) EventBody {
	w.worker("worker", &b.Worker, 0)
	w.incarnation("incarnation", &b.Incarnation, optional)
	w.u32("weight", &b.Weight, optional)
	w.labels("labels", &b.Labels)
	return b
}

// LeaveStarted: a worker began a graceful leave.
type LeaveStarted struct {
	Worker      WorkerID    `json:"worker"`
	Incarnation Incarnation `json:"incarnation"`
}

func (b LeaveStarted) walk(w *walker) EventBody {
	w.worker("worker", &b.Worker, 0)
	w.incarnation("incarnation", &b.Incarnation, optional)
	return b
}

// WorkerLeft: a worker is gone. Partitions it still owned are orphaned, except
// drained ones, whose handoff may still commit gracefully.
type WorkerLeft struct {
	Worker      WorkerID    `json:"worker"`
	Incarnation Incarnation `json:"incarnation"`
	Reason      LeftReason  `json:"reason"`
}

func (b WorkerLeft) walk(w *walker) EventBody {
	w.worker("worker", &b.Worker, 0)
	w.incarnation("incarnation", &b.Incarnation, optional)
	w.enum("reason", (*uint8)(&b.Reason), leftReasonText, 0)
	return b
}

// WorkerCordoned: an operator cordoned (On) or uncordoned a worker.
type WorkerCordoned struct {
	Worker WorkerID `json:"worker"`
	On     bool     `json:"on,omitempty"`
}

func (b WorkerCordoned) walk(w *walker) EventBody {
	w.worker("worker", &b.Worker, 0)
	w.flag("on", &b.On, 0)
	return b
}

// PartitionsDeclared: partitions were added.
type PartitionsDeclared struct {
	Partitions []PartitionSpec `json:"partitions,omitempty"`
}

func (b PartitionsDeclared) walk(w *walker) EventBody {
	specs(w, "partitions", &b.Partitions, nil)
	return b
}

// PartitionRemoved: a partition was removed. Owner, if any, must stop processing it.
type PartitionRemoved struct {
	Partition PartitionID `json:"partition"`
	Owner     WorkerID    `json:"owner,omitempty"`
	Epoch     Epoch       `json:"epoch"`
	// Lingerers no longer need to cover the partition.
	Lingerers []Lingerer `json:"lingerers,omitempty"`
}

func (b PartitionRemoved) walk(w *walker) EventBody {
	w.partition("partition", &b.Partition, 0)
	w.worker("owner", &b.Owner, optional|omitZero)
	w.epoch("epoch", &b.Epoch, optional)
	w.lingerers("lingerer", &b.Lingerers)
	return b
}

// Claimed: an unassigned partition got an owner.
type Claimed struct {
	Partition   PartitionID `json:"partition"`
	Worker      WorkerID    `json:"worker"`
	Epoch       Epoch       `json:"epoch"`
	ResumeAfter StreamSeq   `json:"resume_after"`
}

func (b Claimed) walk(w *walker) EventBody {
	w.partition("partition", &b.Partition, 0)
	w.worker("worker", &b.Worker, 0)
	w.epoch("epoch", &b.Epoch, optional)
	w.seq("resume_after", &b.ResumeAfter, optional)
	return b
}

// Prepared: a handoff started. The owner must drain.
type Prepared struct {
	Handoff   HandoffID   `json:"handoff,omitempty"`
	Partition PartitionID `json:"partition"`
	From      WorkerID    `json:"from"`
	To        WorkerID    `json:"to"` // empty: release once drained
	Epoch     Epoch       `json:"epoch"`
	Reason    string      `json:"reason,omitempty"`
	Deadline  int64       `json:"deadline,omitempty"`
}

func (b Prepared) walk(w *walker) EventBody {
	w.handoff("handoff", &b.Handoff, optional)
	w.partition("partition", &b.Partition, 0)
	w.worker("from", &b.From, 0)
	w.worker("to", &b.To, optional|asRelease)
	w.epoch("epoch", &b.Epoch, optional)
	w.text("reason", &b.Reason, MaxReasonLen, optional|omitZero)
	w.nanos("deadline", &b.Deadline, 0, 0, omitZero)
	return b
}

// Drained: the owner finished every message with sequence <= ThroughSeq and stopped.
type Drained struct {
	Handoff    HandoffID   `json:"handoff,omitempty"`
	Partition  PartitionID `json:"partition"`
	From       WorkerID    `json:"from"`
	Epoch      Epoch       `json:"epoch"`
	ThroughSeq StreamSeq   `json:"through_seq"`
}

func (b Drained) walk(w *walker) EventBody {
	w.handoff("handoff", &b.Handoff, optional)
	w.partition("partition", &b.Partition, 0)
	w.worker("from", &b.From, 0)
	w.epoch("epoch", &b.Epoch, optional)
	w.seq("through_seq", &b.ThroughSeq, optional)
	return b
}

// Committed: ownership moved to To under a new epoch; To resumes after ResumeAfter.
type Committed struct {
	Handoff     HandoffID   `json:"handoff,omitempty"`
	Partition   PartitionID `json:"partition"`
	From        WorkerID    `json:"from"`
	To          WorkerID    `json:"to"`
	Epoch       Epoch       `json:"epoch"`
	ResumeAfter StreamSeq   `json:"resume_after"`
	Forced      bool        `json:"forced,omitempty"`
	ForceReason ForceReason `json:"force_reason,omitempty"` // set when Forced
}

func (b Committed) walk(w *walker) EventBody {
	w.handoff("handoff", &b.Handoff, optional)
	w.partition("partition", &b.Partition, 0)
	w.worker("from", &b.From, optional)
	w.worker("to", &b.To, 0)
	w.epoch("epoch", &b.Epoch, optional)
	w.seq("resume_after", &b.ResumeAfter, optional)
	w.flag("forced", &b.Forced, hidden)
	w.enum("forced", (*uint8)(&b.ForceReason), forceReasonText, optional|omitZero)
	return b
}

// Activated: the owner resumed the partition.
type Activated struct {
	Partition PartitionID `json:"partition"`
	Worker    WorkerID    `json:"worker"`
	Epoch     Epoch       `json:"epoch"`
	// Lingerers are the earlier owners that may now stop covering the
	// partition (and whose assignments change because of it).
	Lingerers []Lingerer `json:"lingerers,omitempty"`
}

func (b Activated) walk(w *walker) EventBody {
	w.partition("partition", &b.Partition, 0)
	w.worker("worker", &b.Worker, 0)
	w.epoch("epoch", &b.Epoch, optional)
	w.lingerers("lingerer", &b.Lingerers)
	return b
}

// Aborted: a pending handoff was cancelled.
type Aborted struct {
	Handoff   HandoffID   `json:"handoff,omitempty"`
	Partition PartitionID `json:"partition"`
	From      WorkerID    `json:"from"`
	To        WorkerID    `json:"to"`
	Reason    string      `json:"reason,omitempty"`
}

func (b Aborted) walk(w *walker) EventBody {
	w.handoff("handoff", &b.Handoff, optional)
	w.partition("partition", &b.Partition, 0)
	w.worker("from", &b.From, optional)
	w.worker("to", &b.To, optional|asRelease)
	w.text("reason", &b.Reason, MaxReasonLen, optional|omitZero)
	return b
}

// Released: the owner gave the partition up; it is unassigned and its checkpoint
// is ThroughSeq.
type Released struct {
	Partition  PartitionID `json:"partition"`
	Worker     WorkerID    `json:"worker"`
	Epoch      Epoch       `json:"epoch"`
	ThroughSeq StreamSeq   `json:"through_seq"`
}

func (b Released) walk(w *walker) EventBody {
	w.partition("partition", &b.Partition, 0)
	w.worker("worker", &b.Worker, 0)
	w.epoch("epoch", &b.Epoch, optional)
	w.seq("through_seq", &b.ThroughSeq, optional)
	return b
}

// Checkpointed: the owner finished every message of the partition with sequence
// <= Seq. Checkpoints are high-volume; the audit log keeps only the latest per
// partition.
type Checkpointed struct {
	Partition PartitionID `json:"partition"`
	Worker    WorkerID    `json:"worker"`
	Epoch     Epoch       `json:"epoch"`
	Seq       StreamSeq   `json:"checkpoint_seq"`
}

func (b Checkpointed) walk(w *walker) EventBody {
	w.partition("partition", &b.Partition, 0)
	w.worker("worker", &b.Worker, 0)
	w.epoch("epoch", &b.Epoch, optional)
	w.seq("seq", &b.Seq, optional)
	return b
}

// PartitionPinned: a partition was pinned to Worker, or unpinned (Worker empty).
type PartitionPinned struct {
	Partition PartitionID `json:"partition"`
	Worker    WorkerID    `json:"worker"`
}

func (b PartitionPinned) walk(w *walker) EventBody {
	w.partition("partition", &b.Partition, 0)
	w.worker("worker", &b.Worker, optional)
	return b
}

// RebalanceSet: voluntary rebalancing was paused or resumed.
type RebalanceSet struct {
	Paused bool `json:"paused,omitempty"`
}

func (b RebalanceSet) walk(w *walker) EventBody {
	w.flag("paused", &b.Paused, 0)
	return b
}

// NodeRegistered: a claim-store node's API address was recorded.
type NodeRegistered struct {
	Node    string `json:"node,omitempty"`
	APIAddr string `json:"api_addr,omitempty"`
}

func (b NodeRegistered) walk(w *walker) EventBody {
	w.node("node", &b.Node, 0)
	w.text("api_addr", &b.APIAddr, MaxAddrLen, 0)
	return b
}

// NodeRemoved: a claim-store node left the cluster.
type NodeRemoved struct {
	Node string `json:"node,omitempty"`
}

func (b NodeRemoved) walk(w *walker) EventBody {
	w.node("node", &b.Node, 0)
	return b
}

// EntryRejected: a committed entry was refused before the state machine's
// rules saw it, because it could not be decoded or failed the checks of
// Config.CheckCommand. Proposers check every command first, so this means a
// proposer skipped the check (a bug, a peer writing to the raft log directly,
// or a build with other limits). It changes nothing, the same way on every
// replica.
type EntryRejected struct {
	// Command is the entry's command type, 0 when not even that could be read.
	Command CommandType `json:"command,omitempty"`
	Code    Code        `json:"code"`
	Reason  string      `json:"reason"`
}

func (b EntryRejected) walk(w *walker) EventBody {
	w.enum("command", (*uint8)(&b.Command), commandNames{}, optional)
	w.text("code", (*string)(&b.Code), maxCodeLen, 0)
	w.text("reason", &b.Reason, MaxCauseLen, 0)
	return b
}

func (EntryRejected) Type() EventType { return EvEntryRejected }
func (EntryRejected) refs() refs      { return refs{} }

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
	return refs{partitions: one(e.Partition), workers: withLingerers(workers(e.Owner), e.Lingerers)}
}

// withLingerers adds the lingerers' workers to ws, without repeats.
func withLingerers(ws []WorkerID, ls []Lingerer) []WorkerID {
	for _, l := range ls {
		if !slices.Contains(ws, l.Worker) {
			ws = append(ws, l.Worker)
		}
	}
	return ws
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
func (e Activated) refs() refs {
	return refs{partitions: one(e.Partition), workers: withLingerers(workers(e.Worker), e.Lingerers)}
}
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
