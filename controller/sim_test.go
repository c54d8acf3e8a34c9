package controller_test

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/fsm"
)

// simWorker is a simulated worker: an in-process stand-in for the consumer
// applier that speaks the real HTTP API through api/client. It registers,
// heartbeats at the interval its registration names, watches its assignment
// with blocking queries, activates what it is given, drains what it must hand
// off (through_seq = its progress counter) and checkpoints its progress
// periodically. Every assignment change costs at most one Activated and one
// Drained call, however many partitions it concerns.
//
// Progress is simulated: each checkpoint tick advances every processing
// partition's counter by opt.Step and reports it. A drain freezes the counter, so
// through_seq is never below a checkpoint the worker sent.
//
// Tests steer it with StopHeartbeats (the session lapses while the worker
// carries on), NeverDrain/ResumeDrains (a stuck or slow owner),
// StopCheckpoints and Stop (a crash: everything ends at once, nothing is
// handed off). Leave starts a graceful leave.
type simWorker struct {
	tb  testing.TB
	id  fsm.WorkerID
	cl  *client.Client
	opt simOptions

	ctx    context.Context // ends at Stop, or when the worker is gone
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine
	kick   chan struct{}  // 1-buffered: the actor should look at the view again

	// The heartbeat and checkpoint loops can be stopped on their own.
	hbCancel, ckptCancel context.CancelFunc
	hbDone, ckptDone     chan struct{}
	stopOnce             sync.Once

	inc     fsm.Incarnation // set by Start, read-only after
	hbEvery time.Duration   // set by Start, read-only after

	// mu guards the fields below; the watch, actor, checkpoint and heartbeat
	// goroutines and the test share them.
	mu         sync.Mutex
	view       *fsm.Assignment // newest assignment seen
	parts      map[fsm.PartitionID]*simPart
	neverDrain bool
	stuck      map[fsm.PartitionID]fsm.DrainItem
	lastCkpt   map[fsm.PartitionID]ckptRecord
	rejected   map[string]int // item rejections by code, for the log
}

// simPart is one partition the worker owns under one epoch.
type simPart struct {
	epoch fsm.Epoch
	seq   fsm.StreamSeq // processed through; frozen once draining
	// activated: the worker reported (or saw) the activation of this epoch.
	activated bool
	// drainFor is the handoff the worker drains for (0: none); drainAcked is
	// set once the cluster accepted the drain.
	drainFor   fsm.HandoffID
	drainAcked bool
}

func (p *simPart) processing() bool { return p.activated && p.drainFor == 0 }

// ckptRecord is the last checkpoint the cluster accepted for a partition.
type ckptRecord struct {
	Epoch fsm.Epoch
	Seq   fsm.StreamSeq
}

// simOptions tunes a simulated worker.
type simOptions struct {
	Weight uint32
	// CheckpointEvery is the checkpoint period; 0 disables checkpoints.
	CheckpointEvery time.Duration
	// WatchWait is the blocking query's wait.
	WatchWait time.Duration
	// Step is how far each checkpoint tick advances a partition.
	Step fsm.StreamSeq
}

func defaultSimOptions() simOptions {
	return simOptions{Weight: 1, CheckpointEvery: 100 * time.Millisecond, WatchWait: 2 * time.Second, Step: 10}
}

