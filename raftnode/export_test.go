package raftnode

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
