package raftnode

import "github.com/hashicorp/raft"

// mainLoopTransport is the raft transport every node runs on: hashicorp's
// NetworkTransport with its heartbeat fast path left off, so that every
// AppendEntries, heartbeats included, is handled by raft's main loop.
//
// Why: hashicorp/raft v1.7.3 hands a heartbeat to the handler raft installs
// with SetHeartbeatHandler on the transport's connection goroutine. A
// heartbeat from a newer leader then sets this node's term and state there,
// while a leader loop still waiting in its select keeps running: the next
// Apply it picks up is written under the new term, at the index where the new
// leader wrote its own first entry, and log matching never repairs it
// (upstream issue 695, PR 701; DESIGN.md has the interleaving). With no
// handler installed, NetworkTransport queues heartbeats on Consumer() like
// every other RPC, and raft's main loop handles them one at a time with
// everything else: the step-down and the leader's dispatch cannot interleave.
//
// It embeds the concrete *raft.NetworkTransport, not the raft.Transport
// interface, so that every method of the network transport is still there
// for the type assertions raft makes (raft.WithPreVote at NewRaft and at
// each election, raft.WithClose at shutdown) and for any a later version
// adds; the assertions below fail the build if one goes missing. It must be
// the innermost wrapper: a wrapper inside it would receive the handler.
type mainLoopTransport struct {
	*raft.NetworkTransport
}

var (
	_ raft.Transport   = (*mainLoopTransport)(nil)
	_ raft.WithPreVote = (*mainLoopTransport)(nil)
	_ raft.WithClose   = (*mainLoopTransport)(nil)
)

// newMainLoopTransport wraps t; see mainLoopTransport.
func newMainLoopTransport(t *raft.NetworkTransport) *mainLoopTransport {
	return &mainLoopTransport{NetworkTransport: t}
}

// SetHeartbeatHandler installs nothing: raft calls it once, in NewRaft, with
// its processHeartbeat, and the transport then sends heartbeats to
// Consumer() instead, where raft's main loop takes them. The raft.Transport
// contract allows this ("it can simply ignore the call").
func (*mainLoopTransport) SetHeartbeatHandler(func(raft.RPC)) {}
