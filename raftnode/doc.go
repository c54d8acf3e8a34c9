// Package raftnode runs Baton's claim store on hashicorp/raft: bolt log and stable
// stores behind a log cache, file snapshots that carry the state and the audit
// log, a TCP transport with optional mutual TLS, bootstrap/join/remove, applies
// bounded by a context, reads at three consistency levels, readiness, and
// leadership transfer on shutdown.
//
// The raft.FSM adapter is thin: it decodes committed entries, applies them to
// the fsm package's State with their index and term, appends the resulting events
// to the audit log, and wakes waiters. Nothing above raftnode sees a hashicorp
// raft error; they are translated into ErrNotLeader, ErrUnknownOutcome and
// ErrShutdown here.
//
// # Usage sketch
//
//	cfg := raftnode.DefaultConfig()
//	cfg.NodeID, cfg.DataDir, cfg.APIAddr = "n1", dir, "http://127.0.0.1:8080"
//	cfg.RaftAddr, cfg.Bootstrap = "127.0.0.1:7001", true
//	n, err := raftnode.New(cfg)
//	...
//	res, err := n.Propose(ctx, fsm.Command{Body: fsm.Claim{...}}) // leader only
//	switch {
//	case errors.Is(err, raftnode.ErrNotLeader):     // forward to the leader's API
//	case errors.Is(err, raftnode.ErrUnknownOutcome): // retry, same request id
//	case err == nil && res.FirstError() != nil:      // rejected by the state machine
//	}
//	err = n.Read(ctx, raftnode.Linearizable, func(s *fsm.State) { a, _ = s.Assignment("w1") })
//	...
//	n.Shutdown(ctx) // hands leadership over first
//
// Other nodes join through any node's API, which forwards to the leader's
// Node.Join (AddVoter, then the node's API address is recorded in the state).
package raftnode
