package core

import (
	"time"

	"github.com/batonhq/baton/fsm"
)

// Action is something the core asks the applier's executors to do. Every
// action is asynchronous: its outcome, if the core needs it, comes back as an
// input (HandlerDone, FilterDone, ReadDone, ReportDone, CleanDone, LeaveDone).
type Action interface{ action() }

// Settle is how a message is settled with JetStream.
type Settle uint8

const (
	// SettleNone leaves the message alone (a catch-up read of a Limits or
	// Interest stream: nothing to settle).
	SettleNone Settle = iota
	// SettleAck acknowledges a consumer delivery.
	SettleAck
	// SettleDoubleAck acknowledges a consumer delivery and waits for the
	// server's confirmation (WorkQueue and Interest: a lost ack would leave
	// the message stored behind the next owner's resume point).
	SettleDoubleAck
	// SettleDelete deletes the message from the stream (a catch-up read of a
	// WorkQueue stream, which no consumer delivered).
	SettleDelete
	// SettleTerm terminates a consumer delivery (dead-lettered).
	SettleTerm
)

func (s Settle) String() string {
	switch s {
	case SettleNone:
		return "none"
	case SettleAck:
		return "ack"
	case SettleDoubleAck:
		return "double_ack"
	case SettleDelete:
		return "delete"
	case SettleTerm:
		return "term"
	}
	return "invalid"
}

// Dispatch runs the handler on one message of a partition, then settles it:
// with Success once processed, with DeadLetter after the dead-letter callback.
// The executor must check the lease (Core.Lease) right before calling the
// handler and skip the call past it (reporting HandlerDone with processed
// false): the core decided at dispatch time, and a process can freeze between
// the decision and the call.
type Dispatch struct {
	Partition  fsm.PartitionID
	Epoch      fsm.Epoch
	Gen        uint64
	Msg        *Delivery
	Success    Settle
	DeadLetter Settle
}

// Cancel cancels the context of the handler running for (Partition, Gen).
type Cancel struct {
	Partition fsm.PartitionID
	Gen       uint64
}

// Ack acknowledges a consumer delivery that needs no handler: a duplicate of
// a processed message, or (Limits) a message of a partition not processed here.
type Ack struct{ Msg *Delivery }

// SetFilter makes the worker's durable consumer (of incarnation Inc) filter
// exactly Subjects. An empty list means "no consumer needed": it is paused or
// deleted (EmptyPolicy), never given an empty filter. The executor applies the
// latest SetFilter it has, so several coalesce into one update, and answers
// FilterDone with the version it applied. Urgent ones complete a handoff and
// must not wait for a coalescing window.
type SetFilter struct {
	Version  uint64
	Inc      fsm.Incarnation
	Subjects []string
	Urgent   bool
	// Verify asks the executor to read the consumer back even if it believes
	// it is in line (after a stuck phase or pull-loop trouble).
	Verify bool
}

// Read asks for the stored messages of a partition's subjects after After, in
// stream order, at most Limit of them (a catch-up read). "None" must be the
// stream leader's word.
type Read struct {
	Partition fsm.PartitionID
	Gen       uint64
	Subjects  []string
	After     fsm.StreamSeq
	Limit     int
}

// ReportDrained sends finished drains to the claim store.
type ReportDrained struct {
	Inc   fsm.Incarnation
	Items []fsm.DrainItem
}

// ReportActivated sends finished catch-ups to the claim store.
type ReportActivated struct {
	Inc   fsm.Incarnation
	Items []fsm.ActivateItem
}

// ReportCheckpoints sends progress to the claim store.
type ReportCheckpoints struct {
	Inc   fsm.Incarnation
	Items []fsm.CheckpointItem
}

// Clean removes a partition's subjects from the consumers of its gone earlier
// owners (deleting a consumer left with nothing).
type Clean struct {
	Partition fsm.PartitionID
	Epoch     fsm.Epoch
	Subjects  []string
	Lingerers []fsm.Lingerer
}

// Leave ends the session gracefully (Close).
type Leave struct{ Inc fsm.Incarnation }

// Finish is the end of a graceful leave: nothing is owned and nobody needs
// this worker's coverage; the consumer is deleted and Close may return.
type Finish struct{ Inc fsm.Incarnation }

// Notice reports something worth a log line or a metric; it needs no answer.
type Notice struct {
	Kind      NoticeKind
	Partition fsm.PartitionID
	Epoch     fsm.Epoch
	Phase     Phase
	Took      time.Duration
	Err       error
	// Seq is the delivery's stream sequence (duplicates, strays).
	Seq fsm.StreamSeq
}

// NoticeKind says what a Notice is about.
type NoticeKind uint8

const (
	// NoticeFenced: the lease ran out; nothing is dispatched.
	NoticeFenced NoticeKind = 1 + iota
	// NoticeUnfenced: the session was renewed or a new incarnation started.
	NoticeUnfenced
	// NoticeNewIncarnation: the previous incarnation's partitions were dropped.
	NoticeNewIncarnation
	// NoticeCaughtUp: commit seen → everything up to the catch-up's end processed.
	NoticeCaughtUp
	// NoticeDrained: prepare seen → drained.
	NoticeDrained
	// NoticeActivated: the activation report was accepted (Took: from commit seen).
	NoticeActivated
	// NoticeStuck: a partition stayed in a phase too long; its step is retried.
	NoticeStuck
	// NoticeDuplicate: a delivery of a message already dispatched.
	NoticeDuplicate
	// NoticeStray: a delivery of a partition not processed here.
	NoticeStray
	// NoticeRefused: a report was refused for good.
	NoticeRefused
	// NoticeDrainTimeout: the in-flight handler of a drain was cancelled.
	NoticeDrainTimeout
)

func (Dispatch) action()          {}
func (Cancel) action()            {}
func (Ack) action()               {}
func (SetFilter) action()         {}
func (Read) action()              {}
func (ReportDrained) action()     {}
func (ReportActivated) action()   {}
func (ReportCheckpoints) action() {}
func (Clean) action()             {}
func (Leave) action()             {}
func (Finish) action()            {}
func (Notice) action()            {}
