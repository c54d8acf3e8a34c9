package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/raftnode"
)

// DigestNode is what the corruption check needs from the node besides Node
// (raftnode.Node): its state digests, the comparison with its peers', and
// the outcome so far. A Node without it has no corruption check.
type DigestNode interface {
	Digests() []raftnode.Digest
	CheckDigests(ctx context.Context, voters int, members []string, peers []raftnode.NodeDigests) raftnode.DigestCheck
	DigestCheck() raftnode.DigestCheck
}

var _ DigestNode = (*raftnode.Node)(nil)

// PeerWorkerID is the worker id of the token the corruption check derives
// from WorkerTokenKey when the server has no static token to present.
const PeerWorkerID fsm.WorkerID = "baton-node"

// Bounds of the corruption check's calls to other nodes.
const (
	// maxPeerStatusBytes bounds a peer's status answer.
	maxPeerStatusBytes = 1 << 20
	// maxPeerDigests bounds the digests taken from one peer's answer.
	maxPeerDigests = 256
	// peerTimeout bounds one round of the check, so that a frozen peer
	// delays nothing but its own comparison.
	peerTimeout = 10 * time.Second
)

// peerToken is the bearer token the corruption check presents: cfg.PeerToken,
// else the least privileged static token, else a derived worker token.
func peerToken(cfg Config) string {
	if cfg.PeerToken != "" {
		return cfg.PeerToken
	}
	for _, role := range []Role{RoleRead, RoleWorker, RoleOperator} {
		for _, t := range cfg.Tokens {
			if t.Role == role {
				return t.Secret
			}
		}
	}
	if cfg.WorkerTokenKey != nil {
		if tok, err := WorkerToken(cfg.WorkerTokenKey, PeerWorkerID); err == nil {
			return tok
		}
	}
	return ""
}

// digestCheck is the corruption check's loop; it runs until the server
// closes, and owns failing (the peers whose last fetch failed, so that a
// failure is logged when it starts and when it ends, not every round).
type digestCheck struct {
	s       *Server
	node    DigestNode
	token   string
	failing map[string]bool
}

// startDigestCheck starts the corruption check if the node has one and the
// config does not turn it off. Close waits for it.
func (s *Server) startDigestCheck() {
	dn, ok := s.node.(DigestNode)
	if !ok || s.cfg.DigestCheckInterval < 0 {
		return
	}
	c := &digestCheck{s: s, node: dn, token: peerToken(s.cfg), failing: map[string]bool{}}
	s.checkDone = make(chan struct{})
	go c.run()
}

func (c *digestCheck) run() {
	defer close(c.s.checkDone)
	tick := time.NewTicker(c.s.cfg.DigestCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.s.ctx.Done():
			return
		case <-tick.C:
		}
		c.round()
	}
}

// round fetches every other member's digests and has the node compare them
// with its own.
func (c *digestCheck) round() {
	ctx, cancel := context.WithTimeout(c.s.ctx, min(c.s.cfg.DigestCheckInterval, peerTimeout))
	defer cancel()
	st, err := c.s.node.Status(ctx)
	if err != nil {
		c.s.log.Debug("corruption check: no status", "err", err)
		return
	}
	self := c.s.node.ID()
	var members []string
	voters := 0
	type result struct {
		peer raftnode.NodeDigests
		err  error
	}
	results := make([]result, len(st.Members))
	var wg sync.WaitGroup
	for i, m := range st.Members {
		members = append(members, m.ID)
		if m.Voter {
			voters++
		}
		if m.ID == self || m.APIAddr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ds, err := c.fetch(ctx, m.ID, m.APIAddr)
			results[i] = result{peer: raftnode.NodeDigests{Node: m.ID, Digests: ds}, err: err}
		}()
	}
	wg.Wait()
	var peers []raftnode.NodeDigests
	for i, r := range results {
		id := st.Members[i].ID
		if id == self || st.Members[i].APIAddr == "" {
			continue
		}
		switch {
		case r.err != nil && !c.failing[id]:
			c.failing[id] = true
			c.s.log.Warn("corruption check: cannot read a member's digests; it goes unchecked meanwhile",
				"member", id, "api_addr", st.Members[i].APIAddr, "err", r.err)
		case r.err == nil && c.failing[id]:
			delete(c.failing, id)
			c.s.log.Info("corruption check: reads the member's digests again", "member", id)
		}
		if r.err == nil {
			peers = append(peers, r.peer)
		}
	}
	for id := range c.failing {
		if !slices.Contains(members, id) {
			delete(c.failing, id)
		}
	}
	c.node.CheckDigests(ctx, voters, members, peers)
}

// fetch reads one member's digests from its status.
func (c *digestCheck) fetch(ctx context.Context, id, apiAddr string) ([]raftnode.Digest, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(apiAddr, "/")+api.PathStatus, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.s.fwd.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerStatusBytes+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = " (every node must accept the same tokens; see server.Config.PeerToken)"
		}
		return nil, fmt.Errorf("status %d%s", resp.StatusCode, hint)
	}
	return parsePeerDigests(id, body)
}

// parsePeerDigests reads the digests out of member id's status answer. It
// refuses an answer over maxPeerStatusBytes, one that is not a status, one
// from another node (an address reused by another member), more than
// maxPeerDigests digests, and any digest that does not parse.
func parsePeerDigests(id string, body []byte) ([]raftnode.Digest, error) {
	if len(body) > maxPeerStatusBytes {
		return nil, fmt.Errorf("status answer over %d bytes", maxPeerStatusBytes)
	}
	var st api.ClusterStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("status answer: %w", err)
	}
	if st.NodeID != id {
		return nil, fmt.Errorf("the node answering is %q, not %q", st.NodeID, id)
	}
	if len(st.Digests) > maxPeerDigests {
		return nil, fmt.Errorf("%d digests, at most %d", len(st.Digests), maxPeerDigests)
	}
	out := make([]raftnode.Digest, 0, len(st.Digests))
	for _, d := range st.Digests {
		pd, err := raftnode.ParseDigest(d.Index, d.Digest)
		if err != nil {
			return nil, err
		}
		out = append(out, pd)
	}
	return out, nil
}

// digestStatus fills the corruption check's part of a status answer.
func (s *Server) digestStatus(out *api.ClusterStatus) {
	dn, ok := s.node.(DigestNode)
	if !ok {
		return
	}
	for _, d := range dn.Digests() {
		out.Digests = append(out.Digests, api.Digest{Index: uint64(d.Index), Digest: d.String()})
	}
	check := dn.DigestCheck()
	out.DigestChecked = uint64(check.Checked)
	for _, d := range check.Divergent {
		ad := api.Divergence{Node: d.Node, Index: uint64(d.Index), Digest: raftnode.Digest{Sum: d.Sum}.String()}
		if d.HasMajority {
			ad.Majority = raftnode.Digest{Sum: d.Majority}.String()
		}
		for _, ns := range d.All {
			ad.Digests = append(ad.Digests, api.NodeDigest{Node: ns.Node, Digest: raftnode.Digest{Sum: ns.Sum}.String()})
		}
		out.Divergence = append(out.Divergence, ad)
	}
}
