package api

import (
	"time"

	"github.com/batonhq/baton/fsm"
)

// Paths of the v1 API. {id} segments are path parameters.
const (
	PathRegister    = "/v1/workers/register"
	PathWorkers     = "/v1/workers"
	PathWorker      = "/v1/workers/{id}"
	PathHeartbeat   = "/v1/workers/{id}/heartbeat"
	PathLeave       = "/v1/workers/{id}/leave"
	PathAssignment  = "/v1/workers/{id}/assignment"
	PathDrained     = "/v1/workers/{id}/drained"
	PathActivated   = "/v1/workers/{id}/activated"
	PathCheckpoints = "/v1/workers/{id}/checkpoints"
	PathReleased    = "/v1/workers/{id}/released"
	PathCordon      = "/v1/workers/{id}/cordon"
	PathPartitions  = "/v1/partitions"
	PathPartition   = "/v1/partitions/{id}"
	PathMove        = "/v1/partitions/{id}/move"
	PathPin         = "/v1/partitions/{id}/pin"
	PathHandoffs    = "/v1/handoffs"
	PathRebalance   = "/v1/rebalance"
	PathPlan        = "/v1/plan"
	PathAudit       = "/v1/audit"
	PathAuditFollow = "/v1/audit/follow"
	PathStatus      = "/v1/cluster/status"
	PathJoin        = "/v1/cluster/join"
	PathRemove      = "/v1/cluster/remove"
	PathSummary     = "/v1/cluster/summary"
	PathMetrics     = "/metrics"
	PathHealth      = "/healthz"
	PathReady       = "/readyz"
)

// Headers.
const (
	// HeaderIndex carries the state index a response reflects; blocking queries
	// pass it back as ?index=.
	HeaderIndex = "X-Baton-Index"
	// HeaderRequestID carries the request id that makes a write idempotent.
	HeaderRequestID = "X-Request-Id"
	// HeaderForwarded marks a request a follower forwarded to the leader, so
	// that it is never forwarded twice.
	HeaderForwarded = "X-Baton-Forwarded"
	// HeaderNode names the node that answered.
	HeaderNode = "X-Baton-Node"
	// HeaderLeader carries, on every response, the API base URL of the
	// leader as the answering node knows it when it answers (absent when it
	// knows none): clients send writes and leader reads straight there.
	HeaderLeader = "X-Baton-Leader"
)

// FollowKeepAlive is how often an audit follow (PathAuditFollow) sends a
// keep-alive comment while no event comes. A client that hears nothing for
// much longer is talking to a node that stopped (frozen, or cut off).
const FollowKeepAlive = 5 * time.Second

// Request bodies are decoded strictly (docs/api.md, "Request bodies"): a field
// is required unless its json tag has omitempty, keys must match the tags
// exactly, and unknown or repeated keys are refused, in nested objects too.
// The fsm item types the requests carry follow the same rule.

// RegisterRequest registers a worker (a new incarnation if it was known).
// Required: worker. A worker's token may register only its own worker.
type RegisterRequest struct {
	Worker fsm.WorkerID `json:"worker"`
	Weight uint32       `json:"weight,omitempty"`
	Labels []fsm.Label  `json:"labels,omitempty"`
}

// Registration is a worker's session: heartbeat every HeartbeatIntervalMS with
// this incarnation; a session not renewed for SessionTTLMS expires.
type Registration struct {
	Worker              fsm.WorkerID    `json:"worker"`
	Incarnation         fsm.Incarnation `json:"incarnation"`
	Index               fsm.RaftIndex   `json:"index"`
	SessionTTLMS        int64           `json:"session_ttl_ms"`
	HeartbeatIntervalMS int64           `json:"heartbeat_interval_ms"`
}

// HeartbeatRequest renews a session. Required: incarnation.
type HeartbeatRequest struct {
	Incarnation fsm.Incarnation `json:"incarnation"`
}

// HeartbeatResponse says how long the renewed session lasts.
type HeartbeatResponse struct {
	SessionTTLMS int64 `json:"session_ttl_ms"`
}

// LeaveRequest starts a worker's graceful leave. Required: incarnation.
type LeaveRequest struct {
	Incarnation fsm.Incarnation `json:"incarnation"`
}

// DrainedRequest reports drained handoffs. Required: incarnation and at
// least one item (each with partition, epoch and through_seq).
type DrainedRequest struct {
	Incarnation fsm.Incarnation `json:"incarnation"`
	Items       []fsm.DrainItem `json:"items"`
}

// ActivatedRequest reports activated partitions. Required: incarnation and
// at least one item (each with partition and epoch).
type ActivatedRequest struct {
	Incarnation fsm.Incarnation    `json:"incarnation"`
	Items       []fsm.ActivateItem `json:"items"`
}

// CheckpointsRequest reports progress on many partitions. Required:
// incarnation and at least one item (each with partition, epoch and seq).
type CheckpointsRequest struct {
	Incarnation fsm.Incarnation      `json:"incarnation"`
	Items       []fsm.CheckpointItem `json:"items"`
}

// ReleasedRequest gives partitions up. Required: incarnation and at least one
// item (each with partition, epoch and through_seq).
type ReleasedRequest struct {
	Incarnation fsm.Incarnation   `json:"incarnation"`
	Items       []fsm.ReleaseItem `json:"items"`
}

