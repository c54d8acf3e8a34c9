package raftnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/fsm"
)

// CheckJoin returns an fsm invalid_argument rejection unless a node may join
// with these values: id as fsm.CheckNodeID says, raftAddr a host:port with a
// host and a port from 1 to 65535, and both addresses non-empty and at most
// fsm.MaxAddrLen bytes. Join checks it before it touches the configuration, so
// that a join the state machine would refuse adds no voter.
func CheckJoin(id, raftAddr, apiAddr string) error {
	if err := fsm.CheckNodeID(id); err != nil {
		return invalid("id: %s", rejectMsg(err))
	}
	if raftAddr == "" || len(raftAddr) > fsm.MaxAddrLen {
		return invalid("raft_addr: want host:port of 1 to %d bytes", fsm.MaxAddrLen)
	}
	host, port, err := net.SplitHostPort(raftAddr)
	if err != nil || host == "" {
		return invalid("raft_addr %q: want host:port", raftAddr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return invalid("raft_addr %q: port must be 1 to 65535", raftAddr)
	}
	if apiAddr == "" || len(apiAddr) > fsm.MaxAddrLen {
		return invalid("api_addr: want 1 to %d bytes", fsm.MaxAddrLen)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return &fsm.RejectError{Code: fsm.CodeInvalidArgument, Msg: fmt.Sprintf(format, args...)}
}

// rejectMsg is a rejection's message without the "fsm: code: " prefix.
func rejectMsg(err error) string {
	var re *fsm.RejectError
	if errors.As(err, &re) && re.Msg != "" {
		return re.Msg
	}
	return err.Error()
}

// Join adds a node to the cluster as a voter and records its API address. It
// runs on the leader (ErrNotLeader elsewhere). Joining again with the same id and
// address only refreshes the API address; a node that comes back under the same
// id with another address, or a new id at an old address, first has the stale
// entry removed, so a removed-and-re-added node cannot wedge the cluster.
// Values CheckJoin refuses are an fsm.ErrInvalidArgument, before anything
// changes.
func (n *Node) Join(ctx context.Context, id, raftAddr, apiAddr string) error {
	if err := CheckJoin(id, raftAddr, apiAddr); err != nil {
		return err
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
// on the leader. Removing the leader itself is allowed: it steps down. An id
// fsm.CheckNodeID refuses is an fsm.ErrInvalidArgument, and a node neither in
// the configuration nor registered an fsm.ErrUnknownNode; neither changes
// anything.
func (n *Node) Remove(ctx context.Context, id string) error {
	if err := fsm.CheckNodeID(id); err != nil {
		return invalid("id: %s", rejectMsg(err))
	}
	if !n.IsLeader() {
		return n.notLeader()
	}
	ctx, cancel := n.withTimeout(ctx)
	defer cancel()
	cf := n.raft.GetConfiguration()
	if err := n.translate(waitFuture(ctx, cf)); err != nil {
		return fmt.Errorf("raftnode: remove %s: read configuration: %w", id, err)
	}
	member := false
	for _, s := range cf.Configuration().Servers {
		member = member || s.ID == raft.ServerID(id)
	}
	registered := false
	n.machine.read(func(s *fsm.State) {
		for _, nd := range s.Nodes() {
			registered = registered || nd.ID == id
		}
	})
	if !member && !registered {
		return &fsm.RejectError{Code: fsm.CodeUnknownNode, Msg: fmt.Sprintf("node %s is not a member of the cluster", id)}
	}
	if member {
		if err := n.translate(waitFuture(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, 0))); err != nil {
			return fmt.Errorf("raftnode: remove %s: %w", id, err)
		}
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
