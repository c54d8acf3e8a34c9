package raftnode

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/fsm"
)

// Join adds a node to the cluster as a voter and records its API address. It
// runs on the leader (ErrNotLeader elsewhere). Joining again with the same id and
// address only refreshes the API address; a node that comes back under the same
// id with another address, or a new id at an old address, first has the stale
// entry removed, so a removed-and-re-added node cannot wedge the cluster.
func (n *Node) Join(ctx context.Context, id, raftAddr, apiAddr string) error {
	if id == "" || raftAddr == "" || apiAddr == "" {
		return errors.New("raftnode: join needs id, raft address and API address")
	}
	if !n.IsLeader() {
		return n.notLeader()
	}
	ctx, cancel := n.withTimeout(ctx)
	defer cancel()
	cf := n.raft.GetConfiguration()
	if err := n.translate(waitFuture(ctx, cf)); err != nil {
		return fmt.Errorf("raftnode: join %s: read configuration: %w", id, err)
	}
	member := false
	for _, s := range cf.Configuration().Servers {
		sameID, sameAddr := s.ID == raft.ServerID(id), s.Address == raft.ServerAddress(raftAddr)
		switch {
		case sameID && sameAddr:
			member = true
		case sameID || sameAddr:
			n.log.Info("removing stale member before join", "member", s.ID, "addr", s.Address)
			if err := n.translate(waitFuture(ctx, n.raft.RemoveServer(s.ID, 0, 0))); err != nil {
				return fmt.Errorf("raftnode: join %s: remove stale %s: %w", id, s.ID, err)
			}
		}
	}
	if !member {
		if err := n.translate(waitFuture(ctx, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, 0))); err != nil {
			return fmt.Errorf("raftnode: join %s: add voter: %w", id, err)
		}
		n.log.Info("node joined", "member", id, "raft_addr", raftAddr, "api_addr", apiAddr)
	}
	res, err := n.Propose(ctx, fsm.Command{
		Header: fsm.Header{Actor: "node:" + n.cfg.NodeID, Cause: "join " + id},
		Body:   fsm.RegisterNode{Node: id, APIAddr: apiAddr},
	})
	if err == nil {
		err = res.FirstError()
	}
	if err != nil {
		return fmt.Errorf("raftnode: join %s: register API address: %w", id, err)
	}
	return nil
}

// Remove takes a node out of the cluster and forgets its API address. It runs
// on the leader. Removing the leader itself is allowed: it steps down.
func (n *Node) Remove(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return n.notLeader()
	}
	ctx, cancel := n.withTimeout(ctx)
	defer cancel()
	if err := n.translate(waitFuture(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, 0))); err != nil {
		return fmt.Errorf("raftnode: remove %s: %w", id, err)
	}
	if id == n.cfg.NodeID {
		return nil // no longer leader; the next leader need not know our address
	}
	res, err := n.Propose(ctx, fsm.Command{
		Header: fsm.Header{Actor: "node:" + n.cfg.NodeID, Cause: "remove " + id},
		Body:   fsm.RemoveNode{Node: id},
	})
	if err == nil {
		if ferr := res.FirstError(); ferr != nil && !errors.Is(ferr, fsm.ErrUnknownNode) {
			err = ferr
		}
	}
	if err != nil {
		return fmt.Errorf("raftnode: remove %s: forget API address: %w", id, err)
	}
	return nil
}

// Member is one server of the raft configuration.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr,omitempty"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
}

// Status is a node's view of the cluster.
type Status struct {
	NodeID        string    `json:"node_id"`
	State         string    `json:"state"` // Leader, Follower, Candidate, Shutdown
	Term          uint64    `json:"term"`
	LeaderID      string    `json:"leader_id,omitempty"`
	LeaderAddr    string    `json:"leader_raft_addr,omitempty"`
	LeaderAPI     string    `json:"leader_api_addr,omitempty"`
	CommitIndex   uint64    `json:"commit_index"`
	AppliedIndex  uint64    `json:"applied_index"` // raft's, including entries that never reach the FSM
	StateIndex    uint64    `json:"state_index"`   // last command applied to the state machine
	LastIndex     uint64    `json:"last_log_index"`
	SnapshotIndex uint64    `json:"last_snapshot_index"`
	LastContact   time.Time `json:"last_contact,omitempty"`
	Members       []Member  `json:"members"`
	Ready         bool      `json:"ready"`
	NotReady      string    `json:"not_ready,omitempty"`
	AuditFirst    uint64    `json:"audit_first_index"`
	AuditLast     uint64    `json:"audit_last_index"`
	AuditEvents   int       `json:"audit_events"`
}

// Status returns this node's view of the cluster.
func (n *Node) Status(ctx context.Context) (Status, error) {
	if n.stopped() {
		return Status{}, ErrShutdown
	}
	st := Status{
		NodeID: n.cfg.NodeID, State: n.raft.State().String(), Term: n.raft.CurrentTerm(),
		CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.raft.AppliedIndex(), LastIndex: n.raft.LastIndex(),
		StateIndex: uint64(n.AppliedIndex()),
	}
	st.SnapshotIndex, _ = strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	if !n.IsLeader() {
		st.LastContact = n.raft.LastContact()
	}
	st.LeaderID, st.LeaderAddr, st.LeaderAPI = n.Leader()
	if err := n.Ready(); err != nil {
		st.NotReady = err.Error()
	} else {
		st.Ready = true
	}
	b := n.audit.Bounds()
	st.AuditFirst, st.AuditLast, st.AuditEvents = uint64(b.First), uint64(b.Last), b.Count
	ctx, cancel := n.withTimeout(ctx)
	defer cancel()
	cf := n.raft.GetConfiguration()
	if err := waitFuture(ctx, cf); err != nil {
		return st, fmt.Errorf("raftnode: status: %w", n.translate(err))
	}
	var apis map[string]string
	n.machine.read(func(s *fsm.State) {
		apis = make(map[string]string)
		for _, nd := range s.Nodes() {
			apis[nd.ID] = nd.APIAddr
		}
	})
	for _, s := range cf.Configuration().Servers {
		st.Members = append(st.Members, Member{
			ID: string(s.ID), RaftAddr: string(s.Address), APIAddr: apis[string(s.ID)],
			Voter: s.Suffrage == raft.Voter, Leader: string(s.ID) == st.LeaderID,
		})
	}
	return st, nil
}
