package raftnode

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton/fsm"
)

// ApplyRaw appends data to the raft log as it is, skipping the command check
// that Apply makes: it plays a proposer that does not check (a bug, an older
// build, a peer writing to the log directly).
func (n *Node) ApplyRaw(data []byte) (any, error) {
	f := n.raft.Apply(data, 5*time.Second)
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Response(), nil
}

// RefusedCounter is the node's count of committed entries it refused.
func RefusedCounter(n *Node) prometheus.Counter { return n.metrics.refused }

// CorruptState applies cmd to n's state machine alone, behind raft's back, at
// the index after the last one it applied: the replica now holds a command
// the others never applied (and refuses the real entry at that index as
// already applied). It plays a node that applied entries of its own (issue
// 9's divergence) or had its memory corrupted.
func CorruptState(n *Node, cmd fsm.Command) fsm.Result {
	m := n.machine
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.Apply(m.state.AppliedIndex()+1, 1, cmd)
}

// ProposeAsync hands cmd to raft and does not wait for it: the test may be
// holding the state machine, and with it every apply future.
func ProposeAsync(n *Node, cmd fsm.Command) error {
	cmd.Time = n.now().UnixNano()
	data, err := fsm.EncodeCommand(cmd)
	if err != nil {
		return err
	}
	n.raft.Apply(data, 0)
	return nil
}

// FSMPending is how many committed batches raft has queued for the node's
// state machine; hashicorp/raft's queue holds 128, and its loop blocks on a
// full one.
func FSMPending(n *Node) int {
	p, _ := strconv.Atoi(n.raft.Stats()["fsm_pending"])
	return p
}

// CatchUp returns the node's applied index and its catch-up target (known is
// false while it has none).
func CatchUp(n *Node) (applied, target uint64, known bool) {
	target, known = n.catchUpTarget()
	return uint64(n.AppliedIndex()), target, known
}

// LeaderChanges is the node's count of leader changes it has seen.
func LeaderChanges(n *Node) prometheus.Counter { return n.metrics.leaderChange }
