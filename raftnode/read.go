package raftnode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/fsm"
)

// Consistency is how fresh a read must be.
type Consistency uint8

// Read consistency levels.
const (
	// Stale reads this node's state as it is: fast, possibly behind.
	Stale Consistency = 1 + iota
	// Default reads on the leader only: current unless a partition has just
	// deposed it without its knowing.
	Default
	// Linearizable reads on the leader after confirming leadership with a
	// quorum, a commit in the current term, and the state caught up to the
	// commit index seen at the start of the read.
	Linearizable
)

// ParseConsistency parses "stale", "default" or "linearizable" ("" is default).
func ParseConsistency(s string) (Consistency, error) {
	switch s {
	case "stale":
		return Stale, nil
	case "", "default":
		return Default, nil
	case "linearizable", "strong":
		return Linearizable, nil
	}
	return 0, fmt.Errorf("raftnode: unknown consistency %q (stale, default or linearizable)", s)
}

func (c Consistency) String() string {
	switch c {
	case Stale:
		return "stale"
	case Default:
		return "default"
	case Linearizable:
		return "linearizable"
	}
	return "invalid"
}

// Read runs fn on the state at the requested consistency. fn must not keep
// references into the state after it returns, nor block.
//
// It returns ErrNotLeader for Default and Linearizable on a follower (callers
// forward to the leader), ErrNotReady for Stale on a node still catching up,
// a *DivergedError (ErrDiverged, also ErrNotReady) on a node whose state the
// corruption check found divergent, ErrShutdown, or the context's error.
func (n *Node) Read(ctx context.Context, c Consistency, fn func(*fsm.State)) error {
	if n.stopped() {
		return ErrShutdown
	}
	if err := ctx.Err(); err != nil {
		return err // do not start raft work (a barrier, a leader check) for nobody
	}
	switch c {
	case Stale:
	case Default:
		if !n.IsLeader() {
			return n.notLeader()
		}
	case Linearizable:
		if err := n.linearize(ctx); err != nil {
			return err
		}
	default:
		return fmt.Errorf("raftnode: invalid consistency %d", c)
	}
	if err := n.diverged(); err != nil {
		return err // this node's state is known wrong: never answer from it
	}
	n.machine.read(fn)
	return nil
}

// linearize implements the read-index protocol on hashicorp raft.
func (n *Node) linearize(ctx context.Context) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	ctx, cancel := n.withTimeout(ctx)
	defer cancel()
	term := n.raft.CurrentTerm()
	if n.barrierTerm.Load() != term {
		// A new leader may not know the commit index until it commits an
		// entry of its own term; a barrier is one, and it waits for the FSM.
		if err := n.translate(waitFuture(ctx, n.raft.Barrier(0))); err != nil {
			return err
		}
		n.barrierTerm.Store(term)
	}
	readIndex := n.raft.CommitIndex()
	if err := n.translate(waitFuture(ctx, n.raft.VerifyLeader())); err != nil {
		return err
	}
	return n.waitApplied(ctx, readIndex)
}

// waitApplied waits until raft has applied idx to the FSM. Entries that never
// reach the FSM (no-ops, configuration changes) advance raft's applied index
// without waking anyone, so this polls as well as waiting for applies.
func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	poll := time.NewTicker(2 * time.Millisecond)
	defer poll.Stop()
	for n.raft.AppliedIndex() < idx {
		_, changed := n.machine.index()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.done:
			return ErrShutdown
		case <-changed:
		case <-poll.C:
		}
	}
	return nil
}

func (n *Node) translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return n.notLeader()
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	}
	return err
}

// AppliedIndex returns the index of the last command applied to the state.
func (n *Node) AppliedIndex() fsm.RaftIndex {
	idx, _ := n.machine.index()
	return idx
}

// WaitIndex blocks until the state's applied index is greater than after, or ctx
// ends, and returns the applied index then (blocking queries: ?index=N&wait=30s).
func (n *Node) WaitIndex(ctx context.Context, after fsm.RaftIndex) (fsm.RaftIndex, error) {
	return n.waitFor(ctx, after, n.machine.index)
}

// WaitAudit blocks until the audit log holds an event after index after, or ctx
// ends, and returns the audit log's last index then (audit follow).
func (n *Node) WaitAudit(ctx context.Context, after fsm.RaftIndex) (fsm.RaftIndex, error) {
	return n.waitFor(ctx, after, func() (fsm.RaftIndex, <-chan struct{}) {
		// The channel first: an apply between the two reads then still wakes us.
		_, changed := n.machine.index()
		return n.audit.LastIndex(), changed
	})
}

// WaitChange blocks until a command after index after changed the state in more
// than checkpoints (a claim, handoff step, membership or setting), or ctx ends;
// it returns that index. The controller plans on these changes only.
func (n *Node) WaitChange(ctx context.Context, after fsm.RaftIndex) (fsm.RaftIndex, error) {
	return n.waitFor(ctx, after, n.machine.structuralIndex)
}

// WorkerIndex returns the last index that changed worker w's assignment (not
// counting checkpoints), for blocking assignment queries.
func (n *Node) WorkerIndex(w fsm.WorkerID) fsm.RaftIndex {
	idx, _ := n.machine.workerIndex(w)
	return idx
}

// WaitWorker blocks until a command after index after changed worker w's
// assignment, or ctx ends; it returns the worker's index then.
func (n *Node) WaitWorker(ctx context.Context, w fsm.WorkerID, after fsm.RaftIndex) (fsm.RaftIndex, error) {
	return n.waitFor(ctx, after, func() (fsm.RaftIndex, <-chan struct{}) { return n.machine.workerIndex(w) })
}

// Ready reports nil when the node serves current reads: a leader is known and
// this node has applied everything it knows to be committed. A node restarted
// on old data is not ready until it has caught up with the leader, and a node
// whose state diverged (CheckDigests) is not ready: *DivergedError.
func (n *Node) Ready() error {
	if n.stopped() {
		return ErrShutdown
	}
	if err := n.diverged(); err != nil {
		return err
	}
	if _, id := n.raft.LeaderWithID(); id == "" {
		return ErrNoLeader
	}
	if applied, commit := n.raft.AppliedIndex(), n.raft.CommitIndex(); applied < commit {
		return fmt.Errorf("%w: applied %d of %d committed", ErrNotReady, applied, commit)
	}
	return nil
}

// waitFor blocks until cur reports an index above after, or ctx ends, and
// returns the index then. cur returns the index and a channel closed at the next
// apply, read together so that no apply between them is missed.
func (n *Node) waitFor(ctx context.Context, after fsm.RaftIndex, cur func() (fsm.RaftIndex, <-chan struct{})) (fsm.RaftIndex, error) {
	for {
		idx, changed := cur()
		if idx > after {
			return idx, nil
		}
		select {
		case <-ctx.Done():
			return idx, ctx.Err()
		case <-n.done:
			return idx, ErrShutdown
		case <-changed:
		}
	}
}
