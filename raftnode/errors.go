package raftnode

import (
	"errors"
	"fmt"
)

// Errors returned by Node. Nothing above raftnode compares against hashicorp
// raft's errors: they are translated here.
var (
	// ErrNotLeader is returned by Apply, Join, Remove and leader reads on a node
	// that is not the leader; the command was not proposed. The error is a
	// *NotLeaderError naming the leader if one is known.
	ErrNotLeader = errors.New("raftnode: not the leader")
	// ErrNoLeader is returned when no leader is known (an election is running or
	// quorum is lost).
	ErrNoLeader = errors.New("raftnode: no leader")
	// ErrUnknownOutcome is returned when a command was handed to raft but its
	// fate is unknown: leadership was lost or the context ended before it
	// committed. Retry with the same request id; the state machine dedupes.
	ErrUnknownOutcome = errors.New("raftnode: unknown outcome")
	// ErrShutdown is returned after Shutdown.
	ErrShutdown = errors.New("raftnode: shut down")
	// ErrNotReady is returned by reads that need a caught-up state on a node
	// that is still catching up after a restart.
	ErrNotReady = errors.New("raftnode: not ready")
	// ErrDiverged is returned by Ready, and by reads this node would answer
	// from its own state, once the corruption check has found this node's
	// state or audit log different from the majority's at an agreed index
	// (or, with no majority, from another node's). The error is a
	// *DivergedError naming the index and the digests; it also matches
	// ErrNotReady, so the API answers 503 not_ready.
	ErrDiverged = errors.New("raftnode: state diverged from the other replicas")
)

// NotLeaderError is ErrNotLeader with what the node knows of the leader.
type NotLeaderError struct {
	LeaderID   string // empty when no leader is known
	LeaderAddr string // raft address
	LeaderAPI  string // API address, if registered
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return ErrNotLeader.Error() + " (no leader known)"
	}
	return fmt.Sprintf("%s (leader is %s at %s)", ErrNotLeader, e.LeaderID, e.LeaderAddr)
}

// Unwrap makes errors.Is(err, ErrNotLeader) hold, and ErrNoLeader too when no
// leader is known.
func (e *NotLeaderError) Unwrap() []error {
	if e.LeaderID == "" {
		return []error{ErrNotLeader, ErrNoLeader}
	}
	return []error{ErrNotLeader}
}
