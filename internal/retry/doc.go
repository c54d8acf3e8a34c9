// Package retry is the one retry policy of Baton's clients: which failures are
// worth another attempt, and how long to wait before it. api/client (its
// wire-level retries) and consumer (its reports, JetStream calls and session
// loops) both use it, so the two cannot disagree about an error again.
//
// # Classes
//
// Classify sorts an error into a Class, and a retry loop depends on the class
// only:
//
//   - Transient: it may go away on another node or a little later (no leader,
//     a node catching up or shutting down, an unknown outcome, a time-out, a
//     lost connection, a consumer that is being recreated). Retry after a
//     back-off.
//   - Throttle: the other side is busy or asked us to wait (a rate limit, the
//     consumer limit, a WorkQueue subject another consumer still filters).
//     Retry after a longer back-off.
//   - Terminal: the same attempt gets the same answer (a rejection by the state
//     machine, a 4xx, a stream that does not exist, bad configuration). Do not
//     retry: report it and re-plan.
//
// An error Classify does not recognise is Transient: every retry loop is
// bounded (Policy.Attempts, a context), so an unknown failure costs a few
// attempts, while treating it as Terminal could give up on a report the
// protocol needs. A caller that knows better marks its error with
// MarkTerminal.
//
// # The API's "internal" code is Transient
//
// A 500 internal answer is what the server sends for an error it did not map
// to a code of its own. It is a bug answer, and retrying a bug repeats it. It
// is retried anyway (within the bounded attempts), for three reasons:
//
//  1. Its outcome may be unknown. The server maps every failure it knows to
//     be passing (no leader, not ready, shutting down, unknown outcome, time-out)
//     to a 503/504 code, so internal is what is left: an error it did not
//     expect, from raft, the disk or encoding, after which a write may or may
//     not have been applied. A retry settles that: every write carries one
//     request id on all its attempts, and the state machine returns the first
//     outcome for a duplicate. Giving up instead leaves the caller with a write
//     whose fate it cannot know. The consumer takes a Terminal answer to a
//     report (drained, activated) as a refusal and moves on, which would be
//     wrong for a report the store may never have recorded.
//  2. It is often not the same answer elsewhere. The replicated state machine
//     is deterministic and returns its rejections as state-machine codes, never
//     as internal; an internal error comes from one node's shell (its disk, its
//     raft instance, its process), and the next attempt may go to another node.
//     A proxy's 500 page decodes as internal too.
//  3. The cost is bounded and visible. A deterministic bug costs the policy's
//     attempts, after which the caller still gets the internal error (and the
//     server has logged each one), just as for any other Transient error.
//
// A 4xx answer is Terminal whatever its code: every node would give it.
//
// # Waiting
//
// Backoff is jittered exponential back-off: each wait is drawn from [d/2, d],
// d starts at an initial bound and doubles up to a maximum, and a Throttle wait
// uses four times d (up to the maximum). The jitter spreads out clients that
// failed together. Do runs a function under a Policy: it stops on a Terminal
// error, when its context ends, or after Policy.Attempts attempts.
//
// The package holds no state; it imports api, fsm and the NATS client (whose
// errors it classifies) and neither api/client nor consumer.
package retry