// WriteResponse is the answer to every write: the index it was applied at,
// whether it repeated an earlier request id, and per-item errors for batch
// writes (null for accepted items). A whole-command rejection is an error
// response instead.
type WriteResponse struct {
	Index     fsm.RaftIndex `json:"index"`
	Duplicate bool          `json:"duplicate,omitempty"`
	Items     []*Error      `json:"items,omitempty"`
	Events    []Event       `json:"events,omitempty"`
}

// DeclareRequest declares partitions. Required: at least one partition, each
// with an id.
type DeclareRequest struct {
	Partitions []fsm.PartitionSpec `json:"partitions"`
}

// RemovePartitionsRequest removes partitions (DELETE /v1/partitions/{id}
// removes one). Required: at least one partition.
type RemovePartitionsRequest struct {
	Partitions []fsm.PartitionID `json:"partitions"`
}

// MoveRequest asks for a partition to move to a worker. Without Force it is a
// graceful two-phase handoff; with Force the partition moves now and the new
// owner resumes from the last checkpoint. Required: to.
type MoveRequest struct {
	To     fsm.WorkerID `json:"to"`
	Force  bool         `json:"force,omitempty"`
	Reason string       `json:"reason,omitempty"`
	// DrainTimeoutMS bounds the drain: 1 to fsm.MaxDrainTimeout in
	// milliseconds; 0 or omitted means the server's default.
	DrainTimeoutMS int64 `json:"drain_timeout_ms,omitempty"`
}

// CordonRequest cordons (drains for maintenance) or uncordons a worker.
// Required: on (so that {} cannot uncordon by accident).
type CordonRequest struct {
	On bool `json:"on"`
}

// PinRequest pins a partition to a worker; an empty worker unpins. Required:
// worker (the key must be there even to unpin).
type PinRequest struct {
	Worker fsm.WorkerID `json:"worker"`
}

// RebalanceRequest pauses or resumes voluntary rebalancing. Required: paused
// (so that {} cannot resume by accident).
type RebalanceRequest struct {
	Paused bool `json:"paused"`
}

// PartitionList is one page of partitions; pass Next as ?after= for the next.
type PartitionList struct {
	Index      fsm.RaftIndex       `json:"index"`
	Partitions []fsm.PartitionInfo `json:"partitions"`
	Next       fsm.PartitionID     `json:"next,omitempty"`
}

// WorkerList lists every known worker.
type WorkerList struct {
	Index   fsm.RaftIndex `json:"index"`
	Workers []fsm.Worker  `json:"workers"`
}

// HandoffList lists pending handoffs.
type HandoffList struct {
	Index    fsm.RaftIndex `json:"index"`
	Handoffs []fsm.Handoff `json:"handoffs"`
}

// AuditPage is one page of audit events; pass Next as ?after= for the next.
type AuditPage struct {
	Events []Event `json:"events"`
	Next   string  `json:"next,omitempty"`
}

// JoinRequest adds a claim-store node. Required: all three fields.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
}

// RemoveRequest removes a claim-store node. Required: id.
type RemoveRequest struct {
	ID string `json:"id"`
}

// Member is one claim-store node in ClusterStatus.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr,omitempty"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
}

// ClusterStatus is the answering node's view of the cluster.
type ClusterStatus struct {
	NodeID        string   `json:"node_id"`
	State         string   `json:"state"`
	Term          uint64   `json:"term"`
	LeaderID      string   `json:"leader_id,omitempty"`
	LeaderAPI     string   `json:"leader_api_addr,omitempty"`
	CommitIndex   uint64   `json:"commit_index"`
	AppliedIndex  uint64   `json:"applied_index"`
	StateIndex    uint64   `json:"state_index"`
	LastIndex     uint64   `json:"last_log_index"`
	SnapshotIndex uint64   `json:"last_snapshot_index"`
	Ready         bool     `json:"ready"`
	NotReady      string   `json:"not_ready,omitempty"`
	Members       []Member `json:"members"`
	AuditFirst    uint64   `json:"audit_first_index"`
	AuditLast     uint64   `json:"audit_last_index"`
	AuditEvents   int      `json:"audit_events"`
	// Digests are the node's most recent state digests, oldest first: at
	// each agreed index (a digest mark), a SHA-256 of its state machine and
	// audit log there. Peers compare them (the corruption check).
	Digests []Digest `json:"digests,omitempty"`
	// Divergence lists the nodes this node's corruption check found
	// divergent, this node included if it is; empty when all agree.
	Divergence []Divergence `json:"divergence,omitempty"`
	// DigestChecked is the newest index at which this node compared its
	// digest with another node's (0: not yet).
	DigestChecked uint64 `json:"digest_checked_index,omitempty"`
}

// Digest is a node's state digest at one agreed raft index.
type Digest struct {
	Index uint64 `json:"index"`
	// Digest is the SHA-256 in hex (64 digits).
	Digest string `json:"digest"`
}

// Divergence names a node whose digest at an agreed index differed from the
// others'.
type Divergence struct {
	Node   string `json:"node"`
	Index  uint64 `json:"index"`
	Digest string `json:"digest"`
	// Majority is the digest more than half of the voters held at Index;
	// empty when no digest had a majority (every disagreeing node is then
	// named).
	Majority string `json:"majority_digest,omitempty"`
	// Digests are every compared node's digest at Index.
	Digests []NodeDigest `json:"digests"`
}

// NodeDigest is one node's digest at an index, in a Divergence.
type NodeDigest struct {
	Node   string `json:"node"`
	Digest string `json:"digest"`
}
