package fsm

import (
	"fmt"
	"math"
	"strconv"
)

// CommandType tags a command body in its binary encoding. Tags are never reused:
// a decoder that meets a tag it does not know reports ErrUnknownCommand instead of
// guessing.
type CommandType uint8

// Command types. New ones are appended; existing values never change.
const (
	CmdJoin CommandType = 1 + iota
	CmdLeave
	CmdExpire
	CmdRemoveWorker
	CmdDeclare
	CmdRemovePartitions
	CmdClaim
	CmdPrepare
	CmdDrain
	CmdCommit
	CmdForceCommit
	CmdActivate
	CmdAbort
	CmdRelease
	CmdCheckpoint
	CmdCordon
	CmdPin
	CmdSetRebalance
	CmdRegisterNode
	CmdRemoveNode
	CmdMarkDigest
	cmdTypeEnd // one past the last known type
)

// commandTypes is the one table of command tags: each tag's wire name and the
// zero body its decoder fills. Everything else about a command (its fields,
// limits, checks, encoding and format) is its body type's walk method, below.
var commandTypes = [cmdTypeEnd]struct {
	name string
	zero Body
}{
	CmdJoin:             {"join", Join{}},
	CmdLeave:            {"leave", Leave{}},
	CmdExpire:           {"expire", Expire{}},
	CmdRemoveWorker:     {"remove_worker", RemoveWorker{}},
	CmdDeclare:          {"declare", Declare{}},
	CmdRemovePartitions: {"remove_partitions", RemovePartitions{}},
	CmdClaim:            {"claim", Claim{}},
	CmdPrepare:          {"prepare", Prepare{}},
	CmdDrain:            {"drain", DrainReport{}},
	CmdCommit:           {"commit", Commit{}},
	CmdForceCommit:      {"force_commit", ForceCommit{}},
	CmdActivate:         {"activate", Activate{}},
	CmdAbort:            {"abort", Abort{}},
	CmdRelease:          {"release", Release{}},
	CmdCheckpoint:       {"checkpoint", Checkpoint{}},
	CmdCordon:           {"cordon", Cordon{}},
	CmdPin:              {"pin", Pin{}},
	CmdSetRebalance:     {"set_rebalance", SetRebalance{}},
	CmdRegisterNode:     {"register_node", RegisterNode{}},
	CmdRemoveNode:       {"remove_node", RemoveNode{}},
	CmdMarkDigest:       {"mark_digest", MarkDigest{}},
}

func (t CommandType) String() string {
	if t == 0 || t >= cmdTypeEnd {
		return "invalid(" + strconv.Itoa(int(t)) + ")"
	}
	return commandTypes[t].name
}

// MarshalText implements encoding.TextMarshaler.
func (t CommandType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *CommandType) UnmarshalText(b []byte) error {
	for i := CommandType(1); i < cmdTypeEnd; i++ {
		if commandTypes[i].name == string(b) {
			*t = i
			return nil
		}
	}
	*t = 0
	return fmt.Errorf("fsm: unknown command type %q", b)
}

// CommandTypes lists every command type in tag order.
func CommandTypes() []CommandType {
	out := make([]CommandType, 0, cmdTypeEnd-1)
	for t := CommandType(1); t < cmdTypeEnd; t++ {
		out = append(out, t)
	}
	return out
}

// Header carries what every command needs besides its body. The proposer stamps it:
// the state machine never reads a clock.
type Header struct {
	// RequestID makes the command idempotent: a second command with the same id
	// returns the first one's result and emits nothing. Empty means no dedupe.
	RequestID string `json:"request_id,omitempty"`
	// Actor is who asked: "controller", "worker:w1", "operator:alice".
	Actor string `json:"actor,omitempty"`
	// Cause says why: the rule or operator verb behind the command.
	Cause string `json:"cause,omitempty"`
	// Time is the leader's wall clock when it proposed, in Unix nanoseconds.
	Time int64 `json:"time"`
	// Digest, when non-zero, identifies the request behind the command for
	// the request-id dedupe in place of a hash of the body. The API sets it
	// to a hash of what the client sent, so that a retry whose command is
	// built afresh from the state (a move reads the partition's epoch) is
	// still recognised as the same request, and another request reusing the
	// id is not.
	Digest uint64 `json:"digest,omitempty"`
}

func (h *Header) walk(w *walker) {
	w.requestID("request_id", &h.RequestID)
	w.text("actor", &h.Actor, MaxActorLen, optional|omitZero)
	w.text("cause", &h.Cause, MaxCauseLen, optional|omitZero)
	w.nanos("time", &h.Time, 0, math.MaxInt64, hidden)
}

