package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// watchResult is what a WatchAssignment running in the background returned.
type watchResult struct {
	a   fsm.Assignment
	idx fsm.RaftIndex
	err error
}

// TestWatchAssignment: a blocking query returns at once when the worker's
// assignment changed after the index given; otherwise it sleeps through other
// workers' changes and wakes on its own worker's, with the index of that
// change. Through the leader, through a follower (forwarded) and on a
// follower at stale consistency (served by the follower itself).
func TestWatchAssignment(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	admin := newClient(t, c.URLs())
	ctx := ctxT(t)
	for _, tc := range []struct {
		name  string
		node  func() *testcluster.Node
		stale bool
	}{
		{"leader", func() *testcluster.Node { return c.Leader(t) }, false},
		{"follower", func() *testcluster.Node { return c.Followers(t)[0] }, false},
		{"follower stale", func() *testcluster.Node { return c.Followers(t)[1] }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []client.Option
			if tc.stale {
				opts = append(opts, client.WithConsistency(client.ConsistencyStale))
			}
			cl := newClient(t, []string{tc.node().URL}, opts...)
			prefix := tc.name[:3] + tc.name[len(tc.name)-3:]
			me, other := fsm.WorkerID(prefix+"-me"), fsm.WorkerID(prefix+"-other")
			reg, err := admin.Register(ctx, api.RegisterRequest{Worker: me})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := admin.Register(ctx, api.RegisterRequest{Worker: other}); err != nil {
				t.Fatal(err)
			}
			mustOK(t, "declare")(admin.Declare(ctx, specs(prefix+"-p", 2)))
			c.WaitApplied(t, fsm.RaftIndex(reg.Incarnation))

			_, idx, err := cl.Assignment(ctx, me)
			if err != nil || idx != fsm.RaftIndex(reg.Incarnation) {
				t.Fatalf("assignment: index %d, %v; want the registration's %d", idx, err, reg.Incarnation)
			}
			// Already past: at once, whatever the wait (the test's deadline
			// would end a wait that did not return).
			for _, past := range []fsm.RaftIndex{0, idx - 1} {
				a, got, err := cl.WatchAssignment(ctx, me, past, 5*time.Minute)
				if err != nil || got != idx || a.Worker != me {
					t.Fatalf("watch from %d: %+v at %d, %v; want index %d at once", past, a, got, err, idx)
				}
			}

			done := make(chan watchResult, 1)
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				a, got, err := cl.WatchAssignment(wctx, me, idx, 20*time.Second)
				done <- watchResult{a, got, err}
			}()
			// Another worker's change, applied everywhere, must not wake it.
			res := claim(t, c, fsm.ClaimItem{Partition: fsm.PartitionID(prefix + "-p0"), Worker: other})
			c.WaitApplied(t, res.Index)
			select {
			case r := <-done:
				t.Fatalf("the watch woke for another worker's change: %+v", r)
			default:
			}
			// Its own worker's change wakes it, with that change's index.
			res = claim(t, c, fsm.ClaimItem{Partition: fsm.PartitionID(prefix + "-p1"), Worker: me})
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.idx != res.Index || len(r.a.Partitions) != 1 || r.a.Partitions[0].Partition != fsm.PartitionID(prefix+"-p1") {
				t.Fatalf("watch woke with %+v at %d; want %s-p1 at %d", r.a, r.idx, prefix, res.Index)
			}
		})
	}
}

// TestWatchAssignment_TimesOut: with nothing changing, the watch returns when
// its wait ends, with the index it was given.
func TestWatchAssignment_TimesOut(t *testing.T) {
	c := testcluster.NewWithAPI(t, 1, server.Config{})
	cl := newClient(t, c.URLs())
	ctx := ctxT(t)
	reg, err := cl.Register(ctx, api.RegisterRequest{Worker: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	a, idx, err := cl.WatchAssignment(ctx, "w1", fsm.RaftIndex(reg.Incarnation), 50*time.Millisecond)
	if err != nil || idx != fsm.RaftIndex(reg.Incarnation) || a.Incarnation != reg.Incarnation {
		t.Fatalf("watch: %+v at %d, %v", a, idx, err)
	}
	// A context with a deadline shorter than the wait shortens the wait
	// instead of failing the call.
	sctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	if _, idx, err := cl.WatchAssignment(sctx, "w1", fsm.RaftIndex(reg.Incarnation), time.Minute); err != nil || idx != fsm.RaftIndex(reg.Incarnation) {
		t.Fatalf("watch within a short deadline: %d, %v", idx, err)
	}
}
