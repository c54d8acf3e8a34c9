// Package testcluster starts real multi-node claim-store clusters for tests:
// raftnode nodes over loopback TCP with bolt stores in t.TempDir(), a shared
// faultnet.Network between them, and helpers to find the leader, kill and restart
// nodes, and check that every node holds the same state and audit log.
package testcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/audit"
	"github.com/batonhq/baton/controller"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/faultnet"
	"github.com/batonhq/baton/raftnode"
)

// Timeout bounds every wait in this package.
const Timeout = 30 * time.Second

// Cluster is a set of nodes started by New.
type Cluster struct {
	tb    testing.TB
	Net   *faultnet.Network
	Nodes []*Node
	tune  func(*raftnode.Config)
	// api, when set, makes every node serve the HTTP API with this config.
	api *server.Config
	// ctrl, when set, runs a controller on every node (its API then takes
	// worker sessions and dry runs from it).
	ctrl *controller.Config
}

// Node is one member: its config (to restart it on the same data dir and
// address) and the running raftnode.Node, nil while stopped.
type Node struct {
	ID  string
	Cfg raftnode.Config
	// URL is the node's API base URL when the cluster serves the API.
	URL string
	// mu guards node, api and httpSrv, swapped by Kill and Restart while other
	// goroutines read.
	mu      sync.Mutex
	node    *raftnode.Node
	api     *server.Server
	httpSrv *http.Server
	ctrl    *controller.Controller
}

// Controller returns the node's controller, or nil.
func (n *Node) Controller() *controller.Controller {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ctrl
}

// Raft returns the running node, or nil if it is stopped.
func (n *Node) Raft() *raftnode.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.node
}

// Option adjusts every node's config before start.
type Option func(*raftnode.Config)

// Fast sets short raft timeouts so that elections take tens of milliseconds.
func Fast(c *raftnode.Config) {
	c.HeartbeatTimeout = 200 * time.Millisecond
	c.ElectionTimeout = 200 * time.Millisecond
	c.LeaderLeaseTimeout = 100 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.NoSync = true
}

// New starts n nodes: node 0 bootstraps, the others join through the leader.
// Everything stops at test cleanup.
func New(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	return newCluster(tb, n, nil, opts)
}

// NewWithAPI is New with every node also serving the HTTP API (api/server)
// configured by apiCfg, on a loopback port of its own.
func NewWithAPI(tb testing.TB, n int, apiCfg server.Config, opts ...Option) *Cluster {
	tb.Helper()
	return newCluster(tb, n, &apiCfg, opts)
}

// URLs returns every node's API base URL.
func (c *Cluster) URLs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.URL)
	}
	return out
}

// NewFull is NewWithAPI with a controller running on every node: a complete
// claim store as `baton server` runs it.
func NewFull(tb testing.TB, n int, apiCfg server.Config, ctrlCfg controller.Config, opts ...Option) *Cluster {
	tb.Helper()
	return newClusterWith(tb, n, &apiCfg, &ctrlCfg, opts)
}

func newCluster(tb testing.TB, n int, apiCfg *server.Config, opts []Option) *Cluster {
	tb.Helper()
	return newClusterWith(tb, n, apiCfg, nil, opts)
}

func newClusterWith(tb testing.TB, n int, apiCfg *server.Config, ctrlCfg *controller.Config, opts []Option) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb, Net: faultnet.New(), api: apiCfg, ctrl: ctrlCfg}
	c.tune = func(cfg *raftnode.Config) {
		Fast(cfg)
		for _, o := range opts {
			o(cfg)
		}
	}
	// The test's temporary directories are removed by a cleanup registered
	// at the first TempDir call; cleanups run last-in first-out, so that one
	// is registered before Stop's: nodes stop before their data dirs go (a
	// snapshot written meanwhile would make the removal fail).
	tb.TempDir()
	tb.Cleanup(c.Stop)
	for i := 0; i < n; i++ {
		c.AddNode(tb, i == 0)
		if i == 0 {
			c.Leader(tb)
		}
	}
	if n > 1 {
		c.WaitMembers(tb, n)
	}
	return c
}

