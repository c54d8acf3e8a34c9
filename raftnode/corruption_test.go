package raftnode_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

// Tokens of the corruption check tests: the API authenticates, so the check
// must present a token its peers accept (it picks the read token).
const (
	checkReadToken = "read-secret-0123456789abcd"
	checkOpToken   = "operator-secret-0123456789"
)

// checkedCluster starts n nodes serving the API with authentication, the
// corruption check every 20 ms, and every node's metrics in reg.
func checkedCluster(t *testing.T, n int, reg *prometheus.Registry, opts ...testcluster.Option) *testcluster.Cluster {
	t.Helper()
	cfg := server.Config{
		Tokens: []server.Token{
			{Name: "ops", Role: server.RoleOperator, Secret: checkOpToken},
			{Name: "ro", Role: server.RoleRead, Secret: checkReadToken},
		},
		DigestCheckInterval: 20 * time.Millisecond,
	}
	return testcluster.NewWithAPI(t, n, cfg, append([]testcluster.Option{func(c *raftnode.Config) { c.Registerer = reg }}, opts...)...)
}

// apiGet GETs path on a node's API with the read token and decodes the JSON
// answer into out; it returns the HTTP status.
func apiGet(t *testing.T, base, path string, out any) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+checkReadToken)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections() // no keep-alive goroutine for goleak
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
}