// Command is one state machine input: a header and exactly one body.
type Command struct {
	Header
	Body Body `json:"body"`
}

// String renders a command as "type key=value ...".
func (c Command) String() string {
	if c.Body == nil {
		return "<nil>"
	}
	return formatWalk(c.Body.Type().String(), func(w *walker) { c.Body.walk(w) })
}

// Body is a command payload. The set of bodies is closed: only this package
// implements Body.
type Body interface {
	// Type returns the command's type tag.
	Type() CommandType
	// items is the number of per-item results a batch command produces (0 for
	// single commands).
	items() int
	// walk describes the body's fields to w, in encoding order, and returns
	// the body (decoded, when w decodes).
	walk(w *walker) Body
}

// maxItems is Config.MaxItems, the bound on a batch command's items.
func maxItems(c *Config) int { return c.MaxItems }

// Join registers a worker, or starts a new incarnation of one. If the worker is
// already active or leaving, Replace must be set: the old incarnation then leaves
// (reason replaced) and its partitions are orphaned, to be force-committed from
// their last checkpoint (possibly to the new incarnation).
type Join struct {
	Worker  WorkerID `json:"worker"`
	Weight  uint32   `json:"weight,omitempty"` // >= 1; 0 means 1
	Labels  []Label  `json:"labels,omitempty"`
	Replace bool     `json:"replace,omitempty"`
}

func (Join) Type() CommandType { return CmdJoin }
func (Join) items() int        { return 0 }
func (b Join) walk(w *walker) Body {
	w.worker("worker", &b.Worker, 0)
	w.weight("weight", &b.Weight)
	w.labels("labels", &b.Labels)
	w.flag("replace", &b.Replace, omitZero)
	return b
}

// Label is one key=value pair describing a worker (zone, host, ...).
type Label struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Leave starts a graceful leave: the worker receives nothing new and goes once its
// partitions are handed off. A worker that owns nothing leaves at once.
type Leave struct {
	Worker      WorkerID    `json:"worker"`
	Incarnation Incarnation `json:"incarnation"`
}

func (Leave) Type() CommandType { return CmdLeave }
func (Leave) items() int        { return 0 }
func (b Leave) walk(w *walker) Body {
	w.worker("worker", &b.Worker, 0)
	w.incarnation("incarnation", &b.Incarnation, optional)
	return b
}

// Expire ends a worker's session whose TTL lapsed. The leader proposes it; the
// incarnation fences an expiry decided before the worker re-registered.
type Expire struct {
	Worker      WorkerID    `json:"worker"`
	Incarnation Incarnation `json:"incarnation"`
}

func (Expire) Type() CommandType { return CmdExpire }
func (Expire) items() int        { return 0 }
func (b Expire) walk(w *walker) Body {
	w.worker("worker", &b.Worker, 0)
	w.incarnation("incarnation", &b.Incarnation, optional)
	return b
}

// RemoveWorker is an operator's removal of a worker: its partitions are orphaned.
type RemoveWorker struct {
	Worker WorkerID `json:"worker"`
}

func (RemoveWorker) Type() CommandType { return CmdRemoveWorker }
func (RemoveWorker) items() int        { return 0 }
func (b RemoveWorker) walk(w *walker) Body {
	w.worker("worker", &b.Worker, 0)
	return b
}

// PartitionSpec declares one partition.
type PartitionSpec struct {
	ID PartitionID `json:"id"`
	// Subjects are the JetStream subjects (wildcards allowed) of the partition.
	Subjects []string `json:"subjects"`
	// Weight is the partition's relative load (>= 1; 0 means 1).
	Weight uint32 `json:"weight,omitempty"`
	// StartAfter is the initial checkpoint: the first owner resumes after it.
	// 0 means from the start of the stream.
	StartAfter StreamSeq `json:"start_after,omitempty"`
}

func (p *PartitionSpec) walk(w *walker) {
	w.partition("id", &p.ID, 0)
	w.subjects("subjects", &p.Subjects)
	w.weight("weight", &p.Weight)
	w.seq("start_after", &p.StartAfter, optional)
}

// specs walks a list of partition specs.
func specs(w *walker, name string, v *[]PartitionSpec, max func(*Config) int) {
	list(w, name, v, max, func(w *walker, p *PartitionSpec) { w.nested("partition", func() { p.walk(w) }) })
}

// Declare adds partitions. Re-declaring a partition with the same spec is a no-op
// for that item; a different spec is rejected (partition_exists).
type Declare struct {
	Partitions []PartitionSpec `json:"partitions,omitempty"`
}

