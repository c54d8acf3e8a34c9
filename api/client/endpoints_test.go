package client_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/controller"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// TestEveryMethod runs every client method against a client that knows only
// the leader, then against one that knows only a follower (which forwards
// writes and leader reads): both must behave the same.
func TestEveryMethod(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	for _, target := range []string{"leader", "follower"} {
		t.Run(target, func(t *testing.T) {
			n := c.Leader(t)
			if target == "follower" {
				n = c.Followers(t)[0]
			}
			// One address and no retries: nothing may hide a forwarding bug.
			cl := newClient(t, []string{n.URL}, client.WithRetries(0))
			everyMethod(t, c, cl, target)
		})
	}
}

func everyMethod(t *testing.T, c *testcluster.Cluster, cl *client.Client, prefix string) {
	ctx := ctxT(t)
	w1, w2 := fsm.WorkerID(prefix+"-w1"), fsm.WorkerID(prefix+"-w2")
	pa, pb, pc := fsm.PartitionID(prefix+"-p0"), fsm.PartitionID(prefix+"-p1"), fsm.PartitionID(prefix+"-p2")

	// Sessions.
	r1, err := cl.Register(ctx, api.RegisterRequest{Worker: w1, Weight: 2, Labels: []fsm.Label{{Key: "zone", Value: "a"}}})
	if err != nil || r1.Worker != w1 || r1.Incarnation == 0 || r1.SessionTTLMS <= 0 || r1.HeartbeatIntervalMS <= 0 {
		t.Fatalf("Register: %+v, %v", r1, err)
	}
	r2, err := cl.Register(ctx, api.RegisterRequest{Worker: w2})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if ttl, err := cl.Heartbeat(ctx, w1, r1.Incarnation); err != nil || ttl <= 0 {
		t.Fatalf("Heartbeat: %s, %v", ttl, err)
	}
	if _, err := cl.Heartbeat(ctx, w1, r1.Incarnation+1000); !errors.Is(err, client.ErrUnknownSession) {
		t.Fatalf("Heartbeat of another incarnation: %v, want ErrUnknownSession", err)
	}

	// Workers.
	ws, err := cl.Workers(ctx)
	if err != nil || !slices.ContainsFunc(ws.Workers, func(w fsm.Worker) bool { return w.ID == w1 }) || ws.Index == 0 {
		t.Fatalf("Workers: %+v, %v", ws, err)
	}
	if w, err := cl.Worker(ctx, w1); err != nil || w.Incarnation != r1.Incarnation || w.Weight != 2 {
		t.Fatalf("Worker: %+v, %v", w, err)
	}
	if _, err := cl.Worker(ctx, "nobody"); !errors.Is(err, fsm.ErrUnknownWorker) {
		t.Fatalf("Worker(nobody): %v, want fsm.ErrUnknownWorker", err)
	}

	// Partitions.
	mustOK(t, "Declare")(cl.Declare(ctx, specs(prefix+"-p", 3)))
	claim(t, c, fsm.ClaimItem{Partition: pa, Worker: w1}, fsm.ClaimItem{Partition: pb, Worker: w1})
	a, idx, err := cl.Assignment(ctx, w1)
	if err != nil || idx == 0 || len(a.Partitions) != 2 || a.Partitions[0].Partition != pa {
		t.Fatalf("Assignment: %+v at %d, %v", a, idx, err)
	}
	mustOK(t, "Activated")(cl.Activated(ctx, w1, r1.Incarnation, []fsm.ActivateItem{{Partition: pa, Epoch: 1}, {Partition: pb, Epoch: 1}}))
	res := mustOK(t, "Checkpoints")(cl.Checkpoints(ctx, w1, r1.Incarnation, []fsm.CheckpointItem{{Partition: pa, Epoch: 1, Seq: 5}}))
	if res.Index == 0 {
		t.Fatalf("Checkpoints: no index in %+v", res)
	}
	res, err = cl.Checkpoints(ctx, w1, r1.Incarnation, []fsm.CheckpointItem{{Partition: pa, Epoch: 9, Seq: 6}})
	if err != nil || !errors.Is(client.ItemErrors(res), fsm.ErrStaleEpoch) {
		t.Fatalf("Checkpoints at a stale epoch: %+v, %v; want an item fsm.ErrStaleEpoch", res, err)
	}
	if _, err := cl.Checkpoints(ctx, w1, r1.Incarnation-1, []fsm.CheckpointItem{{Partition: pa, Epoch: 1, Seq: 6}}); !errors.Is(err, fsm.ErrStaleIncarnation) {
		t.Fatalf("Checkpoints of a stale incarnation: %v, want fsm.ErrStaleIncarnation", err)
	}

	// A graceful move: prepare (Move), drain (Drained), commit (the
	// controller's, applied directly), activate on the target.
	res = mustOK(t, "Move")(cl.Move(ctx, pa, api.MoveRequest{To: w2, Reason: "test"}))
	var h fsm.HandoffID
	for _, ev := range res.Events {
		if p, ok := ev.Body.(fsm.Prepared); ok {
			h = p.Handoff
		}
	}
	hs, err := cl.Handoffs(ctx)
	if err != nil || h == 0 || !slices.ContainsFunc(hs.Handoffs, func(x fsm.Handoff) bool { return x.ID == h && x.To == w2 }) {
		t.Fatalf("Handoffs: %+v, %v; want %s to %s", hs, err, h, w2)
	}
	mustOK(t, "Drained")(cl.Drained(ctx, w1, r1.Incarnation, []fsm.DrainItem{{Handoff: h, Partition: pa, Epoch: 1, ThroughSeq: 7}}))
	c.MustApply(t, fsm.Command{Header: fsm.Header{Actor: "test"}, Body: fsm.Commit{Items: []fsm.CommitItem{{Handoff: h, Partition: pa}}}})
	mustOK(t, "Activated")(cl.Activated(ctx, w2, r2.Incarnation, []fsm.ActivateItem{{Partition: pa, Epoch: 2}}))
	p, err := cl.Partition(ctx, pa)
	if err != nil || p.Owner != w2 || p.Epoch != 2 || p.ResumeAfter != 7 || p.Phase != fsm.PhaseActive {
		t.Fatalf("Partition after the move: %+v, %v", p, err)
	}
	if _, err := cl.Partition(ctx, "nothing"); !errors.Is(err, fsm.ErrUnknownPartition) {
		t.Fatalf("Partition(nothing): %v", err)
	}
	mustOK(t, "Released")(cl.Released(ctx, w1, r1.Incarnation, []fsm.ReleaseItem{{Partition: pb, Epoch: 1, ThroughSeq: 3}}))

	// Listing, page by page and all at once.
	page, err := cl.Partitions(ctx, "", 1)
	if err != nil || len(page.Partitions) != 1 || page.Next == "" {
		t.Fatalf("Partitions(limit 1): %+v, %v", page, err)
	}
	var all []fsm.PartitionID
	for p, err := range cl.AllPartitions(ctx) {
		if err != nil {
			t.Fatalf("AllPartitions: %v", err)
		}
		all = append(all, p.ID)
	}
	for _, id := range []fsm.PartitionID{pa, pb, pc} {
		if !slices.Contains(all, id) {
			t.Fatalf("AllPartitions: %v lacks %s", all, id)
		}
	}
	if !slices.IsSorted(all) {
		t.Fatalf("AllPartitions out of order: %v", all)
	}

	// Operator verbs.
	mustOK(t, "Pin")(cl.Pin(ctx, pc, w1))
	mustOK(t, "Cordon")(cl.Cordon(ctx, w2, true))
	if w, _ := cl.Worker(ctx, w2); !w.Cordoned {
		t.Fatalf("Cordon: %s not cordoned", w2)
	}
	mustOK(t, "Uncordon")(cl.Cordon(ctx, w2, false))
	mustOK(t, "SetRebalance")(cl.SetRebalance(ctx, true))
	if s, err := cl.Summary(ctx); err != nil || !s.Paused || s.Index == 0 {
		t.Fatalf("Summary after pausing: %+v, %v", s, err)
	}
	mustOK(t, "SetRebalance")(cl.SetRebalance(ctx, false))
	if _, err := cl.Plan(ctx); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Plan without a planner: %v, want ErrNotFound", err)
	}
	mustOK(t, "RemovePartition")(cl.RemovePartition(ctx, pc))
	mustOK(t, "RemovePartitions")(cl.RemovePartitions(ctx, []fsm.PartitionID{pb}))
	if _, err := cl.RemovePartition(ctx, pc); !errors.Is(err, fsm.ErrUnknownPartition) {
		t.Fatalf("RemovePartition twice: %v", err)
	}

	// Audit.
	ap, err := cl.Audit(ctx, client.AuditQuery{Worker: w1, Limit: 2}, "")
	if err != nil || len(ap.Events) != 2 || ap.Next == "" {
		t.Fatalf("Audit page: %+v, %v", ap, err)
	}
	var types []fsm.EventType
	for ev, err := range cl.AuditAll(ctx, client.AuditQuery{Partition: pa}) {
		if err != nil {
			t.Fatalf("AuditAll: %v", err)
		}
		types = append(types, ev.Type())
	}
	want := []fsm.EventType{fsm.EvPartitionsDeclared, fsm.EvClaimed, fsm.EvActivated, fsm.EvCheckpointed,
		fsm.EvPrepared, fsm.EvDrained, fsm.EvCommitted, fsm.EvActivated}
	if !slices.Equal(types, want) {
		t.Fatalf("AuditAll(partition %s): %v, want %v", pa, types, want)
	}
	var followed []fsm.EventType
	for ev, err := range cl.FollowAudit(ctx, client.AuditQuery{Partition: pa}, "") {
		if err != nil {
			t.Fatalf("FollowAudit: %v", err)
		}
		if followed = append(followed, ev.Type()); len(followed) == len(want) {
			break
		}
	}
	if !slices.Equal(followed, want) {
		t.Fatalf("FollowAudit(partition %s): %v, want %v", pa, followed, want)
	}

	// Leaving and removal.
	mustOK(t, "RemoveWorker")(cl.RemoveWorker(ctx, w2))
	res = mustOK(t, "Leave")(cl.Leave(ctx, w1, r1.Incarnation))
	if !slices.ContainsFunc(res.Events, func(e api.Event) bool { return e.Type() == fsm.EvWorkerLeft }) {
		t.Fatalf("Leave of a worker owning nothing: %+v, want WorkerLeft", res.Events)
	}

	// Cluster.
	st, err := cl.Status(ctx)
	if err != nil || len(st.Members) != 3 || st.LeaderID == "" {
		t.Fatalf("Status: %+v, %v", st, err)
	}
	for _, node := range c.Nodes {
		if id, err := cl.Health(ctx, node.URL); err != nil || id != node.ID {
			t.Fatalf("Health(%s): %q, %v", node.URL, id, err)
		}
		if id, err := cl.Ready(ctx, node.URL); err != nil || id != node.ID {
			t.Fatalf("Ready(%s): %q, %v", node.URL, id, err)
		}
	}
	// A member that never comes up: with four voters the quorum is three,
	// which the three live nodes still make; it is removed at once.
	ghost := prefix + "-ghost"
	if err := cl.Join(ctx, api.JoinRequest{ID: ghost, RaftAddr: "127.0.0.1:1", APIAddr: "http://127.0.0.1:1"}); err != nil {
		t.Fatalf("Join: %v", err)
	}
	members := func(n int) func() error {
		// Status is the answering node's view: a follower sees the
		// configuration change once it has replicated.
		return func() error {
			st, err := cl.Status(ctx)
			if err == nil && len(st.Members) != n {
				err = fmt.Errorf("%s sees %d members, want %d", st.NodeID, len(st.Members), n)
			}
			return err
		}
	}
	testcluster.Eventually(t, "the ghost member", members(4))
	if err := cl.RemoveNode(ctx, ghost); err != nil {
		t.Fatalf("RemoveNode: %v", err)
	}
	testcluster.Eventually(t, "the ghost gone", members(3))
	if err := cl.RemoveNode(ctx, ghost); !errors.Is(err, fsm.ErrUnknownNode) {
		t.Fatalf("RemoveNode of a removed node: %v, want fsm.ErrUnknownNode", err)
	}
	if err := cl.Join(ctx, api.JoinRequest{ID: "bad id!", RaftAddr: "127.0.0.1:1", APIAddr: "http://127.0.0.1:1"}); !errors.Is(err, fsm.ErrInvalidArgument) {
		t.Fatalf("Join with an invalid id: %v, want fsm.ErrInvalidArgument", err)
	}
	testcluster.Eventually(t, "still three members", members(3))
}

