// Package controller runs on every claim-store node and acts while that node is
// the raft leader. It keeps worker sessions (heartbeats renew leases in the
// leader's memory; only an expiry is replicated), places partitions with a
// pluggable strategy (controller/placement), and drives the two-phase handoff:
// it claims unassigned partitions, prepares moves within throttles, commits
// drained handoffs, and force-commits partitions whose owner is gone or whose
// drain deadline passed. Every decision is a command whose events carry the rule
// and load numbers that caused it.
//
// Its only state of its own is the session table; everything else is read from
// the replicated state each round, so a new leader picks up every in-flight
// handoff where it stands.
//
// # Usage sketch
//
//	ctrl, err := controller.New(node, controller.DefaultConfig())
//	...
//	srv, err := server.New(node, server.Config{Sessions: ctrl, Planner: ctrl, ...})
//	...
//	ctrl.Close()
//
// The API server passes worker registrations and heartbeats to the controller
// (Registered, Heartbeat) and serves its dry run (Plan). HandoffMetrics turns
// applied events into handoff metrics on every node (raftnode.Config.OnEvents).
package controller
