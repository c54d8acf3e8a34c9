package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/raftnode"
)

// Node is what the controller needs from its claim-store node (raftnode.Node).
type Node interface {
	IsLeader() bool
	LeadershipChanged() <-chan struct{}
	Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error)
	Read(ctx context.Context, c raftnode.Consistency, fn func(*fsm.State)) error
	WaitChange(ctx context.Context, after fsm.RaftIndex) (fsm.RaftIndex, error)
}

var _ Node = (*raftnode.Node)(nil)

// Controller runs on every claim-store node and acts only while that node is the
// raft leader: it keeps worker sessions, places partitions, and drives handoffs.
// Its state is rebuilt from the replicated state at every leadership change, so
// a new leader picks every in-flight handoff up where it stands.
type Controller struct {
	cfg     Config
	node    Node
	log     *slog.Logger
	now     func() time.Time
	sess    *sessions
	metrics *metrics

	// windows is a copy of the current term's handoff windows (see
	// throttle), for dry runs asked on other goroutines.
	windowsMu sync.Mutex
	windows   map[fsm.WorkerID]int

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New starts a controller for node. Close stops it.
func New(node Node, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Controller{cfg: cfg, node: node, log: cfg.Logger, now: cfg.Now, sess: newSessions(cfg.SessionTTL), done: make(chan struct{})}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.metrics = newMetrics(cfg.Registerer)
	c.wg.Add(1)
	go c.run()
	return c, nil
}

// Close stops the controller and waits for it. It is idempotent.
func (c *Controller) Close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.wg.Wait()
		c.metrics.unregister()
	})
}

// Registered implements the API server's Sessions: a new incarnation starts
// with a full lease.
func (c *Controller) Registered(w fsm.WorkerID, inc fsm.Incarnation) {
	c.sess.registered(w, inc, c.now())
}

// Heartbeat implements the API server's Sessions: it renews w's lease, or
// returns a *SessionError if the leader holds none for inc (the worker then
// registers again).
func (c *Controller) Heartbeat(w fsm.WorkerID, inc fsm.Incarnation) (time.Duration, error) {
	now := c.now()
	if c.sess.heartbeat(w, inc, now) {
		return c.cfg.SessionTTL, nil
	}
	// The loop may not have seen a registration applied a moment ago: trust
	// the state if it knows this incarnation as live.
	var live bool
	err := c.node.Read(context.Background(), raftnode.Stale, func(s *fsm.State) {
		wk, ok := s.Worker(w)
		live = ok && wk.Incarnation == inc && wk.State != fsm.WorkerGone
	})
	if err != nil {
		return 0, err
	}
	if !live {
		return 0, &SessionError{Worker: w, Incarnation: inc}
	}
	c.sess.registered(w, inc, now)
	return c.cfg.SessionTTL, nil
}

func (c *Controller) run() {
	defer c.wg.Done()
	for {
		// Closing must end the loop on a leader too: lead returns at once
		// once done is closed, and without this check run would re-enter it
		// (each time starting a barrier) until the node lost leadership.
		select {
		case <-c.done:
			return
		default:
		}
		changed := c.node.LeadershipChanged()
		if c.node.IsLeader() {
			c.lead()
			continue
		}
		c.metrics.notLeading()
		select {
		case <-c.done:
			return
		case <-changed:
		case <-time.After(time.Second):
			// Leadership is also re-read periodically, in case a change
			// slipped between the check and the wait.
		}
	}
}

// lead is one term of leadership: it returns when this node stops being the
// leader or the controller closes.
func (c *Controller) lead() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lost := c.node.LeadershipChanged()
	go func() {
		select {
		case <-c.done:
		case <-lost:
		case <-ctx.Done():
		}
		cancel()
	}()
	c.metrics.leader.Set(1)
	c.log.Info("controller leading")
	defer c.log.Info("controller stopped leading")

	// A new leader first catches up with everything committed (the
	// linearizable read commits a barrier in its term), then grants every
	// session a full TTL: it cannot know when workers last heartbeated.
	var v view
	for {
		err := c.node.Read(ctx, raftnode.Linearizable, func(s *fsm.State) { v = readView(s) })
		if err == nil {
			break
		}
		if ctx.Err() != nil || !c.node.IsLeader() {
			return
		}
		c.log.Warn("controller catch-up read", "err", err)
		if !sleep(ctx, c.cfg.Tick) {
			return
		}
	}
	c.sess.sync(v.workers, c.now())
	c.sess.reset(c.now())

	changes := make(chan struct{}, 1)
	go func() {
		var last fsm.RaftIndex
		for {
			idx, err := c.node.WaitChange(ctx, last)
			if err != nil {
				return
			}
			last = idx
			select {
			case changes <- struct{}{}:
			default:
			}
		}
	}()

	thr := newThrottle(c.cfg)
	defer c.publishWindows(nil)
	tick := time.NewTicker(c.cfg.Tick)
	defer tick.Stop()
	membership := eligibleKey(v.workers)
	changedAt := c.now()
	first := true
	var inactive inactivity
	for {
		if err := c.node.Read(ctx, raftnode.Stale, func(s *fsm.State) { v = readView(s) }); err != nil {
			return
		}
		now := c.now()
		if key := eligibleKey(v.workers); key != membership {
			membership, changedAt = key, now
		}
		c.sess.sync(v.workers, now)
		c.expire(ctx, now)
		// The first round of a term does not wait out a window the previous
		// leader may already have waited.
		stable := first || now.Sub(changedAt) >= c.cfg.StabilizationWindow
		first = false
		thr.observe(v, now)
		c.publishWindows(thr.window)
		c.round(ctx, v, now, stable, thr.limit, inactive.observe(v.partitions, now))
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-tick.C:
		}
	}
}

