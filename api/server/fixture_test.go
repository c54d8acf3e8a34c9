package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// fixture is an authenticated 3-node cluster with two workers and four
// partitions in known phases:
//
//	p1  owned by w1, epoch 1, preparing (handoff h to w2)
//	p2  owned by w1, epoch 1, activating
//	p3  unassigned
//	p4  owned by w1, epoch 1, active
//
// w3 is registered and cordoned, by a request with id fixtureRequestID.
// Worker tokens are bound to their workers: workerToken to w1, worker2Token
// to w2, and derivedToken(w) to w.
type fixture struct {
	c          *testcluster.Cluster
	hc         *http.Client
	inc1, inc2 fsm.Incarnation // of w1 and w2
	handoff    fsm.HandoffID
}

const fixtureRequestID = "fixture-cordon-w3"

// maxBody is the fixture cluster's MaxBodyBytes (the smallest allowed).
const maxBody = 1024

func newFixture(t testing.TB, opts ...testcluster.Option) *fixture {
	t.Helper()
	return newFixtureN(t, 3, opts...)
}

// newFixtureN is newFixture with n nodes (the fuzz targets use one).
func newFixtureN(t testing.TB, n int, opts ...testcluster.Option) *fixture {
	t.Helper()
	c := testcluster.NewWithAPI(t, n, server.Config{Tokens: tokens(), WorkerTokenKey: testKey(), MaxBodyBytes: maxBody}, opts...)
	f := &fixture{c: c, hc: httpClient(t)}
	cl, err := client.New(c.URLs(), client.WithToken(opToken))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	defer cancel()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("fixture: %s: %v", what, err)
		}
	}
	r1, err := cl.Register(ctx, api.RegisterRequest{Worker: "w1"})
	must("register w1", err)
	r2, err := cl.Register(ctx, api.RegisterRequest{Worker: "w2"})
	must("register w2", err)
	_, err = cl.Register(ctx, api.RegisterRequest{Worker: "w3"})
	must("register w3", err)
	f.inc1, f.inc2 = r1.Incarnation, r2.Incarnation
	var specs []fsm.PartitionSpec
	for i := 1; i <= 4; i++ {
		specs = append(specs, fsm.PartitionSpec{ID: fsm.PartitionID(fmt.Sprintf("p%d", i)), Subjects: []string{fmt.Sprintf("s.p%d.>", i)}})
	}
	res, err := cl.Declare(ctx, specs)
	must("declare", err)
	must("declare items", client.ItemErrors(res))
	c.MustApply(t, fsm.Command{Header: fsm.Header{Actor: "test"}, Body: fsm.Claim{Items: []fsm.ClaimItem{
		{Partition: "p1", Worker: "w1"}, {Partition: "p2", Worker: "w1"}, {Partition: "p4", Worker: "w1"},
	}}})
	res, err = cl.Activated(ctx, "w1", f.inc1, []fsm.ActivateItem{{Partition: "p1", Epoch: 1}, {Partition: "p4", Epoch: 1}})
	must("activate", err)
	must("activate items", client.ItemErrors(res))
	res, err = cl.Move(ctx, "p1", api.MoveRequest{To: "w2"})
	must("move p1", err)
	for _, ev := range res.Events {
		if p, ok := ev.Body.(fsm.Prepared); ok {
			f.handoff = p.Handoff
		}
	}
	if f.handoff == 0 && res.Duplicate {
		// The client retried the move (a leader change under load) and
		// its answer is the first one's, without the events: the state
		// has the handoff.
		p1, err := cl.Partition(ctx, "p1")
		must("get p1", err)
		if p1.PendingHandoff != nil {
			f.handoff = p1.PendingHandoff.ID
		}
	}
	if f.handoff == 0 {
		t.Fatalf("fixture: move p1 prepared no handoff: %+v", res)
	}
	resp := do(t, f.hc, "POST", c.Nodes[0].URL+"/v1/workers/w3/cordon", `{"on":true}`, opToken,
		map[string]string{api.HeaderRequestID: fixtureRequestID})
	if resp.status != http.StatusOK {
		t.Fatalf("fixture: cordon w3: %d %s", resp.status, resp.body)
	}
	// Every node has applied all of it, so a follower's stale read sees it.
	c.WaitApplied(t, capture(t, c).applied)
	return f
}

// leaderURL and followerURL pick a node to send to.
func (f *fixture) leaderURL(t testing.TB) string { return f.c.Leader(t).URL }

func (f *fixture) followerURL(t testing.TB) string { return f.c.Followers(t)[0].URL }