func (Declare) Type() CommandType { return CmdDeclare }
func (b Declare) items() int      { return len(b.Partitions) }
func (b Declare) walk(w *walker) Body {
	specs(w, "partitions", &b.Partitions, maxItems)
	return b
}

// RemovePartitions removes partitions that have no pending handoff.
type RemovePartitions struct {
	Partitions []PartitionID `json:"partitions,omitempty"`
}

func (RemovePartitions) Type() CommandType { return CmdRemovePartitions }
func (b RemovePartitions) items() int      { return len(b.Partitions) }
func (b RemovePartitions) walk(w *walker) Body {
	list(w, "partitions", &b.Partitions, maxItems, func(w *walker, p *PartitionID) { w.partition("partition", p, 0) })
	return b
}

// ClaimItem assigns an unassigned partition to an active worker.
type ClaimItem struct {
	Partition PartitionID `json:"partition"`
	Worker    WorkerID    `json:"worker"`
}

// Claim assigns unassigned partitions. Each claim bumps the partition's epoch and
// resumes after its checkpoint.
type Claim struct {
	Items []ClaimItem `json:"items,omitempty"`
}

func (Claim) Type() CommandType { return CmdClaim }
func (b Claim) items() int      { return len(b.Items) }
func (b Claim) walk(w *walker) Body {
	list(w, "items", &b.Items, maxItems, func(w *walker, it *ClaimItem) {
		w.nested("item", func() {
			w.partition("partition", &it.Partition, 0)
			w.worker("worker", &it.Worker, 0)
		})
	})
	return b
}

// PrepareItem starts a handoff of an active partition.
type PrepareItem struct {
	Partition PartitionID `json:"partition"`
	// Epoch is the partition's current epoch as the proposer saw it.
	Epoch Epoch `json:"epoch"`
	// From must be the current owner.
	From WorkerID `json:"from"`
	// To is the target worker. Empty means a release: once drained, the
	// partition becomes unassigned with its checkpoint at through_seq.
	To WorkerID `json:"to"`
	// Reason is the rule behind the move ("rebalance", "worker_leaving", ...).
	Reason string `json:"reason,omitempty"`
	// DrainTimeout (nanoseconds, 0 = none, at most MaxDrainTimeout) is how
	// long the owner has to drain: the handoff's deadline is the command's
	// leader time plus it, after which it may be force-committed. Relative,
	// so that a retried proposal carries the same body.
	DrainTimeout int64 `json:"drain_timeout,omitempty"`
}

// Prepare starts handoffs.
type Prepare struct {
	Items []PrepareItem `json:"items,omitempty"`
}

func (Prepare) Type() CommandType { return CmdPrepare }
func (b Prepare) items() int      { return len(b.Items) }
func (b Prepare) walk(w *walker) Body {
	list(w, "items", &b.Items, maxItems, func(w *walker, it *PrepareItem) {
		w.nested("item", func() {
			w.partition("partition", &it.Partition, 0)
			w.epoch("epoch", &it.Epoch, optional)
			// An empty owner is the state machine's to refuse (not_owner).
			w.worker("from", &it.From, optional)
			w.worker("to", &it.To, optional|asRelease)
			w.text("reason", &it.Reason, MaxReasonLen, optional|omitZero)
			w.nanos("drain_timeout", &it.DrainTimeout, 0, int64(MaxDrainTimeout), omitZero)
		})
	})
	return b
}

// DrainItem reports that the owner stopped processing a partition being handed
// off: every message of it with a sequence <= ThroughSeq is finished.
type DrainItem struct {
	Handoff    HandoffID   `json:"handoff,omitempty"`
	Partition  PartitionID `json:"partition"`
	Epoch      Epoch       `json:"epoch"`
	ThroughSeq StreamSeq   `json:"through_seq"`
}

// DrainReport carries a worker's reports that drains are done: a handoff's
// [Prepare] starts the drain, and this command ends it (the [Drained] events).
type DrainReport struct {
	Worker      WorkerID    `json:"worker"`
	Incarnation Incarnation `json:"incarnation"`
	Items       []DrainItem `json:"items,omitempty"`
}

func (DrainReport) Type() CommandType { return CmdDrain }
func (b DrainReport) items() int      { return len(b.Items) }
func (b DrainReport) walk(w *walker) Body {
	w.worker("worker", &b.Worker, 0)
	w.incarnation("incarnation", &b.Incarnation, optional)
	list(w, "items", &b.Items, maxItems, func(w *walker, it *DrainItem) {
		w.nested("item", func() {
			w.handoff("handoff", &it.Handoff, optional)
			w.partition("partition", &it.Partition, 0)
			w.epoch("epoch", &it.Epoch, optional)
			w.seq("through_seq", &it.ThroughSeq, optional)
		})
	})
	return b
}