// expire proposes the expiry of every lease past its deadline.
func (c *Controller) expire(ctx context.Context, now time.Time) {
	for _, e := range c.sess.expired(now) {
		res, err := c.node.Propose(ctx, fsm.Command{
			Header: fsm.Header{Actor: "controller", Cause: fmt.Sprintf("session expired: no heartbeat for %s", c.cfg.SessionTTL)},
			Body:   fsm.Expire{Worker: e.Worker, Incarnation: e.Incarnation},
		})
		if err != nil {
			c.log.Warn("propose expiry", "worker", e.Worker, "err", err)
			return
		}
		c.sess.drop(e.Worker, e.Incarnation)
		if rerr := res.FirstError(); rerr != nil {
			c.log.Info("expiry refused", "worker", e.Worker, "err", rerr)
			continue
		}
		c.metrics.expiries.Inc()
		c.log.Info("session expired", "worker", e.Worker, "incarnation", e.Incarnation)
	}
}

// publishWindows copies the throttle's windows for dry runs (nil: not leading).
func (c *Controller) publishWindows(w map[fsm.WorkerID]int) {
	c.windowsMu.Lock()
	defer c.windowsMu.Unlock()
	c.windows = maps.Clone(w)
}

// window is w's handoff window as of the last round (the starting window
// when this node does not lead).
func (c *Controller) window(w fsm.WorkerID) int {
	c.windowsMu.Lock()
	defer c.windowsMu.Unlock()
	if n, ok := c.windows[w]; ok {
		return n
	}
	return c.cfg.MaxHandoffsPerWorker
}

// round plans once and proposes the decision's commands, batched, within
// the handoff windows; oldestInactive is for the metrics.
func (c *Controller) round(ctx context.Context, v view, now time.Time, stable bool, window func(fsm.WorkerID) int, oldestInactive time.Duration) {
	c.metrics.rounds.Inc()
	d, err := decide(c.cfg, v, now, stable, window)
	if err != nil {
		c.log.Error("plan", "err", err)
		return
	}
	c.metrics.observePlan(d.plan, v, oldestInactive)
	if d.empty() {
		return
	}
	proposeItems(ctx, c, "commit drained handoffs", d.commits, func(items []fsm.CommitItem) fsm.Body { return fsm.Commit{Items: items} })
	proposeItems(ctx, c, "force-commit: owner gone or drain deadline passed", d.forces, func(items []fsm.ForceItem) fsm.Body { return fsm.ForceCommit{Items: items} })
	proposeItems(ctx, c, "claim unassigned partitions", d.claims, func(items []fsm.ClaimItem) fsm.Body { return fsm.Claim{Items: items} })
	// Prepares carry their rule in the item; the cause names the load numbers
	// when there is one move, and the count otherwise.
	cause := fmt.Sprintf("placement: %d moves", len(d.prepares))
	if len(d.prepares) == 1 {
		cause = "placement: " + d.causes[d.prepares[0].Partition]
	}
	proposeItems(ctx, c, cause, d.prepares, func(items []fsm.PrepareItem) fsm.Body { return fsm.Prepare{Items: items} })
}

// proposeItems proposes items in batches of BatchSize.
func proposeItems[T any](ctx context.Context, c *Controller, cause string, items []T, body func([]T) fsm.Body) {
	for len(items) > 0 && ctx.Err() == nil {
		n := min(len(items), c.cfg.BatchSize)
		cmd := fsm.Command{Header: fsm.Header{Actor: "controller", Cause: cause}, Body: body(items[:n])}
		res, err := c.node.Propose(ctx, cmd)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				c.log.Warn("propose", "command", cmd.Body.Type(), "err", err)
			}
			return
		}
		if res.Err != nil {
			c.log.Warn("command refused", "command", cmd.Body.Type(), "err", res.Err)
		}
		for i, e := range res.Items {
			if e != nil {
				c.log.Debug("item refused", "command", cmd.Body.Type(), "item", i, "err", e)
			}
		}
		c.metrics.proposed(cmd.Body.Type(), n, res.Rejected())
		items = items[n:]
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
