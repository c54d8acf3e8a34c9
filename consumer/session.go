package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// sessionState is what the session loop tells the reconciler.
type sessionState struct {
	inc      fsm.Incarnation
	fenced   bool
	ttl      time.Duration
	interval time.Duration
}

// sessionLoop registers the worker, renews its session, and fences it: if no
// heartbeat has been confirmed for most of the TTL, the leader may be about to
// expire the session and give its partitions to others, so the worker stops
// dispatching everything before that can happen. A heartbeat the leader refuses
// (unknown session: expired, or replaced) means the partitions are gone; the
// worker registers again as a new incarnation. Heartbeat calls are short
// (heartbeatTimeout) and a failed one is retried soon, so that a call stuck on
// a frozen node cannot hold the renewal back.
func (a *Applier) sessionLoop(ctx context.Context) {
	b := newBackoff(100*time.Millisecond, a.opts.controlBackoffMax)
	var st sessionState
	register := func() bool {
		for ctx.Err() == nil {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			reg, err := a.coord.Register(rctx, api.RegisterRequest{Worker: a.worker, Weight: a.opts.weight, Labels: a.opts.labels})
			cancel()
			if err == nil {
				if reg.Worker != a.worker {
					a.setHealth(func(h *healthState) { h.err = ErrWorkerMismatch })
					a.log.Error("registration answered for another worker", "got", reg.Worker)
					return false
				}
				st = sessionState{inc: reg.Incarnation, ttl: ms(reg.SessionTTLMS, 5*time.Second), interval: ms(reg.HeartbeatIntervalMS, time.Second)}
				a.log.Info("registered", "incarnation", st.inc, "ttl", st.ttl)
				a.setHealth(func(h *healthState) { h.registered, h.inc, h.fenced = true, st.inc, false })
				a.sess.put(st)
				b.reset()
				return true
			}
			a.log.Warn("register", "err", err)
			if !b.wait(ctx, classify(err)) {
				return false
			}
		}
		return false
	}
	if !register() {
		return
	}
	lastOK := time.Now() // when the last confirmed heartbeat was sent
	// retry spaces heartbeats after a failed one: soon, not an interval later
	// (a failed call has already taken up to heartbeatTimeout).
	retry := newBackoff(25*time.Millisecond, heartbeatTimeout(st.ttl, st.interval))
	failed := 0 // heartbeats failed since the last confirmed one
	t := time.NewTimer(st.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		hctx, cancel := context.WithTimeout(ctx, heartbeatTimeout(st.ttl, st.interval))
		_, err := a.coord.Heartbeat(hctx, a.worker, st.inc)
		cancel()
		next := st.interval
		switch {
		case err == nil:
			if failed > 0 {
				// What a frozen or lost leader cost this session.
				a.log.Info("session renewed after failed heartbeats", "failed", failed, "gap", sent.Sub(lastOK))
			}
			lastOK, failed = sent, 0
			retry.reset()
			if st.fenced {
				a.log.Info("session renewed; unfencing")
				st.fenced = false
				a.setHealth(func(h *healthState) { h.fenced = false })
				a.sess.put(st)
			}
		case isUnknownSession(err) && a.leaving():
			// A worker that left gracefully is gone as far as the claim store
			// is concerned: nothing to renew, and nothing to register again.
			a.log.Info("left the cluster", "incarnation", st.inc)
			return
		case isUnknownSession(err):
			a.log.Warn("session lost; registering again", "incarnation", st.inc, "err", err)
			a.fence(&st)
			if !register() {
				return
			}
			lastOK, failed = time.Now(), 0
			retry = newBackoff(25*time.Millisecond, heartbeatTimeout(st.ttl, st.interval))
		default:
			failed++
			a.log.Debug("heartbeat", "err", err)
			// Fence with a margin of a fifth of the TTL: the leader counts
			// from the heartbeat it last received, which was sent no earlier
			// than lastOK.
			if time.Since(lastOK) > st.ttl-st.ttl/5 && !st.fenced {
				a.log.Warn("session not renewed within its TTL; fencing", "since", time.Since(lastOK))
				a.fence(&st)
			}
			// Try again soon rather than an interval later. A call cut
			// short by its bound was stuck on a node that stopped; the client
			// avoids that node now and the next call goes elsewhere, at once.
			// One that failed fast (no leader yet) waits a short back-off.
			next = retry.next(transient)
			if errors.Is(err, context.DeadlineExceeded) {
				next = 0
			}
		}
		t.Reset(next)
	}
}

// heartbeatTimeout bounds one heartbeat call: a twentieth of the TTL (a
// quarter of the fencing margin, a fifth of the TTL), at least 100 ms, at most
// half the interval. A heartbeat is answered from the leader's memory at once;
// a call that takes longer is stuck on a node that stopped (frozen, or
// forwarding to a frozen leader) and gives way, and the next call goes
// elsewhere. The bound is also how late after an election the first call to
// reach the new leader may start: the calls sent before it are stuck on the
// frozen leader or on followers forwarding to it.
func heartbeatTimeout(ttl, interval time.Duration) time.Duration {
	return min(max(ttl/20, 100*time.Millisecond), interval/2)
}

// leaving reports whether Close has begun.
func (a *Applier) leaving() bool {
	select {
	case <-a.closing:
		return true
	default:
		return false
	}
}

func (a *Applier) fence(st *sessionState) {
	st.fenced = true
	a.metrics.fenced.Inc()
	a.setHealth(func(h *healthState) { h.fenced = true })
	a.sess.put(*st)
}

func isUnknownSession(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && (ae.Code == api.CodeUnknownSession || ae.Code == "unknown_worker" || ae.Code == "stale_incarnation")
}

func ms(v int64, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return time.Duration(v) * time.Millisecond
}

// watchLoop follows the worker's assignment with blocking queries and hands
// every new version to the reconciler.
func (a *Applier) watchLoop(ctx context.Context) {
	b := newBackoff(100*time.Millisecond, a.opts.controlBackoffMax)
	var idx fsm.RaftIndex
	for ctx.Err() == nil {
		if a.sess.get().inc == 0 {
			// Not registered yet: the assignment means nothing before that.
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		asg, next, err := a.coord.WatchAssignment(wctx, a.worker, idx, 30*time.Second)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ae *api.Error
			if errors.As(err, &ae) && ae.Code == string(fsm.CodeUnknownWorker) {
				// Forgotten (left, or expired owning nothing): an empty
				// assignment as far as this worker is concerned.
				a.assign.put(fsm.Assignment{Worker: a.worker, State: fsm.WorkerGone, Index: next})
				idx = next
			}
			a.log.Debug("watch assignment", "err", err)
			b.wait(ctx, classify(err))
			continue
		}
		b.reset()
		idx = next
		a.assign.put(asg)
	}
}
