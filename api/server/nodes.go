package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton/api"
)

// nodeStatusTimeout bounds the read of one member's status for PathNodes: a
// member that is down or frozen must not hold the answer about the others.
const nodeStatusTimeout = 2 * time.Second

// clusterStatus is this node's answer to PathStatus.
func (s *Server) clusterStatus(ctx context.Context) (api.ClusterStatus, error) {
	st, err := s.node.Status(ctx)
	if err != nil {
		return api.ClusterStatus{}, err
	}
	out := api.ClusterStatus{
		NodeID: st.NodeID, State: st.State, Term: st.Term, LeaderID: st.LeaderID, LeaderAPI: st.LeaderAPI,
		CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, StateIndex: st.StateIndex,
		LastIndex: st.LastIndex, SnapshotIndex: st.SnapshotIndex, Ready: st.Ready, NotReady: st.NotReady,
		AuditFirst: st.AuditFirst, AuditLast: st.AuditLast, AuditEvents: st.AuditEvents,
	}
	for _, m := range st.Members {
		out.Members = append(out.Members, api.Member{ID: m.ID, RaftAddr: m.RaftAddr, APIAddr: m.APIAddr, Voter: m.Voter, Leader: m.Leader})
	}
	s.digestStatus(&out)
	return out, nil
}

// nodes answers PathNodes: this node's status, and every other member's read
// from its API with the caller's own token (as a forward would carry it), all
// at once and each within nodeStatusTimeout. A member that cannot be read is
// listed with the error.
func (s *Server) nodes(w http.ResponseWriter, r *http.Request, caller principal) error {
	self, err := s.clusterStatus(r.Context())
	if err != nil {
		return err
	}
	out := api.NodeStatusList{Node: self.NodeID, Nodes: make([]api.NodeStatus, len(self.Members))}
	auth := r.Header.Get("Authorization")
	var wg sync.WaitGroup
	for i, m := range self.Members {
		out.Nodes[i] = api.NodeStatus{ID: m.ID, APIAddr: m.APIAddr}
		switch {
		case m.ID == self.NodeID:
			st := self
			out.Nodes[i].Status = &st
			continue
		case m.APIAddr == "":
			out.Nodes[i].Error = api.Errorf(api.CodeUnavailable, "member %s has not registered its API address", m.ID)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			st, err := s.peerStatus(r.Context(), m.ID, m.APIAddr, auth)
			out.Nodes[i].TookMS = time.Since(start).Milliseconds()
			if err != nil {
				out.Nodes[i].Error = toAPIError(err)
				return
			}
			out.Nodes[i].Status = &st
		}()
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, out)
	return nil
}

// peerStatus reads member id's PathStatus at apiAddr with the Authorization
// header auth. An error answer comes back as that *api.Error; a node that
// does not answer, or answers as another node, as CodeUnavailable.
func (s *Server) peerStatus(ctx context.Context, id, apiAddr, auth string) (api.ClusterStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, nodeStatusTimeout)
	defer cancel()
	var st api.ClusterStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(apiAddr, "/")+api.PathStatus, nil)
	if err != nil {
		return st, api.Errorf(api.CodeUnavailable, "member %s: %v", id, err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := s.fwd.Do(req)
	if err != nil {
		return st, api.Errorf(api.CodeUnavailable, "member %s at %s: %v", id, apiAddr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerStatusBytes+1))
	if err != nil {
		return st, api.Errorf(api.CodeUnavailable, "member %s: read status: %v", id, err)
	}
	if len(body) > maxPeerStatusBytes {
		return st, api.Errorf(api.CodeUnavailable, "member %s: status answer over %d bytes", id, maxPeerStatusBytes)
	}
	if resp.StatusCode != http.StatusOK {
		var eb api.ErrorBody
		if json.Unmarshal(body, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
			eb.Error.Message = fmt.Sprintf("member %s: %s", id, eb.Error.Message)
			return st, eb.Error
		}
		return st, api.Errorf(api.CodeUnavailable, "member %s: status %d", id, resp.StatusCode)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, api.Errorf(api.CodeUnavailable, "member %s: status answer: %v", id, err)
	}
	if st.NodeID != id {
		return st, api.Errorf(api.CodeUnavailable, "the node answering at %s is %q, not %q", apiAddr, st.NodeID, id)
	}
	return st, nil
}
