package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/internal/testcluster"
)

// TestNodes: GET /v1/cluster/nodes on any node lists every member's own
// status (its id, state and applied index), read with the caller's token; a
// member that is down is listed with an error instead of holding up the
// answer; without a token the answer is 401, and the console's files need
// none.
func TestNodes(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{Tokens: tokens()})
	hc := httpClient(t)
	read := func(n *testcluster.Node) api.NodeStatusList {
		t.Helper()
		resp := do(t, hc, "GET", n.URL+api.PathNodes, "", readToken, nil)
		if resp.status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", n.ID, api.PathNodes, resp.status, resp.body)
		}
		var out api.NodeStatusList
		if err := json.Unmarshal(resp.body, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	leader := c.Leader(t)
	var asker *testcluster.Node
	for _, n := range c.Nodes {
		if n != leader {
			asker = n
			break
		}
	}
	waitFor(t, "every member's status", func() error {
		got := read(asker)
		if got.Node != asker.ID || len(got.Nodes) != 3 {
			return fmt.Errorf("answered by %s with %d nodes", got.Node, len(got.Nodes))
		}
		for _, ns := range got.Nodes {
			if ns.Status == nil || ns.Status.NodeID != ns.ID || ns.Status.AppliedIndex == 0 {
				return fmt.Errorf("node %s: status %+v, error %v", ns.ID, ns.Status, ns.Error)
			}
			if ns.ID == leader.ID && ns.Status.State != "Leader" {
				return fmt.Errorf("leader %s says it is %s", ns.ID, ns.Status.State)
			}
		}
		return nil
	})

	if resp := do(t, hc, "GET", asker.URL+api.PathNodes, "", "", nil); resp.status != http.StatusUnauthorized {
		t.Errorf("%s without a token: %d %s", api.PathNodes, resp.status, resp.body)
	}
	if resp := do(t, hc, "GET", asker.URL+"/ui/", "", "", nil); resp.status != http.StatusOK {
		t.Errorf("/ui/ without a token: %d", resp.status)
	}

	for i, n := range c.Nodes {
		if n == leader {
			c.Kill(t, i)
		}
	}
	got := read(asker)
	for _, ns := range got.Nodes {
		switch {
		case ns.ID == leader.ID && (ns.Error == nil || ns.Status != nil):
			t.Errorf("the killed node %s: status %+v, error %v; want an error", ns.ID, ns.Status, ns.Error)
		case ns.ID != leader.ID && ns.Status == nil:
			t.Errorf("live node %s: error %v", ns.ID, ns.Error)
		}
	}
}
