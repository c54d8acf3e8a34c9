// Package faultnet injects network faults between raft nodes in tests: a shared
// Network holds drop and delay rules per directed pair of nodes, and Wrap puts a
// raft.Transport behind them. The wrapper still implements raft's optional
// pre-vote interface (hashicorp raft turns pre-vote off for transports that do
// not), so partitioned clusters behave as they do in production. Proxy cuts a
// real process off from one TCP service (proxy.go).
package faultnet

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ErrDropped is what a dropped RPC returns to raft.
var ErrDropped = errors.New("faultnet: dropped")

// Network is the fault rules shared by every wrapped transport of one test
// cluster. The zero value is not usable; call New.
type Network struct {
	// mu guards rules; every wrapped transport's RPC path reads it.
	mu    sync.RWMutex
	rules map[pair]rule
}

type pair struct{ from, to raft.ServerID }

type rule struct {
	drop  bool
	delay time.Duration
}

// New returns a network with no faults.
func New() *Network { return &Network{rules: make(map[pair]rule)} }

// Drop makes RPCs from one node to another fail (one direction).
func (n *Network) Drop(from, to string) { n.set(from, to, func(r *rule) { r.drop = true }) }

// Delay makes RPCs from one node to another wait d first (one direction).
func (n *Network) Delay(from, to string, d time.Duration) {
	n.set(from, to, func(r *rule) { r.delay = d })
}

// Isolate cuts node off from every other node in nodes, both ways.
func (n *Network) Isolate(node string, nodes ...string) {
	for _, o := range nodes {
		if o != node {
			n.Drop(node, o)
			n.Drop(o, node)
		}
	}
}

// Partition splits nodes into two sides that cannot reach each other.
func (n *Network) Partition(side1, side2 []string) {
	for _, a := range side1 {
		for _, b := range side2 {
			n.Drop(a, b)
			n.Drop(b, a)
		}
	}
}

// Heal removes every fault.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rules = make(map[pair]rule)
}

func (n *Network) set(from, to string, f func(*rule)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := pair{raft.ServerID(from), raft.ServerID(to)}
	r := n.rules[p]
	f(&r)
	n.rules[p] = r
}

// gate applies the rule for from→to: it waits out a delay and reports a drop.
func (n *Network) gate(from, to raft.ServerID) error {
	n.mu.RLock()
	r := n.rules[pair{from, to}]
	n.mu.RUnlock()
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	if r.drop {
		return ErrDropped
	}
	return nil
}

// Wrap returns t behind the network's rules for node id. The result implements
// raft.WithPreVote and raft.WithClose when t does.
func (n *Network) Wrap(id string, t raft.Transport) raft.Transport {
	return &transport{Transport: t, net: n, id: raft.ServerID(id)}
}

type transport struct {
	raft.Transport
	net *Network
	id  raft.ServerID
}

var (
	_ raft.WithPreVote = (*transport)(nil)
	_ raft.WithClose   = (*transport)(nil)
)

// AppendEntriesPipeline is refused so that every append goes through
// AppendEntries, where the rules apply; raft falls back to it by itself.
func (t *transport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

func (t *transport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if err := t.net.gate(t.id, id); err != nil {
		return err
	}
	return t.Transport.AppendEntries(id, target, args, resp)
}

func (t *transport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if err := t.net.gate(t.id, id); err != nil {
		return err
	}
	return t.Transport.RequestVote(id, target, args, resp)
}

func (t *transport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	pv, ok := t.Transport.(raft.WithPreVote)
	if !ok {
		return errors.New("faultnet: wrapped transport has no pre-vote")
	}
	if err := t.net.gate(t.id, id); err != nil {
		return err
	}
	return pv.RequestPreVote(id, target, args, resp)
}

func (t *transport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	if err := t.net.gate(t.id, id); err != nil {
		return err
	}
	return t.Transport.InstallSnapshot(id, target, args, resp, data)
}

func (t *transport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	if err := t.net.gate(t.id, id); err != nil {
		return err
	}
	return t.Transport.TimeoutNow(id, target, args, resp)
}

func (t *transport) Close() error {
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}