// divergenceGauge reads baton_raftnode_state_divergence{observer, node}.
func divergenceGauge(reg *prometheus.Registry, observer, node string) (float64, bool) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, false
	}
	for _, mf := range mfs {
		if mf.GetName() != "baton_raftnode_state_divergence" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["observer"] == observer && labels["node"] == node {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// mark proposes a digest mark through the current leader.
func mark(t *testing.T, c *testcluster.Cluster) fsm.RaftIndex {
	t.Helper()
	var idx fsm.RaftIndex
	testcluster.Eventually(t, "a digest mark", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		idx, err = c.Leader(t).Raft().MarkDigest(ctx)
		return err
	})
	return idx
}

func divergentNodes(st api.ClusterStatus) []string {
	var out []string
	for _, d := range st.Divergence {
		out = append(out, d.Node)
	}
	return out
}

// TestCorruptionCheck_NamesTheCorruptedNode: one replica applies a command
// behind raft's back. At the next mark every node, the corrupted one
// included, names it divergent in its status, with the index and both
// digests; its /readyz answers 503 saying so, it refuses reads from its
// state, its divergence metric is 1 on every node; the healthy nodes stay
// ready, with their own metric at 0. A corrupted leader hands leadership
// over.
func TestCorruptionCheck_NamesTheCorruptedNode(t *testing.T) {
	tests := []struct {
		name string
		pick func(*testing.T, *testcluster.Cluster) *testcluster.Node
	}{
		{"a follower", func(t *testing.T, c *testcluster.Cluster) *testcluster.Node { return c.Followers(t)[0] }},
		{"the leader", func(t *testing.T, c *testcluster.Cluster) *testcluster.Node { return c.Leader(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			c := checkedCluster(t, 3, reg)
			c.MustApply(t, join("w1"))
			c.MustApply(t, declare(4, "p"))
			bad := tt.pick(t, c)
			var healthy []*testcluster.Node
			for _, n := range c.Nodes {
				if n != bad {
					healthy = append(healthy, n)
				}
			}
			// Before any corruption, a mark compares equal everywhere.
			first := mark(t, c)
			testcluster.Eventually(t, "a first comparison without divergence", func() error {
				for _, n := range c.Nodes {
					var st api.ClusterStatus
					if _, err := apiGet(t, n.URL, api.PathStatus, &st); err != nil {
						return err
					}
					if st.DigestChecked < uint64(first) || len(st.Divergence) > 0 {
						return fmt.Errorf("%s: checked %d (want %d), divergence %v", n.ID, st.DigestChecked, first, divergentNodes(st))
					}
				}
				return nil
			})

			res := raftnode.CorruptState(bad.Raft(), fsm.Command{Header: fsm.Header{Actor: "rogue", Time: 1},
				Body: fsm.Cordon{Worker: "w1", On: true}})
			if res.Err != nil || len(res.Events) != 1 {
				t.Fatalf("corrupt %s: %v, %d events", bad.ID, res.Err, len(res.Events))
			}
			// The next entry takes the index the rogue command took on the
			// corrupted node, which refuses it as already applied (so the
			// answer is a rejection when it leads).
			c.Apply(t, join("w2"))
			idx := mark(t, c)

			testcluster.Eventually(t, bad.ID+" named divergent everywhere", func() error {
				for _, n := range c.Nodes {
					var st api.ClusterStatus
					if _, err := apiGet(t, n.URL, api.PathStatus, &st); err != nil {
						return err
					}
					if got := divergentNodes(st); !slices.Equal(got, []string{bad.ID}) {
						return fmt.Errorf("%s names %v divergent, want [%s]", n.ID, got, bad.ID)
					}
					d := st.Divergence[0]
					if d.Index < uint64(idx) || d.Majority == "" || d.Digest == d.Majority || len(d.Digests) != 3 {
						return fmt.Errorf("%s's evidence: %+v (mark at %d)", n.ID, d, idx)
					}
					if v, ok := divergenceGauge(reg, n.ID, bad.ID); !ok || v != 1 {
						return fmt.Errorf("divergence{observer=%s,node=%s} = %v (present %v), want 1", n.ID, bad.ID, v, ok)
					}
				}
				var e api.ErrorBody
				code, err := apiGet(t, bad.URL, api.PathReady, &e)
				if err != nil {
					return err
				}
				if code != http.StatusServiceUnavailable || e.Error == nil || e.Error.Code != api.CodeNotReady ||
					!strings.Contains(e.Error.Message, "diverged") {
					return fmt.Errorf("%s /readyz: %d %+v, want 503 not_ready naming the divergence", bad.ID, code, e.Error)
				}
				for _, h := range healthy {
					var ok map[string]string
					if code, err := apiGet(t, h.URL, api.PathReady, &ok); err != nil || code != http.StatusOK {
						return fmt.Errorf("%s /readyz: %d %v", h.ID, code, err)
					}
					if v, ok := divergenceGauge(reg, h.ID, h.ID); !ok || v != 0 {
						return fmt.Errorf("divergence{observer=%s,node=%s} = %v (present %v), want 0", h.ID, h.ID, v, ok)
					}
				}
				if bad.Raft().IsLeader() {
					return fmt.Errorf("%s still leads", bad.ID)
				}
				return nil
			})
			err := bad.Raft().Read(context.Background(), raftnode.Stale, func(*fsm.State) {})
			var de *raftnode.DivergedError
			if !errors.Is(err, raftnode.ErrDiverged) || !errors.As(err, &de) || de.Node != bad.ID {
				t.Fatalf("stale read on %s: %v, want ErrDiverged naming it", bad.ID, err)
			}
			for _, h := range healthy {
				if err := h.Raft().Read(context.Background(), raftnode.Stale, func(*fsm.State) {}); err != nil {
					t.Fatalf("stale read on %s: %v", h.ID, err)
				}
			}
		})
	}
}

// TestCorruptionCheck_NoFalsePositive: over a run with writes, marks every
// 20 ms, snapshots and audit trims, a follower killed and restarted behind
// (it restores its snapshot, then installs the leader's), and a node that
// joins late (it installs a snapshot), every node compares equal with every
// other, stays ready, and no divergence metric is ever 1.
func TestCorruptionCheck_NoFalsePositive(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := checkedCluster(t, 3, reg, func(cfg *raftnode.Config) {
		cfg.DigestInterval = 20 * time.Millisecond
		cfg.SnapshotInterval = 50 * time.Millisecond
		cfg.SnapshotThreshold = 32
		cfg.TrailingLogs = 8
		cfg.Audit.MaxEvents = 40
	})
	// noDivergence fails the test at once if any node reports a divergence.
	noDivergence := func() {
		t.Helper()
		for _, n := range c.Nodes {
			if n.Raft() == nil {
				continue
			}
			if dc := n.Raft().DigestCheck(); len(dc.Divergent) > 0 {
				t.Fatalf("%s found a divergence: %+v", n.ID, dc.Divergent)
			}
		}
	}
	w := 0
	writes := func(k int) {
		t.Helper()
		for range k {
			w++
			c.MustApply(t, join(fmt.Sprintf("w%d", w)))
			c.MustApply(t, declare(1, fmt.Sprintf("q%d-", w)))
			c.MustApply(t, fsm.Command{Header: fsm.Header{Actor: "test"},
				Body: fsm.Claim{Items: []fsm.ClaimItem{{Partition: fsm.PartitionID(fmt.Sprintf("q%d-0", w)), Worker: fsm.WorkerID(fmt.Sprintf("w%d", w))}}}})
			c.MustApply(t, fsm.Command{Header: fsm.Header{Actor: "test"}, Body: fsm.SetRebalance{Paused: w%2 == 0}})
			noDivergence()
		}
	}
	writes(15)
	lagger := indexOf(c, c.Followers(t)[0])
	c.Kill(t, lagger)
	writes(15)
	c.Restart(t, lagger)
	writes(10)
	c.AddNode(t, false)
	c.WaitMembers(t, 4)
	writes(10)
	final := mark(t, c)

	testcluster.Eventually(t, "every node compared at the final mark, all equal", func() error {
		noDivergence()
		for _, n := range c.Nodes {
			var st api.ClusterStatus
			if _, err := apiGet(t, n.URL, api.PathStatus, &st); err != nil {
				return err
			}
			if len(st.Divergence) > 0 {
				t.Fatalf("%s reports divergence: %+v", n.ID, st.Divergence)
			}
			if !st.Ready {
				return fmt.Errorf("%s not ready: %s", n.ID, st.NotReady)
			}
			if st.DigestChecked < uint64(final) {
				return fmt.Errorf("%s compared up to %d, final mark %d", n.ID, st.DigestChecked, final)
			}
			for _, o := range c.Nodes {
				v, ok := divergenceGauge(reg, n.ID, o.ID)
				if v != 0 {
					t.Fatalf("divergence{observer=%s,node=%s} = %v", n.ID, o.ID, v)
				}
				if !ok {
					return fmt.Errorf("divergence{observer=%s,node=%s} not set yet", n.ID, o.ID)
				}
			}
		}
		return nil
	})
	c.EnsureSame(t)
	var snaps uint64
	for _, n := range c.Nodes {
		st, err := n.Raft().Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		snaps = max(snaps, st.SnapshotIndex)
		if b := n.Raft().Audit().Bounds(); b.Base == 0 {
			t.Errorf("%s: the audit log was never trimmed (bounds %+v)", n.ID, b)
		}
	}
	if snaps == 0 {
		t.Error("no node took a snapshot")
	}
}
