package server

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/audit"
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
	res, err := s.propose(r, "operator:"+caller.name, "move "+string(id)+" to "+string(req.To), body)
	if errors.Is(err, fsm.ErrRequestIDReused) {
		// The command is built from the state when it arrives (a forced
		// move's epoch and owner change once it is applied), so a retry of
		// a move that was applied may not be byte-identical to it and the
		// state machine calls the id reused.
		// If the id's events are there, this is that retry: answer as the
		// state machine answers any retry.
		if dup, ok := s.earlierMove(r, id); ok {
			writeResult(w, dup, true)
			return nil
		}
	}
	if err != nil {
		return err
	}
	return single(w, res)
}

// earlierMove finds the events a command with this request's id left on
// partition id, newest first and within a bounded scan, and returns them as a
// duplicate result. Our own proposal was applied (and rejected) after the
// earlier one, so the earlier one's events are in the log by now.
func (s *Server) earlierMove(r *http.Request, id fsm.PartitionID) (fsm.Result, bool) {
	reqID := r.Header.Get(api.HeaderRequestID)
	if reqID == "" {
		reqID = r.URL.Query().Get("request_id")
	}
	if reqID == "" {
		return fsm.Result{}, false
	}
	q := audit.Query{Partition: id, Desc: true, Limit: audit.MaxLimit}
	var evs []fsm.Event
	for range 4 { // a retry comes soon after: its events are among the newest
		p, err := s.node.Audit().Query(r.Context(), q)
		if err != nil {
			return fsm.Result{}, false
		}
		for _, ev := range p.Events {
			if ev.RequestID == reqID {
				evs = append(evs, ev)
			} else if len(evs) > 0 {
				break
			}
		}
		if len(evs) > 0 || p.Next == nil {
			break
		}
		q.After = p.Next
	}
	if len(evs) == 0 {
		return fsm.Result{}, false
	}
	slices.Reverse(evs)
	return fsm.Result{Index: evs[0].Index, Events: evs, Items: make([]error, 1), Duplicate: true}, true
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
	writeJSON(w, http.StatusOK, p)
	return nil
}