// newSimWorker returns a worker that is not started yet.
func newSimWorker(tb testing.TB, urls []string, id fsm.WorkerID, opt simOptions) *simWorker {
	tb.Helper()
	cl, err := client.New(urls, client.WithTimeout(5*time.Second), client.WithBackoff(10*time.Millisecond, 250*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &simWorker{
		tb: tb, id: id, cl: cl, opt: opt, ctx: ctx, cancel: cancel,
		kick:     make(chan struct{}, 1),
		parts:    map[fsm.PartitionID]*simPart{},
		stuck:    map[fsm.PartitionID]fsm.DrainItem{},
		lastCkpt: map[fsm.PartitionID]ckptRecord{},
		rejected: map[string]int{},
	}
}

// Start registers the worker and starts its loops; Stop runs at cleanup.
func (w *simWorker) Start() {
	w.tb.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	reg, err := w.cl.Register(ctx, api.RegisterRequest{Worker: w.id, Weight: w.opt.Weight})
	if err != nil {
		w.tb.Fatalf("register %s: %v", w.id, err)
	}
	w.inc = reg.Incarnation
	w.hbEvery = time.Duration(reg.HeartbeatIntervalMS) * time.Millisecond
	w.tb.Cleanup(w.Stop)

	hbCtx, hbCancel := context.WithCancel(w.ctx)
	ckptCtx, ckptCancel := context.WithCancel(w.ctx)
	w.hbCancel, w.ckptCancel = hbCancel, ckptCancel
	w.hbDone, w.ckptDone = make(chan struct{}), make(chan struct{})
	w.wg.Add(4)
	go func() { defer w.wg.Done(); defer close(w.hbDone); w.heartbeats(hbCtx) }()
	go func() { defer w.wg.Done(); defer close(w.ckptDone); w.checkpoints(ckptCtx) }()
	go func() { defer w.wg.Done(); w.watch() }()
	go func() { defer w.wg.Done(); w.act() }()
}

// Stop ends every loop at once, like a crash: nothing is handed off and the
// session lapses after its TTL. It waits for the loops and is idempotent.
func (w *simWorker) Stop() {
	w.stopOnce.Do(func() {
		w.cancel()
		w.wg.Wait()
		w.cl.Close()
	})
}

// StopHeartbeats stops renewing the session; the worker otherwise carries on
// (watching, activating, draining, checkpointing) until the cluster says it
// is gone.
func (w *simWorker) StopHeartbeats() {
	w.hbCancel()
	<-w.hbDone
}

// StopCheckpoints stops the checkpoint loop; no checkpoint is in flight when
// it returns.
func (w *simWorker) StopCheckpoints() {
	w.ckptCancel()
	<-w.ckptDone
}

// NeverDrain makes the worker ignore drain requests from now on (it keeps
// processing and checkpointing those partitions): a stuck or very slow owner.
func (w *simWorker) NeverDrain() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.neverDrain = true
}

// ResumeDrains undoes NeverDrain: pending drain requests are served at once.
func (w *simWorker) ResumeDrains() {
	w.mu.Lock()
	w.neverDrain = false
	clear(w.stuck)
	w.mu.Unlock()
	w.poke()
}

// Leave starts a graceful leave; the worker drains what it is asked to and is
// gone once it owns nothing.
func (w *simWorker) Leave() {
	w.tb.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	if _, err := w.cl.Leave(ctx, w.id, w.inc); err != nil {
		w.tb.Fatalf("leave %s: %v", w.id, err)
	}
}

// Owned returns the partitions the worker is processing now (activated and
// not draining), sorted.
func (w *simWorker) Owned() []fsm.PartitionID {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []fsm.PartitionID
	for id, p := range w.parts {
		if p.processing() {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Stuck returns the drains the worker withheld under NeverDrain, as it would
// report them now (through its current progress), sorted by partition.
func (w *simWorker) Stuck() []fsm.DrainItem {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []fsm.DrainItem
	for id, it := range w.stuck {
		if p := w.parts[id]; p != nil && p.epoch == it.Epoch {
			it.ThroughSeq = p.seq
		}
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b fsm.DrainItem) int { return cmp.Compare(a.Partition, b.Partition) })
	return out
}

// LastCheckpoints returns, per partition, the last checkpoint the cluster
// accepted from this worker.
func (w *simWorker) LastCheckpoints() map[fsm.PartitionID]ckptRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[fsm.PartitionID]ckptRecord, len(w.lastCkpt))
	for k, v := range w.lastCkpt {
		out[k] = v
	}
	return out
}

// Rejected returns the item rejections the worker met, by code. Some are
// expected races (a checkpoint crossing a forced commit); the tests log them.
func (w *simWorker) Rejected() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int, len(w.rejected))
	for k, v := range w.rejected {
		out[k] = v
	}
	return out
}

func (w *simWorker) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// markGone ends every loop once the cluster no longer knows this incarnation
// as live (the worker fences itself).
func (w *simWorker) markGone() {
	w.cancel()
}

func (w *simWorker) heartbeats(ctx context.Context) {
	t := time.NewTicker(w.hbEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := w.cl.Heartbeat(hctx, w.id, w.inc)
		cancel()
		if errors.Is(err, client.ErrUnknownSession) {
			w.markGone()
			return
		}
	}
}

// watch follows the assignment with blocking queries and hands each new view
// to the actor.
func (w *simWorker) watch() {
	var idx fsm.RaftIndex
	for w.ctx.Err() == nil {
		a, next, err := w.cl.WatchAssignment(w.ctx, w.id, idx, w.opt.WatchWait)
		if err != nil {
			if w.ctx.Err() != nil {
				return
			}
			if errors.Is(err, fsm.ErrUnknownWorker) && idx > 0 {
				w.markGone() // left and forgotten
				return
			}
			if !sleepCtx(w.ctx, 50*time.Millisecond) {
				return
			}
			continue
		}
		if a.Incarnation != w.inc || a.State == fsm.WorkerGone {
			w.markGone()
			return
		}
		w.mu.Lock()
		w.view = &a
		w.mu.Unlock()
		w.poke()
		idx = next
	}
}

// act reconciles the newest view whenever it changes (or a retry is due).
func (w *simWorker) act() {
	var retry <-chan time.Time
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-w.kick:
		case <-retry:
		}
		retry = nil
		if !w.reconcile() {
			retry = time.After(100 * time.Millisecond)
		}
	}
}