// CommitItem commits a drained handoff.
type CommitItem struct {
	Handoff   HandoffID   `json:"handoff,omitempty"`
	Partition PartitionID `json:"partition"`
}

// Commit moves drained partitions to their targets: the epoch is bumped and the
// target resumes after the drained through_seq.
type Commit struct {
	Items []CommitItem `json:"items,omitempty"`
}

func (Commit) Type() CommandType { return CmdCommit }
func (b Commit) items() int      { return len(b.Items) }
func (b Commit) walk(w *walker) Body {
	list(w, "items", &b.Items, maxItems, func(w *walker, it *CommitItem) {
		w.nested("item", func() {
			w.handoff("handoff", &it.Handoff, optional)
			w.partition("partition", &it.Partition, 0)
		})
	})
	return b
}

// ForceItem moves a partition without a drain.
type ForceItem struct {
	Partition PartitionID `json:"partition"`
	// Epoch is the partition's current epoch as the proposer saw it.
	Epoch  Epoch       `json:"epoch"`
	To     WorkerID    `json:"to"`
	Reason ForceReason `json:"reason"`
}

// ForceCommit moves partitions whose owner is gone, whose drain deadline passed, or
// that an operator forces. The target resumes after the last checkpoint.
type ForceCommit struct {
	Items []ForceItem `json:"items,omitempty"`
}

func (ForceCommit) Type() CommandType { return CmdForceCommit }
func (b ForceCommit) items() int      { return len(b.Items) }
func (b ForceCommit) walk(w *walker) Body {
	list(w, "items", &b.Items, maxItems, func(w *walker, it *ForceItem) {
		w.nested("item", func() {
			w.partition("partition", &it.Partition, 0)
			w.epoch("epoch", &it.Epoch, optional)
			w.worker("to", &it.To, 0)
			w.enum("reason", (*uint8)(&it.Reason), forceReasonText, 0)
		})
	})
	return b
}

// ActivateItem reports that the owner resumed a partition.
type ActivateItem struct {
	Partition PartitionID `json:"partition"`
	Epoch     Epoch       `json:"epoch"`
}

// Activate carries a worker's activation reports.
type Activate struct {
	Worker      WorkerID       `json:"worker"`
	Incarnation Incarnation    `json:"incarnation"`
	Items       []ActivateItem `json:"items,omitempty"`
}

func (Activate) Type() CommandType { return CmdActivate }
func (b Activate) items() int      { return len(b.Items) }
func (b Activate) walk(w *walker) Body {
	w.worker("worker", &b.Worker, 0)
	w.incarnation("incarnation", &b.Incarnation, optional)
	list(w, "items", &b.Items, maxItems, func(w *walker, it *ActivateItem) {
		w.nested("item", func() {
			w.partition("partition", &it.Partition, 0)
			w.epoch("epoch", &it.Epoch, optional)
		})
	})
	return b
}

// AbortItem cancels a pending handoff.
type AbortItem struct {
	Handoff   HandoffID   `json:"handoff,omitempty"`
	Partition PartitionID `json:"partition"`
	Reason    string      `json:"reason,omitempty"`
}

// Abort cancels handoffs. Before the drain, the partition stays with its owner;
// after it, the owner has stopped for good and the partition becomes unassigned
// with its checkpoint at the drained through_seq, to be claimed afresh.
type Abort struct {
	Items []AbortItem `json:"items,omitempty"`
}

func (Abort) Type() CommandType { return CmdAbort }
func (b Abort) items() int      { return len(b.Items) }
func (b Abort) walk(w *walker) Body {
	list(w, "items", &b.Items, maxItems, func(w *walker, it *AbortItem) {
		w.nested("item", func() {
			w.handoff("handoff", &it.Handoff, optional)
			w.partition("partition", &it.Partition, 0)
			w.text("reason", &it.Reason, MaxReasonLen, optional|omitZero)
		})
	})
	return b
}

// ReleaseItem gives up an owned partition.
type ReleaseItem struct {
	Partition  PartitionID `json:"partition"`
	Epoch      Epoch       `json:"epoch"`
	ThroughSeq StreamSeq   `json:"through_seq"`
}

// Release is an owner giving partitions up: they become unassigned with the
// checkpoint at ThroughSeq.
type Release struct {
	Worker      WorkerID      `json:"worker"`
	Incarnation Incarnation   `json:"incarnation"`
	Items       []ReleaseItem `json:"items,omitempty"`
}

