package raftnode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/fsm"
)

// Apply proposes one command and waits, bounded by ctx (or ApplyTimeout), for
// the state machine's result. The leader stamps its clock into cmd.Time.
//
// Outcomes: the fsm.Result (whose Err/Items carry rejections) and nil; or an
// *fsm.RejectError when cmd fails fsm.Config.CheckCommand or encodes to more
// than MaxCommandBytes (limit_exceeded): nothing was proposed, so no command
// that would not decode on every replica, or that peers' transports would
// refuse, reaches the log; or ErrNotLeader (as *NotLeaderError; nothing was
// proposed); or ErrUnknownOutcome
// (the entry may or may not commit: retry with the same request id); or
// ErrShutdown.
func (n *Node) Apply(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	if n.stopped() {
		return fsm.Result{}, ErrShutdown
	}
	if !n.IsLeader() {
		return fsm.Result{}, n.notLeader()
	}
	if err := ctx.Err(); err != nil {
		return fsm.Result{}, err // nothing proposed
	}
	cmd.Time = n.now().UnixNano()
	if err := n.cfg.FSM.CheckCommand(cmd); err != nil {
		return fsm.Result{}, err
	}
	data, err := fsm.EncodeCommand(cmd)
	if err != nil {
		return fsm.Result{}, err
	}
	if int64(len(data)) > n.cfg.MaxCommandBytes {
		// Followers' transports refuse larger entries (msglimit.go): committed,
		// it would stall replication for good.
		return fsm.Result{}, fmt.Errorf("raftnode: command of %d bytes exceeds MaxCommandBytes %d: %w",
			len(data), n.cfg.MaxCommandBytes, fsm.ErrLimitExceeded)
	}
	ctx, cancel := n.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	var enqueue time.Duration
	if dl, ok := ctx.Deadline(); ok {
		enqueue = time.Until(dl)
	}
	f := n.raft.Apply(data, enqueue)
	err = waitFuture(ctx, f)
	n.metrics.observeApply(time.Since(start), err)
	switch {
	case err == nil:
		res, ok := f.Response().(fsm.Result)
		if !ok {
			return fsm.Result{}, fmt.Errorf("raftnode: unexpected apply response %T", f.Response())
		}
		return res, nil
	case errors.Is(err, raft.ErrNotLeader):
		return fsm.Result{}, n.notLeader()
	case errors.Is(err, raft.ErrRaftShutdown):
		return fsm.Result{}, fmt.Errorf("%w: %w", ErrShutdown, ErrUnknownOutcome)
	default:
		// ErrLeadershipLost, ErrEnqueueTimeout and an ended context all leave
		// the entry's fate open.
		return fsm.Result{}, fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	}
}

// Propose applies cmd on this node, retrying unknown outcomes with the same
// request id (assigning a random one if cmd has none) until ctx ends. It does
// not forward: on a follower it returns ErrNotLeader at once, and if leadership
// moves away mid-retry it returns ErrUnknownOutcome for the caller to retry
// elsewhere with the same id.
func (n *Node) Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	if cmd.RequestID == "" {
		cmd.RequestID = NewRequestID()
	}
	backoff := 10 * time.Millisecond
	for {
		res, err := n.Apply(ctx, cmd)
		if err == nil || !errors.Is(err, ErrUnknownOutcome) || errors.Is(err, ErrShutdown) {
			return res, err
		}
		if !n.IsLeader() {
			return res, err
		}
		n.log.Debug("retrying unknown outcome", "request_id", cmd.RequestID, "err", err)
		wait := backoff/2 + mrand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return res, err
		case <-n.done:
			return res, ErrShutdown
		case <-time.After(wait):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// NewRequestID returns a random request id for an idempotent command.
func NewRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
