package raftnode

import "github.com/hashicorp/raft"

// serialTransport is the raft transport every node runs on: hashicorp's
// NetworkTransport with its two shortcuts turned off, both of which break
// hashicorp/raft v1.7.3 when a node freezes and wakes up (DESIGN.md,
// "Decisions"):
//
//   - No heartbeat fast path: every AppendEntries, heartbeats included, is
//     handled by raft's main loop. With the fast path, the transport's
//     connection goroutine handles a heartbeat itself; one from a newer
//     leader sets this node's term and state there while a leader loop
//     still waiting in its select keeps running, and the next Apply it
//     picks up is written under the new term at the index where the new
//     leader wrote its own first entry. Log matching never repairs that: the
//     replicas diverge silently (upstream issue 695, PR 701). Without a
//     handler, NetworkTransport queues heartbeats on Consumer() like every
//     other RPC, and the main loop handles them one at a time with
//     everything else, so the step-down comes before any later dispatch.
//   - No pipelined replication: raft sends one AppendEntries at a time per
//     follower. When a follower refuses a pipelined append (a newer term, a
//     log mismatch: what a thawed leader meets), raft's pipeline decoder
//     stops reading answers while its sender may still send one more; with
//     the transport's unbuffered pipeline channels that send blocks forever
//     and nothing closes the pipeline. Replication to that follower stops
//     for good while its heartbeats go on, and raft's Shutdown waits for the
//     wedged goroutine forever (seen in e2e's leader-freeze rounds; upstream
//     issue 612).
//
// It embeds the concrete *raft.NetworkTransport, not the raft.Transport
// interface, so that every method of the network transport is still there
// for the type assertions raft makes (raft.WithPreVote at NewRaft and at
// each election, raft.WithClose at shutdown) and for any a later version
// adds; the assertions below fail the build if one goes missing. It must be
// the innermost wrapper: a wrapper inside it would receive the heartbeat
// handler.
type serialTransport struct {
	*raft.NetworkTransport
}

var (
	_ raft.Transport   = (*serialTransport)(nil)
	_ raft.WithPreVote = (*serialTransport)(nil)
	_ raft.WithClose   = (*serialTransport)(nil)
)

// newSerialTransport wraps t; see serialTransport.
func newSerialTransport(t *raft.NetworkTransport) *serialTransport {
	return &serialTransport{NetworkTransport: t}
}

// SetHeartbeatHandler installs nothing: raft calls it once, in NewRaft, with
// its processHeartbeat, and the transport then sends heartbeats to
// Consumer() instead, where raft's main loop takes them. The raft.Transport
// contract allows this ("it can simply ignore the call").
func (*serialTransport) SetHeartbeatHandler(func(raft.RPC)) {}

// AppendEntriesPipeline refuses: raft then replicates with AppendEntries,
// one request at a time per follower (up to MaxAppendEntries entries each).
func (*serialTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}
