package server

import (
	"fmt"
	"net/http"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/raftnode"
)

func (s *Server) declare(w http.ResponseWriter, r *http.Request, caller principal) error {
	var req api.DeclareRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if err := checkDeclare(req); err != nil {
		return err
	}
	return s.operate(w, r, caller, "declare partitions", fsm.Declare{Partitions: req.Partitions}, false)
}

func (s *Server) removePartitions(w http.ResponseWriter, r *http.Request, caller principal) error {
	var req api.RemovePartitionsRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if err := checkRemovePartitions(req); err != nil {
		return err
	}
	return s.operate(w, r, caller, "remove partitions", fsm.RemovePartitions{Partitions: req.Partitions}, true)
}

func (s *Server) removePartition(w http.ResponseWriter, r *http.Request, caller principal) error {
	id, err := partitionParam(r)
	if err != nil {
		return err
	}
	res, err := s.propose(r, "operator:"+caller.name, "remove partition", fsm.RemovePartitions{Partitions: []fsm.PartitionID{id}})
	if err != nil {
		return err
	}
	return single(w, res)
}

func (s *Server) listPartitions(w http.ResponseWriter, r *http.Request, caller principal) error {
	c, err := consistency(r)
	if err != nil {
		return err
	}
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		return err
	}
	after := fsm.PartitionID(r.URL.Query().Get("after"))
	var out api.PartitionList
	if err := s.read(w, r, c, func(st *fsm.State) {
		out.Index = st.AppliedIndex()
		out.Partitions = st.Partitions(after, limit+1)
	}); err != nil {
		return err
	}
	if len(out.Partitions) > limit {
		out.Partitions = out.Partitions[:limit]
		out.Next = out.Partitions[limit-1].ID
	}
	setIndex(w, out.Index)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getPartition(w http.ResponseWriter, r *http.Request, caller principal) error {
	id, err := partitionParam(r)
	if err != nil {
		return err
	}
	c, err := consistency(r)
	if err != nil {
		return err
	}
	var p fsm.PartitionInfo
	var ok bool
	var idx fsm.RaftIndex
	if err := s.read(w, r, c, func(st *fsm.State) { p, ok = st.PartitionView(id); idx = st.AppliedIndex() }); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("partition %s: %w", id, fsm.ErrUnknownPartition)
	}
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, p)
	return nil
}

// move is the operator's "move this partition to that worker": a prepared
// handoff (the owner drains, the controller commits), or with force an immediate
// commit resuming from the last checkpoint.
func (s *Server) move(w http.ResponseWriter, r *http.Request, caller principal) error {
	id, err := partitionParam(r)
	if err != nil {
		return err
	}
	var req api.MoveRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	timeout, err := checkMove(req, s.cfg.DrainTimeout)
	if err != nil {
		return err
	}
	var p fsm.PartitionInfo
	var ok bool
	if err := s.node.Read(r.Context(), raftnode.Default, func(st *fsm.State) { p, ok = st.PartitionView(id) }); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("partition %s: %w", id, fsm.ErrUnknownPartition)
	}
	reason := req.Reason
	if reason == "" {
		reason = "operator_move"
	}
	var body fsm.Body
	if req.Force {
		body = fsm.ForceCommit{Items: []fsm.ForceItem{{Partition: id, Epoch: p.Epoch, To: req.To, Reason: fsm.ForceOperator}}}
	} else {
		body = fsm.Prepare{Items: []fsm.PrepareItem{{
			Partition: id, Epoch: p.Epoch, From: p.Owner, To: req.To, Reason: reason,
			DrainTimeout: int64(timeout),
		}}}
	}
	// The command is built from the state as well (the epoch, the owner), so
	// a retry after the first attempt applied builds another body; the
	// request digest (propose) still tells a retry from another request.
	res, err := s.propose(r, "operator:"+caller.name, "move "+string(id)+" to "+string(req.To), body)
	if err != nil {
		return err
	}
	return single(w, res)
}

func (s *Server) pin(w http.ResponseWriter, r *http.Request, caller principal) error {
	id, err := partitionParam(r)
	if err != nil {
		return err
	}
	var req api.PinRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if err := checkPin(req); err != nil {
		return err
	}
	return s.operate(w, r, caller, "pin", fsm.Pin{Partition: id, Worker: req.Worker}, true)
}

func (s *Server) rebalance(w http.ResponseWriter, r *http.Request, caller principal) error {
	var req api.RebalanceRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	cause := "resume rebalancing"
	if req.Paused {
		cause = "pause rebalancing"
	}
	return s.operate(w, r, caller, cause, fsm.SetRebalance{Paused: req.Paused}, true)
}

func (s *Server) listHandoffs(w http.ResponseWriter, r *http.Request, caller principal) error {
	c, err := consistency(r)
	if err != nil {
		return err
	}
	var out api.HandoffList
	if err := s.read(w, r, c, func(st *fsm.State) { out = api.HandoffList{Index: st.AppliedIndex(), Handoffs: st.Handoffs()} }); err != nil {
		return err
	}
	setIndex(w, out.Index)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) plan(w http.ResponseWriter, r *http.Request, caller principal) error {
	if s.cfg.Planner == nil {
		return api.Errorf(api.CodeNotFound, "this node runs no planner")
	}
	p, err := s.cfg.Planner.Plan(r.Context())
	if err != nil {
		return err
	}
	setIndex(w, p.Index)
	writeJSON(w, http.StatusOK, p)
	return nil
}