func (Release) Type() CommandType { return CmdRelease }
func (b Release) items() int      { return len(b.Items) }
func (b Release) walk(w *walker) Body {
	w.worker("worker", &b.Worker, 0)
	w.incarnation("incarnation", &b.Incarnation, optional)
	list(w, "items", &b.Items, maxItems, func(w *walker, it *ReleaseItem) {
		w.nested("item", func() {
			w.partition("partition", &it.Partition, 0)
			w.epoch("epoch", &it.Epoch, optional)
			w.seq("through_seq", &it.ThroughSeq, optional)
		})
	})
	return b
}

// CheckpointItem records progress on one partition.
type CheckpointItem struct {
	Partition PartitionID `json:"partition"`
	Epoch     Epoch       `json:"epoch"`
	Seq       StreamSeq   `json:"seq"`
}

// Checkpoint records progress on many partitions of one worker in one command.
type Checkpoint struct {
	Worker      WorkerID         `json:"worker"`
	Incarnation Incarnation      `json:"incarnation"`
	Items       []CheckpointItem `json:"items,omitempty"`
}

func (Checkpoint) Type() CommandType { return CmdCheckpoint }
func (b Checkpoint) items() int      { return len(b.Items) }
func (b Checkpoint) walk(w *walker) Body {
	w.worker("worker", &b.Worker, 0)
	w.incarnation("incarnation", &b.Incarnation, optional)
	list(w, "items", &b.Items, maxItems, func(w *walker, it *CheckpointItem) {
		w.nested("item", func() {
			w.partition("partition", &it.Partition, 0)
			w.epoch("epoch", &it.Epoch, optional)
			w.seq("seq", &it.Seq, optional)
		})
	})
	return b
}

// Cordon marks a worker as drained for maintenance (On) or back in service.
// A cordoned worker receives nothing; the controller moves its partitions off.
type Cordon struct {
	Worker WorkerID `json:"worker"`
	On     bool     `json:"on,omitempty"`
}

func (Cordon) Type() CommandType { return CmdCordon }
func (Cordon) items() int        { return 0 }
func (b Cordon) walk(w *walker) Body {
	w.worker("worker", &b.Worker, 0)
	w.flag("on", &b.On, 0)
	return b
}

// Pin pins a partition to a worker (placement keeps it there while the worker is
// eligible); an empty Worker unpins.
type Pin struct {
	Partition PartitionID `json:"partition"`
	Worker    WorkerID    `json:"worker"`
}

func (Pin) Type() CommandType { return CmdPin }
func (Pin) items() int        { return 0 }
func (b Pin) walk(w *walker) Body {
	w.partition("partition", &b.Partition, 0)
	w.worker("worker", &b.Worker, optional)
	return b
}

// SetRebalance pauses or resumes voluntary rebalancing cluster-wide.
type SetRebalance struct {
	Paused bool `json:"paused,omitempty"`
}

func (SetRebalance) Type() CommandType { return CmdSetRebalance }
func (SetRebalance) items() int        { return 0 }
func (b SetRebalance) walk(w *walker) Body {
	w.flag("paused", &b.Paused, 0)
	return b
}

// RegisterNode records a claim-store node's API address, so that any node can
// forward writes to the leader and report the cluster's members. A node
// registers when it joins and again whenever its address changes.
type RegisterNode struct {
	Node    string `json:"node,omitempty"`
	APIAddr string `json:"api_addr,omitempty"`
}

func (RegisterNode) Type() CommandType { return CmdRegisterNode }
func (RegisterNode) items() int        { return 0 }
func (b RegisterNode) walk(w *walker) Body {
	w.node("node", &b.Node, 0)
	w.text("api_addr", &b.APIAddr, MaxAddrLen, 0)
	return b
}

// RemoveNode forgets a claim-store node removed from the raft configuration.
type RemoveNode struct {
	Node string `json:"node,omitempty"`
}

func (RemoveNode) Type() CommandType { return CmdRemoveNode }
func (RemoveNode) items() int        { return 0 }
func (b RemoveNode) walk(w *walker) Body {
	w.node("node", &b.Node, 0)
	return b
}

// MarkDigest agrees on a raft index for the corruption check: every replica
// that applies it at index i fingerprints its state and audit log as they are
// at exactly i, and nodes compare those fingerprints. The leader proposes it
// now and then; it changes nothing but the applied index and emits no event,
// so it is deterministic like every other command.
type MarkDigest struct{}

func (MarkDigest) Type() CommandType   { return CmdMarkDigest }
func (MarkDigest) items() int          { return 0 }
func (b MarkDigest) walk(*walker) Body { return b }
