package controller_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/controller"
	"github.com/batonhq/baton/controller/placement"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

// testConfig is the controller configuration of the cluster tests: timings
// short enough that expiries and deadlines pass in about a second. Tests
// adjust the fields they are about.
func testConfig() controller.Config {
	c := controller.DefaultConfig()
	c.SessionTTL = time.Second
	c.HeartbeatInterval = 200 * time.Millisecond
	c.StabilizationWindow = 150 * time.Millisecond
	c.DrainTimeout = 20 * time.Second // tests about the deadline shorten it
	c.Tick = 50 * time.Millisecond
	return c
}

// harness is a 3-node claim store with controllers and the HTTP API, an
// operator client, and the simulated workers a test started.
type harness struct {
	t       testing.TB
	c       *testcluster.Cluster
	cl      *client.Client
	cfg     controller.Config
	workers []*simWorker
}

func newHarness(t testing.TB, cfg controller.Config) *harness {
	t.Helper()
	c := testcluster.NewFull(t, 3, server.Config{}, cfg)
	cl, err := client.New(c.URLs(), client.WithTimeout(5*time.Second), client.WithBackoff(10*time.Millisecond, 250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &harness{t: t, c: c, cl: cl, cfg: cfg}
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	h.t.Cleanup(cancel)
	return ctx
}

// start starts one simulated worker per id, in order.
func (h *harness) start(ids ...fsm.WorkerID) []*simWorker {
	h.t.Helper()
	return h.startWith(defaultSimOptions(), ids...)
}

// startWith starts workers with options opt.
func (h *harness) startWith(opt simOptions, ids ...fsm.WorkerID) []*simWorker {
	h.t.Helper()
	var out []*simWorker
	for _, id := range ids {
		w := newSimWorker(h.t, h.c.URLs(), id, opt)
		w.Start()
		h.workers = append(h.workers, w)
		out = append(out, w)
	}
	return out
}

// declare declares n partitions p000, p001, ... and returns their ids.
func (h *harness) declare(n int) []fsm.PartitionID {
	h.t.Helper()
	var ids []fsm.PartitionID
	var specs []fsm.PartitionSpec
	for i := range n {
		id := fsm.PartitionID(fmt.Sprintf("p%03d", i))
		ids = append(ids, id)
		specs = append(specs, fsm.PartitionSpec{ID: id, Subjects: []string{fmt.Sprintf("orders.%d.>", i)}})
	}
	res, err := h.cl.Declare(h.ctx(), specs)
	if err == nil {
		err = client.ItemErrors(res)
	}
	if err != nil {
		h.t.Fatalf("declare: %v", err)
	}
	return ids
}

// clusterView is the leader's state at one index.
type clusterView struct {
	index    fsm.RaftIndex
	paused   bool
	workers  map[fsm.WorkerID]fsm.Worker
	parts    []fsm.PartitionInfo
	handoffs []fsm.Handoff
}

func viewOf(s *fsm.State) clusterView {
	v := clusterView{index: s.AppliedIndex(), paused: s.Paused(), workers: map[fsm.WorkerID]fsm.Worker{},
		parts: s.Partitions("", 0), handoffs: s.Handoffs()}
	for _, w := range s.Workers() {
		v.workers[w.ID] = w
	}
	return v
}

// eligible reports whether w may receive partitions: active and uncordoned.
func (v clusterView) eligible(w fsm.WorkerID) bool {
	wk, ok := v.workers[w]
	return ok && wk.State == fsm.WorkerActive && !wk.Cordoned
}

// gone reports whether w has left (or was forgotten after leaving).
func (v clusterView) gone(w fsm.WorkerID) bool {
	wk, ok := v.workers[w]
	return !ok || wk.State == fsm.WorkerGone
}

func (v clusterView) partition(id fsm.PartitionID) fsm.PartitionInfo {
	for _, p := range v.parts {
		if p.ID == id {
			return p
		}
	}
	return fsm.PartitionInfo{}
}

// owned returns the partitions w owns, sorted.
func (v clusterView) owned(w fsm.WorkerID) []fsm.PartitionID {
	var out []fsm.PartitionID
	for _, p := range v.parts {
		if p.Owner == w {
			out = append(out, p.ID)
		}
	}
	return out
}

// loads counts the partitions of every eligible worker (0 included) and of
// any other owner.
func (v clusterView) loads() map[fsm.WorkerID]int {
	out := map[fsm.WorkerID]int{}
	for id := range v.workers {
		if v.eligible(id) {
			out[id] = 0
		}
	}
	for _, p := range v.parts {
		if p.Owner != "" {
			out[p.Owner]++
		}
	}
	return out
}

// settledErr says why the cluster is not at rest: every partition active on
// an eligible worker, no handoff pending.
func (v clusterView) settledErr() error {
	if len(v.handoffs) > 0 {
		h := v.handoffs[0]
		return fmt.Errorf("%d handoffs pending, first %s %s %s->%s drained=%v", len(v.handoffs), h.ID, h.Partition, h.From, h.To, h.Drained)
	}
	for _, p := range v.parts {
		if p.Phase != fsm.PhaseActive {
			return fmt.Errorf("partition %s is %s (owner %q)", p.ID, p.Phase, p.Owner)
		}
		if !v.eligible(p.Owner) {
			return fmt.Errorf("partition %s is on %s, not an eligible worker", p.ID, p.Owner)
		}
	}
	return nil
}

// readOnce reads the current leader's state, without waiting for a leader.
func (h *harness) readOnce() (clusterView, error) {
	var v clusterView
	for _, n := range h.c.Nodes {
		r := n.Raft()
		if r == nil || !r.IsLeader() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := r.Read(ctx, raftnode.Stale, func(s *fsm.State) { v = viewOf(s) })
		return v, err
	}
	return v, errors.New("no leader")
}

func (h *harness) read() clusterView {
	h.t.Helper()
	return h.waitFor("the leader's state", func(clusterView) error { return nil })
}

// waitFor waits until cond holds on the leader's state and returns that state.
func (h *harness) waitFor(what string, cond func(clusterView) error) clusterView {
	h.t.Helper()
	var v clusterView
	testcluster.Eventually(h.t, what, func() error {
		var err error
		if v, err = h.readOnce(); err != nil {
			return err
		}
		return cond(v)
	})
	return v
}

// waitSettled waits until the cluster is at rest and the placement plans no
// move from that same state.
func (h *harness) waitSettled() clusterView {
	h.t.Helper()
	return h.waitFor("a settled cluster", func(v clusterView) error {
		if err := v.settledErr(); err != nil {
			return err
		}
		moves, err := h.planMoves(v)
		if err != nil {
			return err
		}
		if len(moves) > 0 {
			m := moves[0]
			return fmt.Errorf("plan has %d moves, first %s %s->%s (%s)", len(moves), m.Partition, m.From, m.To, m.Reason)
		}
		return nil
	})
}

// planMoves runs the controller's placement strategy on v, built as the
// controller builds it. The dry run cannot serve here: it reads the state
// again, and a move started in between is in flight there, so not listed.
func (h *harness) planMoves(v clusterView) ([]placement.Move, error) {
	in := placement.Input{Config: h.cfg.Placement}
	for _, w := range v.workers {
		if w.State != fsm.WorkerGone {
			in.Workers = append(in.Workers, placement.Worker{ID: placement.WorkerID(w.ID), Weight: w.Weight, Eligible: v.eligible(w.ID)})
		}
	}
	for _, p := range v.parts {
		pp := placement.Partition{ID: placement.PartitionID(p.ID), Weight: p.Weight, Owner: placement.WorkerID(p.Owner), Pinned: placement.WorkerID(p.Pinned)}
		if p.PendingHandoff != nil {
			pp.InFlightTo = placement.WorkerID(p.PendingHandoff.To)
		}
		in.Partitions = append(in.Partitions, pp)
	}
	plan, err := h.cfg.Strategy.Plan(in)
	return plan.Moves, err
}

// waitQuiet waits until the cluster is at rest, whatever the plan says
// (rebalancing may be paused).
func (h *harness) waitQuiet() clusterView {
	h.t.Helper()
	return h.waitFor("a quiet cluster", clusterView.settledErr)
}

// tryDryRun asks the API for the controller's dry run.
func (h *harness) tryDryRun() (api.Plan, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.cl.Plan(ctx)
}

func (h *harness) dryRun() api.Plan {
	h.t.Helper()
	dr, err := h.tryDryRun()
	if err != nil {
		h.t.Fatalf("dry run: %v", err)
	}
	return dr
}

func (h *harness) setPaused(paused bool) fsm.RaftIndex {
	h.t.Helper()
	res, err := h.cl.SetRebalance(h.ctx(), paused)
	if err != nil {
		h.t.Fatalf("set rebalance paused=%v: %v", paused, err)
	}
	return res.Index
}

// events returns the leader's whole audit log.
func (h *harness) events() []fsm.Event {
	h.t.Helper()
	var evs []fsm.Event
	testcluster.Eventually(h.t, "the leader's audit log", func() error {
		r := h.c.Leader(h.t).Raft()
		if r == nil {
			return errors.New("leader stopped")
		}
		var err error
		evs, err = testcluster.AllEvents(r.Audit())
		return err
	})
	return evs
}

// checkBalanced checks that every eligible worker (all of weight 1) holds
// floor or ceil of P/N partitions.
func (h *harness) checkBalanced(label string, v clusterView) {
	h.t.Helper()
	loads := v.loads()
	n := 0
	for id := range loads {
		if v.eligible(id) {
			n++
		}
	}
	if n == 0 {
		h.t.Fatalf("%s: no eligible worker", label)
	}
	lo, hi := len(v.parts)/n, (len(v.parts)+n-1)/n
	for id, l := range loads {
		if !v.eligible(id) {
			h.t.Errorf("%s: ineligible %s holds %d partitions", label, id, l)
			continue
		}
		if l < lo || l > hi {
			h.t.Errorf("%s: %s holds %d partitions, fair share bound %d..%d (loads %v)", label, id, l, lo, hi, loads)
		}
	}
	h.t.Logf("%s: loads %v (bound %d..%d)", label, loads, lo, hi)
}

// minMoves is the fewest partition moves that turn loads before into loads
// after: every partition a worker holds fewer of must move.
func minMoves(before, after map[fsm.WorkerID]int) int {
	n := 0
	for w, b := range before {
		n += max(0, b-after[w])
	}
	return n
}

// checkMoves checks that the commits after index from are within 5% of the
// minimum the load change needs.
func (h *harness) checkMoves(label string, from fsm.RaftIndex, before, after map[fsm.WorkerID]int) {
	h.t.Helper()
	moves := len(since(ofType[fsm.Committed](h.events()), from))
	least := minMoves(before, after)
	h.t.Logf("%s: %d moves, minimum %d (loads %v -> %v)", label, moves, least, before, after)
	if moves < least || float64(moves) > 1.05*float64(least) {
		h.t.Errorf("%s: %d moves, want %d..%d (within 5%% of the minimum)", label, moves, least, int(math.Floor(1.05*float64(least))))
	}
}

// finish ends every test: it quiesces the workers, then checks that the
// replicas agree (state and audit log), that the leader's whole audit log
// satisfies the protocol's history invariants, that the state satisfies its
// own, and that replaying the log gives the state (I5).
func (h *harness) finish() {
	h.t.Helper()
	for _, w := range h.workers {
		w.StopCheckpoints()
	}
	h.c.EnsureSame(h.t)
	var evs []fsm.Event
	testcluster.Eventually(h.t, "audit log and state at the same index", func() error {
		evs = h.events()
		replayed, err := fsm.Replay(fsm.DefaultConfig(), evs)
		if err != nil {
			return fmt.Errorf("replay the audit log: %w", err)
		}
		r := h.c.Leader(h.t).Raft()
		if r == nil {
			return errors.New("leader stopped")
		}
		return r.Read(context.Background(), raftnode.Stale, func(s *fsm.State) {
			if err = s.CheckInvariants(); err != nil {
				err = fmt.Errorf("state invariants: %w", err)
				return
			}
			err = fsm.SameContent(s, replayed)
		})
	})
	if err := fsm.NewHistoryChecker(false).CheckAll(evs); err != nil {
		h.t.Fatalf("history of %d events: %v", len(evs), err)
	}
	for _, w := range h.workers {
		if r := w.Rejected(); len(r) > 0 {
			h.t.Logf("%s: item rejections %v", w.id, r)
		}
	}
	h.t.Logf("%d audit events checked", len(evs))
}

// typed is an event body of type T with the event's meta.
type typed[T fsm.EventBody] struct {
	fsm.Meta
	Body T
}

// ofType returns the events whose body is a T, in order.
func ofType[T fsm.EventBody](evs []fsm.Event) []typed[T] {
	var out []typed[T]
	for _, ev := range evs {
		if b, ok := ev.Body.(T); ok {
			out = append(out, typed[T]{Meta: ev.Meta, Body: b})
		}
	}
	return out
}

// since keeps the events after index from.
func since[T fsm.EventBody](evs []typed[T], from fsm.RaftIndex) []typed[T] {
	return slices.DeleteFunc(slices.Clone(evs), func(e typed[T]) bool { return e.Index <= from })
}
