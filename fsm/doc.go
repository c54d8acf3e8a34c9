// Package fsm is Baton's claim store state machine: a pure, deterministic,
// event-sourced model of which worker owns which partition, under which fencing
// epoch, and where each owner resumes.
//
// The package has no I/O, clocks, randomness, goroutines or logging. Everything that
// is not deterministic (the leader's wall-clock time, drain deadlines, request ids,
// the actor) is stamped into a [Command] by whoever proposes it, and the raft index and
// term come from the log entry. Two replicas that apply the same entries therefore
// hold byte-identical states (see [State.WriteSnapshot]).
//
// # Decide, then fold
//
// [State.Apply] validates a command against the current state without changing it and
// produces either events or a rejection ([*RejectError] with a stable [Code]). Only
// the unexported fold step changes state, and Apply folds exactly the events it has
// just produced. So:
//
//   - a rejected command (or a rejected item of a batch command) changes nothing;
//   - folding the audit trail from an empty state gives the live state ([Replay]);
//   - the events are the audit log: every claim, prepare, drain, commit, activate,
//     abort and release is one [Event] carrying the raft index, term, leader time,
//     actor and cause of the command that produced it.
//
// # Usage sketch
//
// raftnode's raft.FSM adapter does, for every committed log entry:
//
//	cmd, err := fsm.DecodeCommand(entry.Data)
//	if err != nil { ... } // an undecodable committed entry: stop, never guess
//	res := state.Apply(fsm.RaftIndex(entry.Index), entry.Term, cmd)
//	audit.Append(res.Events) // persist the audit trail
//	return res               // res.Err / res.Items carry rejections to the proposer
//
// A proposer builds commands with a [Header] (request id, actor, cause, leader time)
// and one body ([Join], [Claim], [Prepare], [DrainReport], [Commit], ...), encodes them with
// [EncodeCommand], and retries an unknown outcome with the same request id: Apply
// returns the first result for a request id it has already applied and emits nothing.
//
// Read views ([State.Assignment], [State.PartitionView], [State.Summary]) serve the
// API; [State.CheckInvariants] implements the numbered invariants of docs/protocol.md.
//
// State is not safe for concurrent use: its owner (raftnode's FSM goroutine) must
// serialize Apply with readers.
package fsm
