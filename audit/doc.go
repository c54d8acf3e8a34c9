// Package audit is Baton's durable, indexed audit log: the events fsm produces,
// stored in a bbolt file, queryable by raft index range, partition, worker,
// handoff, event type and leader time, bounded by a deterministic retention
// policy, and carried in raft snapshots so a joining node gets the history.
//
// The events are the audit trail (invariant 5: folding them gives the live
// state). The log keeps every event except superseded checkpoints (only the
// latest fsm.Checkpointed per partition stays, as a record replaced by the
// next one and merged back into query results) and, once retention trims,
// the oldest events, which it folds into a base state first; events that
// explain the base state stay as reference records. Replay rebuilds the live state's
// content from the base state and the retained events.
//
// # Usage sketch
//
// raftnode's raft.FSM adapter owns the Log and calls the mutating methods on
// raft's FSM goroutine:
//
//	log, err := audit.Open(filepath.Join(dataDir, "audit.db"), cfg.Audit)
//
//	// Apply / ApplyBatch, for committed entries in order:
//	res := state.Apply(idx, term, cmd)
//	if err := log.Append(res.Events); err != nil {
//		panic(err) // the log is replicated state: stop, rebuild on restart
//	}
//
//	// Snapshot (FSM goroutine), then Persist (another goroutine):
//	snap, err := log.Snapshot(state.AppliedIndex())
//	...
//	_, err = snap.WriteTo(sink) // after the fsm state, in the same stream
//	snap.Release()              // always, also when Persist is never called
//
//	// Restore (FSM goroutine): reads exactly the audit section from r.
//	err = log.Restore(r)
//
// Readers (the API) query from any goroutine and page with Next:
//
//	q := audit.Query{Partition: "orders-17", Desc: true, Limit: 50}
//	for {
//		page, err := log.Query(ctx, q)
//		if err != nil { ... } // errors.Is(err, audit.ErrInvalidQuery): a 400
//		use(page.Events)
//		if page.Next == nil { break }
//		q.After = page.Next
//	}
//
// Every replica must use the same Config: retention runs inside Append and
// decides from the stored events and the Config alone, so replicas trim at the
// same points and hold the same content. The file is opened without fsync
// because raft rebuilds it (Restore from the latest snapshot, then Append of the
// entries after it); see DESIGN.md.
package audit
