package raftnode

import (
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// maxCatchUpScan bounds the raft log entries caughtUp reads to see past
// entries that never reach the state machine (no-ops, barriers, membership).
const maxCatchUpScan = 256

// catchUp tracks whether a node has caught up since it started (see
// DESIGN.md, "Readiness"). Its fields are atomics: tap's relay writes heard,
// readers read; start is set before the node is published.
type catchUp struct {
	// start is the last raft index this node held when it started (log or
	// snapshot).
	start uint64
	// first is the leader commit index carried by the first AppendEntries
	// this node received since it started (0: none yet).
	first atomic.Uint64
	// done latches once the state has reached the target.
	done atomic.Bool
}

// heard notes the commit index an incoming AppendEntries announces. Only the
// first non-zero one counts: the target must not move while the node chases it.
func (c *catchUp) heard(commit uint64) {
	if commit > 0 && c.first.Load() == 0 {
		c.first.CompareAndSwap(0, commit)
	}
}

// catchUpTarget returns the raft index this node's state must reflect before
// it is caught up: the leader commit index first heard since start; on a
// leader that has heard none (it won an election straight after starting),
// the last index it held at start, capped by its log now. ok is false while
// a follower has heard no commit index yet.
func (n *Node) catchUpTarget() (target uint64, ok bool) {
	if h := n.catch.first.Load(); h > 0 {
		return h, true
	}
	if n.IsLeader() {
		return min(n.catch.start, n.raft.LastIndex()), true
	}
	return 0, false
}

// caughtUp returns nil once this node's state reflects every entry up to its
// catch-up target, and from then on; before, an error wrapping ErrNotReady.
func (n *Node) caughtUp() error {
	if n.catch.done.Load() {
		return nil
	}
	target, ok := n.catchUpTarget()
	if !ok {
		return fmt.Errorf("%w: restarted, waiting for the leader's commit index", ErrNotReady)
	}
	applied := uint64(n.AppliedIndex())
	reached, err := n.reflects(applied, target)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	if !reached {
		return fmt.Errorf("%w: applied %d of %d", ErrNotReady, applied, target)
	}
	n.catch.done.Store(true)
	return nil
}

// reflects reports whether a state whose last applied command is at index
// applied reflects every entry up to target. The state machine sees commands
// only, so entries past applied may be no-ops, barriers or membership
// changes, which change nothing: they are read from the log to tell. Entries
// covered by the latest snapshot are in the state whatever they were.
func (n *Node) reflects(applied, target uint64) (bool, error) {
	if applied >= target {
		return true, nil
	}
	from := applied + 1
	if snap, err := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64); err == nil && snap >= from {
		from = snap + 1
	}
	if target >= from+maxCatchUpScan {
		return false, nil
	}
	for i := from; i <= target; i++ {
		var l raft.Log
		if err := n.store.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				return false, nil // not received yet
			}
			return false, fmt.Errorf("read raft log at %d: %w", i, err)
		}
		if l.Type == raft.LogCommand {
			return false, nil
		}
	}
	return true, nil
}

// lastIndex returns the last raft index a node's stores hold: its log's or its
// latest snapshot's, whichever is later.
func lastIndex(logs raft.LogStore, snaps raft.SnapshotStore) (uint64, error) {
	last, err := logs.LastIndex()
	if err != nil {
		return 0, fmt.Errorf("raftnode: last log index: %w", err)
	}
	metas, err := snaps.List()
	if err != nil {
		return 0, fmt.Errorf("raftnode: list snapshots: %w", err)
	}
	for _, m := range metas {
		last = max(last, m.Index)
	}
	return last, nil
}
