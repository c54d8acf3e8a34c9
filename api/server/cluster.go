package server

import (
	"net/http"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

func (s *Server) status(w http.ResponseWriter, r *http.Request, caller principal) error {
	out, err := s.clusterStatus(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) summary(w http.ResponseWriter, r *http.Request, caller principal) error {
	c, err := consistency(r)
	if err != nil {
		return err
	}
	var sum fsm.Summary
	if err := s.read(w, r, c, func(st *fsm.State) { sum = st.Summary() }); err != nil {
		return err
	}
	setIndex(w, sum.Index)
	writeJSON(w, http.StatusOK, sum)
	return nil
}

func (s *Server) join(w http.ResponseWriter, r *http.Request, caller principal) error {
	var req api.JoinRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if err := checkJoin(req); err != nil {
		return err
	}
	if err := s.node.Join(r.Context(), req.ID, req.RaftAddr, req.APIAddr); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"joined": req.ID})
	return nil
}

func (s *Server) removeNode(w http.ResponseWriter, r *http.Request, caller principal) error {
	var req api.RemoveRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if err := checkRemoveNode(req); err != nil {
		return err
	}
	if err := s.node.Remove(r.Context(), req.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": req.ID})
	return nil
}