// AddNode starts one more node and, unless it bootstraps, joins it through the
// leader. It returns the node.
func (c *Cluster) AddNode(tb testing.TB, bootstrap bool) *Node {
	tb.Helper()
	id := fmt.Sprintf("n%d", len(c.Nodes)+1)
	cfg := raftnode.DefaultConfig()
	cfg.NodeID = id
	cfg.DataDir = filepath.Join(tb.TempDir(), id)
	cfg.RaftAddr = "127.0.0.1:0"
	cfg.APIAddr = "http://" + id + ".api.invalid"
	var ln net.Listener
	if c.api != nil {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("%s: API listener: %v", id, err)
		}
		cfg.APIAddr = "http://" + ln.Addr().String()
	}
	cfg.Bootstrap = bootstrap
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.Audit = audit.DefaultConfig()
	c.tune(&cfg)
	cfg.WrapTransport = func(t raft.Transport) raft.Transport { return c.Net.Wrap(id, t) }
	rn, err := raftnode.New(cfg)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		tb.Fatalf("start %s: %v", id, err)
	}
	// Restarts must come back at the same address.
	cfg.RaftAddr = rn.RaftAddr()
	cfg.Bootstrap = false
	nd := &Node{ID: id, Cfg: cfg, node: rn}
	if ln != nil {
		nd.URL = cfg.APIAddr
		c.serve(tb, nd, ln)
	}
	c.Nodes = append(c.Nodes, nd)
	if !bootstrap {
		c.join(tb, nd)
	}
	return nd
}

func (c *Cluster) join(tb testing.TB, nd *Node) {
	tb.Helper()
	Eventually(tb, "join "+nd.ID, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.Leader(tb).Raft().Join(ctx, nd.ID, nd.Raft().RaftAddr(), nd.Cfg.APIAddr)
	})
}

// Leader waits for a leader among the running nodes and returns it.
func (c *Cluster) Leader(tb testing.TB) *Node {
	tb.Helper()
	var leader *Node
	Eventually(tb, "a leader", func() error {
		leader = nil
		for _, n := range c.Nodes {
			if r := n.Raft(); r != nil && r.IsLeader() {
				if leader != nil {
					return fmt.Errorf("two leaders: %s and %s", leader.ID, n.ID)
				}
				leader = n
			}
		}
		if leader == nil {
			return errors.New("no leader")
		}
		return nil
	})
	return leader
}

// Followers returns the running nodes that are not the leader.
func (c *Cluster) Followers(tb testing.TB) []*Node {
	tb.Helper()
	l := c.Leader(tb)
	var out []*Node
	for _, n := range c.Nodes {
		if n != l && n.Raft() != nil {
			out = append(out, n)
		}
	}
	return out
}

// WaitMembers waits until the leader's configuration has n voters and every
// running node has a leader.
func (c *Cluster) WaitMembers(tb testing.TB, n int) {
	tb.Helper()
	Eventually(tb, fmt.Sprintf("%d members", n), func() error {
		st, err := c.Leader(tb).Raft().Status(context.Background())
		if err != nil {
			return err
		}
		if len(st.Members) != n {
			return fmt.Errorf("%d members", len(st.Members))
		}
		for _, nd := range c.Nodes {
			if r := nd.Raft(); r != nil {
				if err := r.Ready(); err != nil {
					return fmt.Errorf("%s: %w", nd.ID, err)
				}
			}
		}
		return nil
	})
}

// Apply proposes cmd through the current leader, retrying leader changes and
// unknown outcomes with the same request id, and fails the test on a raft error.
func (c *Cluster) Apply(tb testing.TB, cmd fsm.Command) fsm.Result {
	tb.Helper()
	if cmd.RequestID == "" {
		cmd.RequestID = raftnode.NewRequestID()
	}
	var res fsm.Result
	Eventually(tb, fmt.Sprintf("apply %T", cmd.Body), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		res, err = c.Leader(tb).Raft().Propose(ctx, cmd)
		return err
	})
	return res
}

// MustApply is Apply that also fails the test on a state machine rejection.
func (c *Cluster) MustApply(tb testing.TB, cmd fsm.Command) fsm.Result {
	tb.Helper()
	res := c.Apply(tb, cmd)
	if err := res.FirstError(); err != nil {
		tb.Fatalf("apply %T: %v", cmd.Body, err)
	}
	return res
}

// Kill stops node i abruptly (no leadership transfer).
func (c *Cluster) Kill(tb testing.TB, i int) {
	tb.Helper()
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.node == nil {
		return
	}
	c.stopAPI(n)
	if err := n.node.Kill(); err != nil {
		tb.Logf("kill %s: %v", n.ID, err)
	}
	n.node = nil
}

