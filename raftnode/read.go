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
	// Stale reads this node's state as it is: possibly behind, but never
	// from before the node caught up after a restart (see Node.Ready).
	Stale Consistency = 1 + iota
	// Default reads on the leader, under its lease: a quorum of voters
	// accepted the leader's messages recently enough that no other leader
	// can have been elected yet (DESIGN.md, "Leader lease"). Linearizable
	// as long as clocks run at rates within 10% of each other.
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
// references into the state after it returns, nor block. When Read returns an
// error, what fn saw must be discarded: a Default read checks its lease again
// after fn, at the moment it answers.
//
// It returns ErrNotLeader (a *NotLeaderError) for Default and Linearizable on
// a node that is not the leader or whose leadership cannot be confirmed (the
// error names no leader when this node still believes it leads: retry, or ask
// another node); ErrNotReady for Stale on a node still catching up after a
// restart; a *DivergedError (ErrDiverged, also ErrNotReady) on a node whose
// state the corruption check found divergent; ErrShutdown; or the context's
// error.
func (n *Node) Read(ctx context.Context, c Consistency, fn func(*fsm.State)) error {
	if n.stopped() {
		return ErrShutdown
	}
	if err := ctx.Err(); err != nil {
		return err // do not start raft work (a barrier, a leader check) for nobody
	}
	switch c {
	case Stale:
		if err := n.caughtUp(); err != nil {
			return err
		}
	case Default:
		term, err := n.leaseRead(ctx)
		if err != nil {
			return err
		}
		if err := n.diverged(); err != nil {
			return err // this node's state is known wrong: never answer from it
		}
		n.machine.read(fn)
		// The answer leaves now: the lease must still hold. A node frozen
		// inside fn wakes up here and finds it expired.
		if !n.leaseHolds(term) {
			return n.unconfirmed()
		}
		return nil
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

// leaseRead readies a Default read: this node leads, has committed an entry in
// its term (so its state holds everything earlier leaders committed), and its
// lease holds now, or holds again after a fresh confirmation. It returns the
// term the lease is for.
func (n *Node) leaseRead(ctx context.Context) (uint64, error) {
	if !n.IsLeader() {
		return 0, n.notLeader()
	}
	ctx, cancel := n.withTimeout(ctx)
	defer cancel()
	term := n.raft.CurrentTerm()
	if err := n.termCommitted(ctx, term); err != nil {
		return 0, err
	}
	if n.leaseHolds(term) {
		return term, nil
	}
	// Expired: ask the voters again (VerifyLeader sends a heartbeat to each
	// at once), for at most a heartbeat and an election timeout: a leader
	// that cannot be confirmed by then has most likely been replaced, and
	// the client does better asking another node.
	cctx, ccancel := context.WithTimeout(ctx, n.cfg.HeartbeatTimeout+n.cfg.ElectionTimeout)
	defer ccancel()
	if err := n.confirm(cctx, term, func() bool { return n.leaseHolds(term) }); err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			return 0, n.unconfirmed()
		}
		return 0, err
	}
	return term, nil
}

// linearize implements the read-index protocol on hashicorp raft.
func (n *Node) linearize(ctx context.Context) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	ctx, cancel := n.withTimeout(ctx)
	defer cancel()
	term := n.raft.CurrentTerm()
	if err := n.termCommitted(ctx, term); err != nil {
		return err
	}
	start := time.Now()
	readIndex := n.raft.CommitIndex()
	// raft's VerifyLeader counts any heartbeat answer that arrives while it
	// waits, also one to a heartbeat sent before the read began (and before
	// a freeze): confirm also that a quorum accepted messages sent since.
	if err := n.confirm(ctx, term, func() bool { return n.confirmedSince(term, start) }); err != nil {
		return err
	}
	return n.waitApplied(ctx, readIndex)
}

// termCommitted makes sure this node, as leader of term, has seen an entry of
// its own term applied: a new leader knows what earlier leaders committed only
// once it has committed in its term, and a barrier is such an entry (applied
// only after everything before it).
func (n *Node) termCommitted(ctx context.Context, term uint64) error {
	if n.barrierTerm.Load() == term {
		return nil
	}
	var enqueue time.Duration // Barrier blocks without a bound when raft's queue is full
	if dl, ok := ctx.Deadline(); ok {
		enqueue = max(time.Until(dl), time.Millisecond)
	}
	err := n.translate(waitCall(ctx, func() raft.Future { return n.raft.Barrier(enqueue) }))
	switch {
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("raftnode: barrier: %w", context.DeadlineExceeded)
	case err != nil:
		return err
	}
	n.barrierTerm.Store(term)
	return nil
}

// confirm asks raft to verify leadership until ok holds, this node stops
// leading term, or ctx ends.
func (n *Node) confirm(ctx context.Context, term uint64, ok func() bool) error {
	for !ok() {
		if err := n.translate(waitCall(ctx, n.raft.VerifyLeader)); err != nil {
			return err
		}
		if !n.IsLeader() || n.raft.CurrentTerm() != term {
			return n.notLeader()
		}
	}
	return nil
}

// leaseHolds reports whether this node leads term and its lease holds now.
func (n *Node) leaseHolds(term uint64) bool {
	voters, ok := n.voterIDs()
	return ok && n.IsLeader() && n.raft.CurrentTerm() == term &&
		n.lease.holds(term, raft.ServerID(n.cfg.NodeID), voters, time.Now())
}

// confirmedSince reports whether a quorum accepted AppendEntries of term sent
// at or after since.
func (n *Node) confirmedSince(term uint64, since time.Time) bool {
	voters, ok := n.voterIDs()
	return ok && n.lease.confirmedSince(term, raft.ServerID(n.cfg.NodeID), voters, since)
}

// voterIDs returns the voters of raft's latest configuration (the one it
// counts quorums in).
func (n *Node) voterIDs() ([]raft.ServerID, bool) {
	f := n.raft.GetConfiguration() // answered at once, without raft's loop
	if f.Error() != nil {
		return nil, false
	}
	var out []raft.ServerID
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			out = append(out, s.ID)
		}
	}
	return out, true
}

// unconfirmed is the error of a leader read whose leadership could not be
// confirmed: a NotLeaderError naming the leader if another node is known to
// lead, and none (ErrNoLeader too: retry) while this node still believes it
// does.
func (n *Node) unconfirmed() error {
	id, addr, api := n.Leader()
	if id == n.cfg.NodeID {
		return &NotLeaderError{}
	}
	return &NotLeaderError{LeaderID: id, LeaderAddr: addr, LeaderAPI: api}
}

// waitCall is waitFuture for a call that may itself block (Barrier and
// VerifyLeader wait for room in raft's queue when its loop is stuck): the call
// runs on the helper goroutine too.
func waitCall(ctx context.Context, call func() raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- call().Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
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
// the node has caught up since it started: its state reflects the commit
// index announced by the first AppendEntries it received (on a leader that
// has received none, everything its log held at start). Until then it returns
// an error wrapping ErrNotReady; a *DivergedError on a node whose state
// diverged (CheckDigests); ErrNoLeader while no leader is known; ErrShutdown.
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
	return n.caughtUp()
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
