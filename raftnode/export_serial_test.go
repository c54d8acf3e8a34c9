package raftnode

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// HeartbeatFastPath is a Config.WrapTransport that gives raft back
// hashicorp's heartbeat fast path, which every node runs without (serial.go),
// and nothing else (replication stays unpipelined). It must be applied first,
// to the transport New passes in; tests then wrap its result as they like.
// It is the baseline of the tests and the benchmark that show what leaving
// the fast path off changes.
func HeartbeatFastPath(t raft.Transport) raft.Transport {
	return fastPathTransport{t.(*serialTransport)}
}

// fastPathTransport is a serialTransport that installs raft's heartbeat
// handler on the network transport.
type fastPathTransport struct{ *serialTransport }

func (t fastPathTransport) SetHeartbeatHandler(cb func(raft.RPC)) {
	t.NetworkTransport.SetHeartbeatHandler(cb)
}

// NetworkTransport is a Config.WrapTransport that gives raft hashicorp's
// network transport as it ships, with the heartbeat fast path and pipelined
// replication (what every node ran before serial.go). It must be applied
// first, like HeartbeatFastPath.
func NetworkTransport(t raft.Transport) raft.Transport {
	return t.(*serialTransport).NetworkTransport
}

// LogEntries returns every entry of n's raft log store, in index order.
func LogEntries(n *Node) ([]raft.Log, error) {
	first, err := n.store.FirstIndex()
	if err != nil {
		return nil, err
	}
	last, err := n.store.LastIndex()
	if err != nil {
		return nil, err
	}
	var out []raft.Log
	for i := first; i <= last && i > 0; i++ {
		var l raft.Log
		if err := n.store.GetLog(i, &l); err != nil {
			return nil, fmt.Errorf("%s: log entry %d: %w", n.cfg.NodeID, i, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// CurrentTerm is n's raft term.
func CurrentTerm(n *Node) uint64 { return n.raft.CurrentTerm() }

// LastIndex is the index of the last entry of n's raft log.
func LastIndex(n *Node) uint64 { return n.raft.LastIndex() }

// LastLog is the index and term of the last entry of n's raft log.
func LastLog(n *Node) (index, term uint64) {
	idx := n.raft.LastIndex()
	var l raft.Log
	if idx == 0 || n.store.GetLog(idx, &l) != nil {
		return idx, 0
	}
	return idx, l.Term
}

// rpcHeader is the header n's raft puts on every RPC it sends.
func rpcHeader(n *Node) raft.RPCHeader {
	id := raft.ServerID(n.cfg.NodeID)
	return raft.RPCHeader{
		ProtocolVersion: raft.ProtocolVersionMax,
		ID:              []byte(id),
		Addr:            n.trans.EncodePeer(id, n.trans.LocalAddr()),
	}
}

// SendHeartbeat sends to node to the heartbeat that from's raft sends to a follower
// while it leads (the request hashicorp's replication heartbeat loop builds:
// the header, from's current term and address, nothing else), over from's
// network transport: past any Config.WrapTransport, so fault rules do not
// stop it. It returns when to has answered, that is once to has handled it.
func SendHeartbeat(from, to *Node) (raft.AppendEntriesResponse, error) {
	id := raft.ServerID(from.cfg.NodeID)
	req := raft.AppendEntriesRequest{
		RPCHeader: rpcHeader(from),
		Term:      from.raft.CurrentTerm(),
		//lint:ignore SA1019 hashicorp's heartbeat loop still sets it, for older peers
		Leader: from.trans.EncodePeer(id, from.trans.LocalAddr()),
	}
	var resp raft.AppendEntriesResponse
	err := from.trans.AppendEntries(raft.ServerID(to.cfg.NodeID), to.trans.LocalAddr(), &req, &resp)
	return resp, err
}

// SendTimeoutNow sends to node to the TimeoutNow that a leader (from) sends to the
// target of a leadership transfer: to starts an election at once, and voters
// that still know a leader grant it. Like SendHeartbeat it goes past any
// Config.WrapTransport.
func SendTimeoutNow(from, to *Node) error {
	var resp raft.TimeoutNowResponse
	return from.trans.TimeoutNow(raft.ServerID(to.cfg.NodeID), to.trans.LocalAddr(),
		&raft.TimeoutNowRequest{RPCHeader: rpcHeader(from)}, &resp)
}