// serve starts the node's API on ln; n.mu must be held or n unpublished.
func (c *Cluster) serve(tb testing.TB, n *Node, ln net.Listener) {
	tb.Helper()
	cfg := *c.api
	if c.ctrl != nil {
		ccfg := *c.ctrl
		if ccfg.Logger == nil {
			ccfg.Logger = n.Cfg.Logger
		}
		ctrl, err := controller.New(n.node, ccfg)
		if err != nil {
			ln.Close()
			tb.Fatalf("%s: controller: %v", n.ID, err)
		}
		n.ctrl = ctrl
		cfg.Sessions, cfg.Planner = ctrl, ctrl
		cfg.SessionTTL, cfg.HeartbeatInterval = ccfg.SessionTTL, ccfg.HeartbeatInterval
	}
	srv, err := server.New(n.node, cfg)
	if err != nil {
		ln.Close()
		tb.Fatalf("%s: API server: %v", n.ID, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	n.api, n.httpSrv = srv, hs
}

// stopAPI stops the node's API server, if any; n.mu must be held.
func (c *Cluster) stopAPI(n *Node) {
	if n.ctrl != nil {
		n.ctrl.Close()
		n.ctrl = nil
	}
	if n.httpSrv == nil {
		return
	}
	n.api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.httpSrv.Shutdown(ctx)
	n.api, n.httpSrv = nil, nil
}

// Restart starts node i again on its data dir and address.
func (c *Cluster) Restart(tb testing.TB, i int) {
	tb.Helper()
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.node != nil {
		tb.Fatalf("restart %s: still running", n.ID)
	}
	var err error
	Eventually(tb, "restart "+n.ID, func() error {
		n.node, err = raftnode.New(n.Cfg)
		return err // the port may take a moment to be free again
	})
	if c.api != nil {
		var ln net.Listener
		Eventually(tb, "restart API of "+n.ID, func() error {
			ln, err = net.Listen("tcp", strings.TrimPrefix(n.URL, "http://"))
			return err
		})
		c.serve(tb, n, ln)
	}
}

// Stop shuts every running node down; it runs at cleanup.
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.mu.Lock()
			defer n.mu.Unlock()
			c.stopAPI(n)
			if n.node != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = n.node.Shutdown(ctx)
				n.node = nil
			}
		}()
	}
	wg.Wait()
}

// WaitApplied waits until every running node has applied index idx.
func (c *Cluster) WaitApplied(tb testing.TB, idx fsm.RaftIndex) {
	tb.Helper()
	for _, n := range c.Nodes {
		r := n.Raft()
		if r == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		_, err := r.WaitIndex(ctx, idx-1)
		cancel()
		if err != nil {
			tb.Fatalf("%s did not apply index %d: %v", n.ID, idx, err)
		}
	}
}

// EnsureSame waits until every running node holds the same state (byte-identical
// snapshot encoding) and the same audit log.
func (c *Cluster) EnsureSame(tb testing.TB) {
	tb.Helper()
	Eventually(tb, "identical replicas", func() error {
		var refState []byte
		var refAudit []fsm.Event
		var refID string
		for _, n := range c.Nodes {
			r := n.Raft()
			if r == nil {
				continue
			}
			var buf bytes.Buffer
			var err error
			if rerr := r.Read(context.Background(), raftnode.Stale, func(s *fsm.State) { err = s.WriteSnapshot(&buf) }); rerr != nil {
				return rerr
			}
			if err != nil {
				return err
			}
			evs, err := AllEvents(r.Audit())
			if err != nil {
				return err
			}
			if refID == "" {
				refState, refAudit, refID = buf.Bytes(), evs, n.ID
				continue
			}
			if !bytes.Equal(refState, buf.Bytes()) {
				return fmt.Errorf("state of %s differs from %s", n.ID, refID)
			}
			if !reflect.DeepEqual(refAudit, evs) {
				return fmt.Errorf("audit of %s (%d events) differs from %s (%d)", n.ID, len(evs), refID, len(refAudit))
			}
		}
		return nil
	})
}

// AllEvents reads a node's whole audit log in index order.
func AllEvents(l *audit.Log) ([]fsm.Event, error) {
	var out []fsm.Event
	q := audit.Query{Limit: 1000}
	for {
		p, err := l.Query(context.Background(), q)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Events...)
		if p.Next == nil {
			return out, nil
		}
		q.After = p.Next
	}
}

// Eventually retries f until it returns nil or Timeout passes, then fails the
// test with f's last error.
func Eventually(tb testing.TB, what string, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(Timeout)
	wait := 5 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// testWriter sends log lines to t.Log so they show only for failing tests.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
