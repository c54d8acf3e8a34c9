package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

// TestHealthAndReady: /healthz answers while the process serves; /readyz only
// while the node knows a leader and has caught up. A node restarted while cut
// off from the others is healthy but not ready (503 with Retry-After) until
// healed. Neither needs a token.
func TestHealthAndReady(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{Tokens: tokens()})
	hc := httpClient(t)
	for _, n := range c.Nodes {
		for _, p := range []string{api.PathHealth, api.PathReady} {
			if resp := do(t, hc, "GET", n.URL+p, "", "", nil); resp.status != http.StatusOK ||
				!strings.Contains(string(resp.body), `"node":"`+n.ID+`"`) {
				t.Fatalf("%s%s: %d %s", n.ID, p, resp.status, resp.body)
			}
		}
	}

	i := 0
	if c.Leader(t) == c.Nodes[0] {
		i = 1
	}
	n := c.Nodes[i]
	var ids []string
	for _, o := range c.Nodes {
		ids = append(ids, o.ID)
	}
	c.Kill(t, i)
	c.Net.Isolate(n.ID, ids...)
	c.Restart(t, i)
	if resp := do(t, hc, "GET", n.URL+api.PathHealth, "", "", nil); resp.status != http.StatusOK {
		t.Fatalf("isolated restarted %s /healthz: %d %s", n.ID, resp.status, resp.body)
	}
	resp := do(t, hc, "GET", n.URL+api.PathReady, "", "", nil)
	if resp.status != http.StatusServiceUnavailable || resp.header.Get("Retry-After") == "" {
		t.Fatalf("isolated restarted %s /readyz: %d %s, want 503 with Retry-After", n.ID, resp.status, resp.body)
	}
	if _, err := strictError(resp.status, resp.body); err != nil {
		t.Fatal(err)
	}

	c.Net.Heal()
	waitFor(t, n.ID+" ready after heal", func() error {
		if resp := do(t, hc, "GET", n.URL+api.PathReady, "", "", nil); resp.status != http.StatusOK {
			return fmt.Errorf("%d %s", resp.status, resp.body)
		}
		return nil
	})
}

// TestMetrics: /metrics exposes the raft node's metrics when the node
// registers into the registry the server gathers from.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := testcluster.NewWithAPI(t, 3, server.Config{Gatherer: reg}, func(cfg *raftnode.Config) { cfg.Registerer = reg })
	hc := httpClient(t)
	for _, n := range c.Nodes {
		leader := c.Leader(t)
		// The leadership gauge follows raft's observations: wait for it.
		waitFor(t, n.ID+"/metrics", func() error {
			resp := do(t, hc, "GET", n.URL+api.PathMetrics, "", "", nil)
			if resp.status != http.StatusOK {
				return fmt.Errorf("/metrics: %d %s", resp.status, resp.body)
			}
			body := string(resp.body)
			for _, want := range []string{
				`baton_raftnode_is_leader{node="` + leader.ID + `"} 1`,
				`baton_raftnode_entries_applied_total{node="` + n.ID + `"}`,
				`baton_raftnode_apply_seconds_bucket{node="` + leader.ID + `"`,
			} {
				if !strings.Contains(body, want) {
					return fmt.Errorf("/metrics of %s lacks %s", n.ID, want)
				}
			}
			return nil
		})
	}
}
