// Package client is the Go client of Baton's HTTP API (package api): worker
// sessions and reports, assignment watches, partitions and operator verbs, the
// audit log (paged and followed over Server-Sent Events), and cluster
// membership. The consumer applier talks to the cluster only through it.
//
// A Client knows several nodes. Every answer names the leader (the
// X-Baton-Leader header); writes, heartbeats and reads at the default or
// linearizable consistency go straight to it once known (when it is one of the
// client's addresses), so no follower has to forward them. Other calls go to
// the last node that answered. On a connection failure or a 5xx answer (no
// leader, not ready, unknown outcome, shutting down, a time-out, or an internal
// error, after which a write's outcome is unknown too) a call is retried on the
// next address (or the leader, if the answer named one) after a jittered
// exponential back-off, within WithRetries and the call's context. 4xx answers
// are never retried. Every write carries a request id (X-Request-Id), generated
// once per call and sent on every retry, so that a write retried after a lost
// answer or a leader change is applied once: the state machine returns the
// first outcome (WriteResponse.Duplicate).
//
// A frozen node (SIGSTOP, a paused VM, a long GC pause) accepts connections and
// never answers. An attempt unanswered after WithAttemptTimeout (500 ms by
// default; a blocking query's attempt gets its wait on top) is therefore
// checked: the client asks that node's /healthz, bounded by half the attempt
// timeout. A node that answers is only slow (a large write under fsync
// load) and the attempt goes on waiting, checked again after each further
// attempt timeout; one that does not is frozen: the attempt is given up and
// retried on the next address at once, and for a while calls stop
// starting at that node, it is forgotten as the leader, and (if it was asked
// as the leader) followers still naming it as leader are not believed. When an
// answer names a new leader, leader-bound attempts in flight elsewhere (a
// blocking query parked on the frozen ex-leader, a write stuck in a follower's
// forward to it) are cancelled and sent to the new leader. An audit follow notices a frozen
// node by its silence (no keep-alive). What one call learns serves every call
// of the client, so share one client per process.
//
// Every call takes a context first; one without a deadline is bounded by
// WithTimeout (10 s by default, plus the wait of a blocking query). Errors name
// the operation and wrap what went wrong: an *api.Error for a non-2xx answer,
// whose Is compares codes, so
//
//	errors.Is(err, fsm.ErrStaleEpoch)     // a state machine rejection
//	errors.Is(err, client.ErrNotFound)    // an API code (sentinels in errors.go)
//	errors.Is(err, client.ErrUnreachable) // no node could be reached or answered in time
//	errors.Is(err, context.DeadlineExceeded)
//
// Batch writes (Drained, Activated, Checkpoints, Released, Declare,
// RemovePartitions) succeed as a whole and report rejected items in
// WriteResponse.Items; ItemErrors turns those into one error.
//
// # Usage sketch
//
// A worker registers, heartbeats, and watches its assignment:
//
//	c, err := client.New([]string{"http://10.0.0.1:7070", "http://10.0.0.2:7070", "http://10.0.0.3:7070"},
//		client.WithToken(token), client.WithLogger(log))
//	if err != nil { ... }
//	defer c.Close()
//	reg, err := c.Register(ctx, api.RegisterRequest{Worker: "w1", Weight: 1})
//	go func() { // every reg.HeartbeatIntervalMS
//		if _, err := c.Heartbeat(ctx, "w1", reg.Incarnation); errors.Is(err, client.ErrUnknownSession) {
//			// the session expired: stop processing, register again
//		}
//	}()
//	a, idx, err := c.Assignment(ctx, "w1")
//	for {
//		// apply a: process activating/active partitions, drain preparing ones
//		// and report with c.Drained / c.Activated / c.Checkpoints
//		a, idx, err = c.WatchAssignment(ctx, "w1", idx, 30*time.Second)
//		...
//	}
//
// An operator moves a partition and follows the audit log:
//
//	if _, err := c.Move(ctx, "orders-17", api.MoveRequest{To: "w2"}); err != nil { ... }
//	for ev, err := range c.FollowAudit(ctx, client.AuditQuery{Partition: "orders-17"}, "") {
//		if err != nil { ... } // the iteration has ended
//		fmt.Println(ev.Type(), ev.Index)
//	}
//
// Reads go to the leader by default; WithConsistency changes that for the
// client and Client.At for some calls:
//
//	ws, err := c.At(client.ConsistencyStale).Workers(ctx) // any node's own state
package client