// reconcile does what the newest view asks: one Activated call for every
// partition to activate, one Drained call for every one to drain. It reports
// false if a call failed and should be retried.
func (w *simWorker) reconcile() bool {
	w.mu.Lock()
	a := w.view
	if a == nil {
		w.mu.Unlock()
		return true
	}
	var acts []fsm.ActivateItem
	var drains []fsm.DrainItem
	seen := make(map[fsm.PartitionID]bool, len(a.Partitions))
	for _, ap := range a.Partitions {
		seen[ap.Partition] = true
		p := w.parts[ap.Partition]
		if p == nil || p.epoch != ap.Epoch {
			if p != nil && p.epoch > ap.Epoch {
				continue // an older view than what the worker already acted on
			}
			p = &simPart{epoch: ap.Epoch, seq: max(ap.ResumeAfter, ap.Checkpoint)}
			w.parts[ap.Partition] = p
		}
		switch ap.Phase {
		case fsm.PhaseActivating:
			if !p.activated {
				acts = append(acts, fsm.ActivateItem{Partition: ap.Partition, Epoch: ap.Epoch})
			}
		case fsm.PhaseActive:
			p.activated = true
		case fsm.PhasePreparing:
			p.activated = true
			if ap.Handoff == 0 {
				continue
			}
			if w.neverDrain {
				w.stuck[ap.Partition] = fsm.DrainItem{Handoff: ap.Handoff, Partition: ap.Partition, Epoch: ap.Epoch, ThroughSeq: p.seq}
				continue
			}
			if p.drainFor != ap.Handoff {
				p.drainFor, p.drainAcked = ap.Handoff, false // freezes seq
			}
			if !p.drainAcked {
				drains = append(drains, fsm.DrainItem{Handoff: ap.Handoff, Partition: ap.Partition, Epoch: ap.Epoch, ThroughSeq: max(p.seq, ap.Checkpoint)})
			}
		case fsm.PhaseDrained:
			p.activated, p.drainFor, p.drainAcked = true, ap.Handoff, true
		}
	}
	for id := range w.parts {
		if !seen[id] {
			delete(w.parts, id) // committed elsewhere, forced away or released
			delete(w.stuck, id)
		}
	}
	w.mu.Unlock()

	ok := true
	if len(acts) > 0 {
		res, err := w.cl.Activated(w.ctx, w.id, w.inc, acts)
		ok = w.settle(err) && ok
		if err == nil {
			w.mu.Lock()
			for i, it := range acts {
				if w.itemOK(res, i) {
					if p := w.parts[it.Partition]; p != nil && p.epoch == it.Epoch {
						p.activated = true
					}
				}
			}
			w.mu.Unlock()
		}
	}
	if len(drains) > 0 {
		res, err := w.cl.Drained(w.ctx, w.id, w.inc, drains)
		ok = w.settle(err) && ok
		if err == nil {
			w.mu.Lock()
			for i, it := range drains {
				if w.itemOK(res, i) {
					if p := w.parts[it.Partition]; p != nil && p.epoch == it.Epoch && p.drainFor == it.Handoff {
						p.drainAcked = true
					}
				}
			}
			w.mu.Unlock()
		}
	}
	return ok
}

// itemOK reports whether item i of a batch write was accepted, and counts
// the rejection if not. w.mu must be held.
func (w *simWorker) itemOK(res api.WriteResponse, i int) bool {
	if i < len(res.Items) && res.Items[i] != nil {
		w.rejected[res.Items[i].Code]++
		return false
	}
	return true
}

// settle classifies a whole-call error: nil and the worker's own end are
// final (true); anything else is retried (false).
func (w *simWorker) settle(err error) bool {
	switch {
	case err == nil, w.ctx.Err() != nil:
		return true
	case errors.Is(err, fsm.ErrStaleIncarnation), errors.Is(err, fsm.ErrWorkerNotActive), errors.Is(err, fsm.ErrUnknownWorker):
		w.markGone()
		return true
	}
	return false
}

// checkpoints advances and reports every processing partition's progress,
// in one call per tick.
func (w *simWorker) checkpoints(ctx context.Context) {
	if w.opt.CheckpointEvery <= 0 {
		return
	}
	t := time.NewTicker(w.opt.CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		var items []fsm.CheckpointItem
		for id, p := range w.parts {
			if p.processing() {
				p.seq += w.opt.Step
				items = append(items, fsm.CheckpointItem{Partition: id, Epoch: p.epoch, Seq: p.seq})
			}
		}
		w.mu.Unlock()
		if len(items) == 0 {
			continue
		}
		// The call runs on the worker's context, not the loop's: StopCheckpoints
		// waits for it instead of leaving its outcome unknown.
		res, err := w.cl.Checkpoints(w.ctx, w.id, w.inc, items)
		if err != nil {
			w.settle(err)
			continue
		}
		w.mu.Lock()
		for i, it := range items {
			if w.itemOK(res, i) {
				w.lastCkpt[it.Partition] = ckptRecord{Epoch: it.Epoch, Seq: it.Seq}
			}
		}
		w.mu.Unlock()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
