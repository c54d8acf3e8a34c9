package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// TestLeaderHint_OnEveryResponse: whichever node answers, and whatever it
// answers (a local read, a forwarded write, a 4xx, a probe, an unknown path),
// the response names the leader's API URL in X-Baton-Leader, once.
func TestLeaderHint_OnEveryResponse(t *testing.T) {
	c, _ := newForwardCluster(t)
	hc := httpClient(t)
	leader := c.Leader(t)
	for _, n := range c.Nodes {
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
		}{
			{"local read", "GET", api.PathStatus, "", http.StatusOK},
			{"stale read", "GET", api.PathWorkers + "?consistency=stale", "", http.StatusOK},
			{"leader read", "GET", api.PathWorkers, "", http.StatusOK},
			{"write", "POST", api.PathRegister, `{"worker":"w1"}`, http.StatusOK},
			{"bad body", "POST", api.PathRegister, `{"worker":1}`, http.StatusBadRequest},
			{"state machine rejection", "GET", "/v1/workers/nobody", "", http.StatusNotFound},
			{"unknown path", "GET", "/v1/nothing", "", http.StatusNotFound},
			{"health probe", "GET", api.PathHealth, "", http.StatusOK},
		} {
			t.Run(n.ID+"/"+tc.name, func(t *testing.T) {
				resp := do(t, hc, tc.method, n.URL+tc.path, tc.body, "", nil)
				if resp.status != tc.status {
					t.Fatalf("status %d, want %d: %s", resp.status, tc.status, resp.body)
				}
				if got := resp.header.Values(api.HeaderLeader); len(got) != 1 || got[0] != leader.URL {
					t.Fatalf("%s: %q, want [%q]", api.HeaderLeader, got, leader.URL)
				}
			})
		}
	}
}

// TestLeaderHint_AsOfTheAnswer: a blocking query that waits across a leader
// change names the leader of when it answers, not of when it came: a client
// must not be sent back to a leader that was replaced meanwhile. And a node
// that knows no leader names none.
func TestLeaderHint_AsOfTheAnswer(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	hc := httpClient(t)
	old := c.Leader(t)
	fol := c.Followers(t)
	watcher, other := fol[0], fol[1]
	c.MustApply(t, fsm.Command{Header: fsm.Header{Actor: "test"}, Body: fsm.Join{Worker: "w1"}})
	var idx fsm.RaftIndex
	waitFor(t, watcher.ID+" to apply the join", func() error {
		if idx = watcher.Raft().WorkerIndex("w1"); idx == 0 {
			return fmt.Errorf("not yet")
		}
		return nil
	})

	// A stale blocking query is served by the follower itself, so it waits
	// there while the leader changes.
	got := make(chan response, 1)
	go func() {
		got <- do(t, hc, "GET", fmt.Sprintf("%s/v1/workers/w1/assignment?consistency=stale&index=%d&wait=20s", watcher.URL, idx), "", "", nil)
	}()
	c.Kill(t, indexOfNode(c, old))
	var newLeader *testcluster.Node
	waitFor(t, "a new leader known to "+watcher.ID, func() error {
		newLeader = c.Leader(t)
		if id, _, _ := watcher.Raft().Leader(); id != newLeader.ID {
			return fmt.Errorf("%s follows %q", watcher.ID, id)
		}
		return nil
	})
	c.MustApply(t, fsm.Command{Header: fsm.Header{Actor: "test"}, Body: fsm.Cordon{Worker: "w1", On: true}})
	resp := <-got
	if resp.status != http.StatusOK {
		t.Fatalf("watch: %d %s", resp.status, resp.body)
	}
	if h := resp.header.Get(api.HeaderLeader); h != newLeader.URL {
		t.Fatalf("the watch answered after the change naming %q, want the new leader %q (old %q)", h, newLeader.URL, old.URL)
	}

	// Cut off, a follower soon knows no leader, and says so by naming none.
	var ids []string
	for _, n := range c.Nodes {
		ids = append(ids, n.ID)
	}
	if other == newLeader {
		other = watcher
	}
	c.Net.Isolate(other.ID, ids...)
	waitFor(t, other.ID+" to lose its leader", func() error {
		if id, _, _ := other.Raft().Leader(); id != "" {
			return fmt.Errorf("%s still follows %s", other.ID, id)
		}
		return nil
	})
	resp = do(t, hc, "GET", other.URL+api.PathStatus, "", "", nil)
	if h, ok := resp.header[api.HeaderLeader]; resp.status != http.StatusOK || ok {
		t.Fatalf("a node with no leader: %d, %s %q, want none", resp.status, api.HeaderLeader, h)
	}
}

func indexOfNode(c *testcluster.Cluster, n *testcluster.Node) int {
	return slices.Index(c.Nodes, n)
}
