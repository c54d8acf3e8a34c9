package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/consumer/internal/core"
	"github.com/batonhq/baton/fsm"
)

// sessionLoop registers the worker and renews its session, and tells the
// core what the claim store answered: a registration, a confirmed heartbeat
// (with the time it was sent, from which the core counts the lease), or a
// session the store no longer knows (expired, or replaced: the partitions are
// gone, and the worker registers again as a new incarnation). It decides
// nothing about fencing: the core does, against the clock, at every input.
// Heartbeat calls are short (heartbeatTimeout) and a failed one is retried
// soon, so that a call stuck on a frozen node cannot hold the renewal back.
func (a *Applier) sessionLoop(ctx context.Context) {
	b := newBackoff(100*time.Millisecond, a.opts.controlBackoffMax)
	var inc fsm.Incarnation
	var ttl, interval time.Duration
	register := func() bool {
		for ctx.Err() == nil {
			sent := time.Now()
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			reg, err := a.coord.Register(rctx, api.RegisterRequest{Worker: a.worker, Weight: a.opts.weight, Labels: a.opts.labels})
			cancel()
			if err == nil {
				if reg.Worker != a.worker {
					a.log.Error("registration answered for another worker", "got", reg.Worker)
					a.post(ctx, func(c *core.Core, now time.Time) {
						c.Assign(now, fsm.Assignment{Worker: reg.Worker}) // recorded as a mismatch
					})
					return false
				}
				inc, ttl, interval = reg.Incarnation, ms(reg.SessionTTLMS, 5*time.Second), ms(reg.HeartbeatIntervalMS, time.Second)
				a.log.Info("registered", "incarnation", inc, "ttl", ttl)
				i, t := inc, ttl
				a.post(ctx, func(c *core.Core, now time.Time) { c.Registered(now, i, t, sent) })
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
	retry := newBackoff(25*time.Millisecond, heartbeatTimeout(ttl, interval))
	failed := 0 // heartbeats failed since the last confirmed one
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		hctx, cancel := context.WithTimeout(ctx, heartbeatTimeout(ttl, interval))
		_, err := a.coord.Heartbeat(hctx, a.worker, inc)
		cancel()
		next := interval
		switch {
		case err == nil:
			if failed > 0 {
				// What a frozen or lost leader cost this session.
				a.log.Info("session renewed after failed heartbeats", "failed", failed, "gap", sent.Sub(lastOK))
			}
			lastOK, failed = sent, 0
			retry.reset()
			i := inc
			a.post(ctx, func(c *core.Core, now time.Time) { c.Renewed(now, i, sent) })
		case isUnknownSession(err) && a.leaving():
			// A worker that left gracefully is gone as far as the claim store
			// is concerned: nothing to renew, and nothing to register again.
			a.log.Info("left the cluster", "incarnation", inc)
			i := inc
			a.post(ctx, func(c *core.Core, now time.Time) { c.SessionLost(now, i) })
			return
		case isUnknownSession(err):
			a.log.Warn("session lost; registering again", "incarnation", inc, "err", err)
			i := inc
			a.post(ctx, func(c *core.Core, now time.Time) { c.SessionLost(now, i) })
			if !register() {
				return
			}
			lastOK, failed = time.Now(), 0
			retry = newBackoff(25*time.Millisecond, heartbeatTimeout(ttl, interval))
		default:
			failed++
			a.log.Debug("heartbeat", "err", err)
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
// every new version to the core.
func (a *Applier) watchLoop(ctx context.Context) {
	b := newBackoff(100*time.Millisecond, a.opts.controlBackoffMax)
	var idx fsm.RaftIndex
	for ctx.Err() == nil {
		if a.inc() == 0 {
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
				gone := fsm.Assignment{Worker: a.worker, State: fsm.WorkerGone, Index: next}
				a.post(ctx, func(c *core.Core, now time.Time) { c.Assign(now, gone) })
				idx = next
			}
			a.log.Debug("watch assignment", "err", err)
			b.wait(ctx, classify(err))
			continue
		}
		b.reset()
		idx = next
		a.post(ctx, func(c *core.Core, now time.Time) { c.Assign(now, asg) })
	}
}