// fakePlanner is a server.Planner with a function field.
type fakePlanner struct {
	plan func() (api.Plan, error)
}

func (p fakePlanner) Plan(context.Context) (api.Plan, error) { return p.plan() }

// fullPlan is a dry run with every field set.
func fullPlan() api.Plan {
	return api.Plan{
		Index: 42, Paused: true, Imbalance: 0.25,
		Workers: []api.PlanWorker{
			{Worker: "w1", Weight: 2, Eligible: true, Load: 5, Fixed: 1, Fair: 4.5, Lower: 4, Upper: 5},
			{Worker: "w2", Weight: 1, Load: 3, Fixed: 3, Lower: 3, Upper: 3, Saturated: true},
		},
		Moves: []api.PlanMove{{Partition: "p1", From: "w2", To: "w1", Reason: "owner_ineligible", Detail: "w2 cordoned"}},
		Actions: []api.PlanAction{
			{Partition: "p1", From: "w2", To: "w1", Action: api.PlanPrepare, Reason: "owner_ineligible", Detail: "w2 cordoned"},
			{Partition: "p2", Action: api.PlanHold, Reason: "unassigned", Detail: "membership stabilizing"},
		},
		Pending: []fsm.Handoff{{ID: 7, Partition: "p3", From: "w1", To: "w2", Epoch: 3, Reason: "pinned",
			Deadline: 1700000000000000000, PreparedIndex: 40, PreparedTime: 1690000000000000000, Drained: true,
			ThroughSeq: 99, DrainedTime: 1695000000000000000}},
		Warnings: []string{"w2 saturated"},
		Rendered: "plan:\n  p1 w2 -> w1\n",
	}
}

