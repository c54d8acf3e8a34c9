package fsm

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
	cmdTypeEnd // one past the last known type
)

var commandTypeText = enumText{"", "join", "leave", "expire", "remove_worker", "declare",
	"remove_partitions", "claim", "prepare", "drain", "commit", "force_commit", "activate",
	"abort", "release", "checkpoint", "cordon", "pin", "set_rebalance", "register_node", "remove_node"}

func (t CommandType) String() string { return commandTypeText.name(uint8(t)) }

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
}

// Command is one state machine input: a header and exactly one body.
type Command struct {
	Header
	Body Body `json:"body"`
}

// Body is a command payload. The set of bodies is closed: only this package
// implements Body.
type Body interface {
	// Type returns the command's type tag.
	Type() CommandType
	// items is the number of per-item results a batch command produces (0 for
	// single commands).
	items() int
}

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

// Expire ends a worker's session whose TTL lapsed. The leader proposes it; the
// incarnation fences an expiry decided before the worker re-registered.
type Expire struct {
	Worker      WorkerID    `json:"worker"`
	Incarnation Incarnation `json:"incarnation"`
}

// RemoveWorker is an operator's removal of a worker: its partitions are orphaned.
type RemoveWorker struct {
	Worker WorkerID `json:"worker"`
}

// PartitionSpec declares one partition.
type PartitionSpec struct {
	ID PartitionID `json:"id"`
	// Subjects are the JetStream subjects (wildcards allowed) of the partition.
	Subjects []string `json:"subjects,omitempty"`
	// Weight is the partition's relative load (>= 1; 0 means 1).
	Weight uint32 `json:"weight,omitempty"`
	// StartAfter is the initial checkpoint: the first owner resumes after it.
	// 0 means from the start of the stream.
	StartAfter StreamSeq `json:"start_after,omitempty"`
}

// Declare adds partitions. Re-declaring a partition with the same spec is a no-op
// for that item; a different spec is rejected (partition_exists).
type Declare struct {
	Partitions []PartitionSpec `json:"partitions,omitempty"`
}

// RemovePartitions removes partitions that have no pending handoff.
type RemovePartitions struct {
	Partitions []PartitionID `json:"partitions,omitempty"`
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
	// DrainTimeout (nanoseconds, 0 = none) is how long the owner has to
	// drain: the handoff's deadline is the command's leader time plus it,
	// after which it may be force-committed. Relative, so that a retried
	// proposal carries the same body.
	DrainTimeout int64 `json:"drain_timeout,omitempty"`
}

// Prepare starts handoffs.
type Prepare struct {
	Items []PrepareItem `json:"items,omitempty"`
}

// DrainItem reports that the owner stopped processing a partition being handed
// off: every message of it with a sequence <= ThroughSeq is finished.
type DrainItem struct {
	Handoff    HandoffID   `json:"handoff,omitempty"`
	Partition  PartitionID `json:"partition"`
	Epoch      Epoch       `json:"epoch"`
	ThroughSeq StreamSeq   `json:"through_seq"`
}

// Drain carries a worker's drain reports.
type Drain struct {
	Worker      WorkerID    `json:"worker"`
	Incarnation Incarnation `json:"incarnation"`
	Items       []DrainItem `json:"items,omitempty"`
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

// Cordon marks a worker as drained for maintenance (On) or back in service.
// A cordoned worker receives nothing; the controller moves its partitions off.
type Cordon struct {
	Worker WorkerID `json:"worker"`
	On     bool     `json:"on,omitempty"`
}

// Pin pins a partition to a worker (placement keeps it there while the worker is
// eligible); an empty Worker unpins.
type Pin struct {
	Partition PartitionID `json:"partition"`
	Worker    WorkerID    `json:"worker"`
}

// SetRebalance pauses or resumes voluntary rebalancing cluster-wide.
type SetRebalance struct {
	Paused bool `json:"paused,omitempty"`
}

// RegisterNode records a claim-store node's API address, so that any node can
// forward writes to the leader and report the cluster's members. A node
// registers when it joins and again whenever its address changes.
type RegisterNode struct {
	Node    string `json:"node,omitempty"`
	APIAddr string `json:"api_addr,omitempty"`
}

// RemoveNode forgets a claim-store node removed from the raft configuration.
type RemoveNode struct {
	Node string `json:"node,omitempty"`
}

func (RegisterNode) Type() CommandType { return CmdRegisterNode }
func (RemoveNode) Type() CommandType   { return CmdRemoveNode }
func (RegisterNode) items() int        { return 0 }
func (RemoveNode) items() int          { return 0 }

func (Join) Type() CommandType             { return CmdJoin }
func (Leave) Type() CommandType            { return CmdLeave }
func (Expire) Type() CommandType           { return CmdExpire }
func (RemoveWorker) Type() CommandType     { return CmdRemoveWorker }
func (Declare) Type() CommandType          { return CmdDeclare }
func (RemovePartitions) Type() CommandType { return CmdRemovePartitions }
func (Claim) Type() CommandType            { return CmdClaim }
func (Prepare) Type() CommandType          { return CmdPrepare }
func (Drain) Type() CommandType            { return CmdDrain }
func (Commit) Type() CommandType           { return CmdCommit }
func (ForceCommit) Type() CommandType      { return CmdForceCommit }
func (Activate) Type() CommandType         { return CmdActivate }
func (Abort) Type() CommandType            { return CmdAbort }
func (Release) Type() CommandType          { return CmdRelease }
func (Checkpoint) Type() CommandType       { return CmdCheckpoint }
func (Cordon) Type() CommandType           { return CmdCordon }
func (Pin) Type() CommandType              { return CmdPin }
func (SetRebalance) Type() CommandType     { return CmdSetRebalance }

func (Join) items() int               { return 0 }
func (Leave) items() int              { return 0 }
func (Expire) items() int             { return 0 }
func (RemoveWorker) items() int       { return 0 }
func (b Declare) items() int          { return len(b.Partitions) }
func (b RemovePartitions) items() int { return len(b.Partitions) }
func (b Claim) items() int            { return len(b.Items) }
func (b Prepare) items() int          { return len(b.Items) }
func (b Drain) items() int            { return len(b.Items) }
func (b Commit) items() int           { return len(b.Items) }
func (b ForceCommit) items() int      { return len(b.Items) }
func (b Activate) items() int         { return len(b.Items) }
func (b Abort) items() int            { return len(b.Items) }
func (b Release) items() int          { return len(b.Items) }
func (b Checkpoint) items() int       { return len(b.Items) }
func (Cordon) items() int             { return 0 }
func (Pin) items() int                { return 0 }
func (SetRebalance) items() int       { return 0 }