// TestPlan: the client's Plan decodes what the server sends, field for
// field, from the leader and through a follower (which forwards it); a
// planner's error reaches the client with its code.
func TestPlan(t *testing.T) {
	want := fullPlan()
	var fail atomic.Bool
	c := testcluster.NewWithAPI(t, 3, server.Config{Planner: fakePlanner{plan: func() (api.Plan, error) {
		if fail.Load() {
			return api.Plan{}, fmt.Errorf("plan: %w", fsm.ErrUnknownWorker)
		}
		return want, nil
	}}})
	for _, n := range []*testcluster.Node{c.Leader(t), c.Followers(t)[0]} {
		got, err := newClient(t, []string{n.URL}).Plan(ctxT(t))
		if err != nil {
			t.Fatalf("Plan via %s: %v", n.ID, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Plan via %s:\n got %+v\nwant %+v", n.ID, got, want)
		}
	}
	fail.Store(true)
	if _, err := newClient(t, []string{c.Leader(t).URL}).Plan(ctxT(t)); !errors.Is(err, fsm.ErrUnknownWorker) {
		t.Fatalf("Plan of a failing planner: %v, want fsm.ErrUnknownWorker", err)
	}
}

// fakeSessions is a server.Sessions whose Heartbeat returns err.
type fakeSessions struct{ err error }

func (fakeSessions) Registered(fsm.WorkerID, fsm.Incarnation) {}
func (s fakeSessions) Heartbeat(fsm.WorkerID, fsm.Incarnation) (time.Duration, error) {
	return time.Second, s.err
}

// TestHeartbeat_UnknownSessionContract: a session table's error that wraps
// api.ErrUnknownSession, the controller's *SessionError among them, reaches
// the worker as ErrUnknownSession with the table's explanation; any other
// error does not.
func TestHeartbeat_UnknownSessionContract(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		unknown bool
	}{
		{"controller session error", &controller.SessionError{Worker: "w1", Incarnation: 9}, true},
		{"wrapped controller session error", fmt.Errorf("renew: %w", &controller.SessionError{Worker: "w1", Incarnation: 9}), true},
		{"bare sentinel, wrapped", fmt.Errorf("renew w1: %w", api.ErrUnknownSession), true},
		{"controller sentinel alone", controller.ErrUnknownSession, false},
		{"another error", errors.New("disk on fire"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testcluster.NewWithAPI(t, 1, server.Config{Sessions: fakeSessions{err: tt.err}})
			cl := newClient(t, []string{c.Leader(t).URL}, client.WithRetries(0))
			r, err := cl.Register(ctxT(t), api.RegisterRequest{Worker: "w1"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = cl.Heartbeat(ctxT(t), "w1", r.Incarnation)
			if got := errors.Is(err, client.ErrUnknownSession); got != tt.unknown {
				t.Fatalf("Heartbeat: %v; unknown session %v, want %v", err, got, tt.unknown)
			}
			var ae *api.Error
			if !errors.As(err, &ae) || (tt.unknown && (ae.Status != 404 || !strings.Contains(ae.Message, tt.err.Error()))) {
				t.Fatalf("Heartbeat: %#v, want a 404 that explains %q", ae, tt.err)
			}
		})
	}
}
