package natstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/internal/faultnet"
)

// A JetStream cluster in one test process: n nats-servers on loopback, each
// with its own store directory, routed to each other through fault proxies so
// that a node can be cut off (Isolate) or killed without the goodbye a clean
// shutdown sends (Kill).
//
// Every route goes through a faultnet.Proxy per directed pair of nodes: node
// i's configured routes are the proxies i→j, and each node advertises a sink
// address that refuses routes, so gossip never makes a node dial another one
// directly behind the proxies' back. Cutting the proxies of a node is then a
// network failure of that node and nothing else: its clients keep their
// connections to it.

// Account is the account every helper looks streams and consumers up in: the
// servers have no accounts configured, so clients use the global account.
const Account = "$G"

const (
	// clusterTimeout bounds a cluster-wide wait: an election after a kill
	// takes the servers' election timeout (4 to 9 s in nats-server 2.15)
	// plus a restart's recovery, slow under -race on two cores.
	clusterTimeout = 60 * time.Second
)

// Cluster is a JetStream cluster of n embedded nats-servers owned by one
// test. Its methods are safe for concurrent use.
type Cluster struct {
	tb    testing.TB
	cfg   config
	name  string
	nodes []*Node
	// routes[i][j] carries node i's route to node j (nil on the diagonal).
	routes [][]*faultnet.Proxy
	sink   net.Listener
	sinkWG sync.WaitGroup
}

// Node is one server of a Cluster. Its server may be stopped and started
// again on the same ports and store directory.
type Node struct {
	c   *Cluster
	idx int
	log *tbLogger

	mu   sync.Mutex // guards opts and ns
	opts *server.Options
	ns   *server.Server // nil while stopped
}

// StartCluster starts an n-node JetStream cluster on 127.0.0.1 and waits for
// its meta leader and for every node to be current. Everything is shut down
// in a tb.Cleanup. Client ports and the proxies' ports are random; the
// servers' own route ports are picked free just before the start.
func StartCluster(tb testing.TB, n int, opts ...Option) *Cluster {
	tb.Helper()
	if n < 1 {
		tb.Fatalf("natstest: cluster of %d nodes", n)
	}
	c := &Cluster{tb: tb, name: "natstest"}
	for _, o := range opts {
		o(&c.cfg)
	}
	tb.Cleanup(c.shutdown)

	// The sink: what every node advertises as its route address.
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("natstest: sink listen: %v", err)
	}
	c.sink = sink
	c.sinkWG.Add(1)
	go func() {
		defer c.sinkWG.Done()
		for {
			conn, err := sink.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()

	ports := freePorts(tb, n)
	c.routes = make([][]*faultnet.Proxy, n)
	for i := range n {
		c.routes[i] = make([]*faultnet.Proxy, n)
		for j := range n {
			if i == j {
				continue
			}
			p, err := faultnet.NewProxy(net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[j])))
			if err != nil {
				tb.Fatalf("natstest: route proxy %d→%d: %v", i, j, err)
			}
			c.routes[i][j] = p
		}
	}
	for i := range n {
		nd := &Node{c: c, idx: i}
		if c.cfg.logs {
			nd.log = &tbLogger{tb: tb, prefix: nd.Name() + " "}
		}
		var routes []*url.URL
		for j := range n {
			if j != i {
				routes = append(routes, &url.URL{Scheme: "nats-route", Host: c.routes[i][j].Addr()})
			}
		}
		nd.opts = &server.Options{
			ServerName: nd.Name(),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   tb.TempDir(),
			NoSigs:     true,
			NoLog:      !c.cfg.logs,
			Debug:      c.cfg.debug,
			Trace:      c.cfg.trace,
			Cluster: server.ClusterOpts{
				Name:      c.name,
				Host:      "127.0.0.1",
				Port:      ports[i],
				Advertise: sink.Addr().String(),
			},
			Routes: routes,
		}
		c.nodes = append(c.nodes, nd)
	}
	// All nodes start together: a node waits for its peers before it
	// takes part in the meta group.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, nd := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = nd.boot()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatalf("natstest: start cluster: %v", err)
	}
	for _, nd := range c.nodes {
		nd.pinClientPort()
	}
	c.WaitMetaLeader(tb)
	c.WaitCurrent(tb)
	return c
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// Route ports must be known before any server starts (every node's routes
// name its peers), so they cannot be left to the server to choose.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("natstest: pick a free port: %v", err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// Name is the node's server name (n1, n2, ...), as JetStream reports it in
// cluster info and accepts in placement requests.
func (nd *Node) Name() string { return "n" + strconv.Itoa(nd.idx+1) }

// String returns the node's name.
func (nd *Node) String() string { return nd.Name() }

// URL is the node's client URL; it does not change across restarts.
func (nd *Node) URL() string {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return "nats://" + net.JoinHostPort(nd.opts.Host, strconv.Itoa(nd.opts.Port))
}

// Server returns the node's running server, nil while it is stopped.
func (nd *Node) Server() *server.Server {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.ns
}

// Running reports whether the node's server is running.
func (nd *Node) Running() bool {
	ns := nd.Server()
	return ns != nil && ns.Running()
}

func (nd *Node) boot() error {
	nd.mu.Lock()
	opts := nd.opts.Clone()
	nd.mu.Unlock()
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("%s: new server: %w", nd.Name(), err)
	}
	if nd.log != nil {
		ns.SetLogger(nd.log, nd.c.cfg.debug, nd.c.cfg.trace)
	}
	nd.mu.Lock()
	nd.ns = ns
	nd.mu.Unlock()
	ns.Start()
	if !ns.ReadyForConnections(readyTimeout) {
		return fmt.Errorf("%s: not ready for connections within %v", nd.Name(), readyTimeout)
	}
	return nil
}

// pinClientPort keeps the client port the first start chose, so that a
// restarted node comes back where clients look for it.
func (nd *Node) pinClientPort() {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if addr, ok := nd.ns.Addr().(*net.TCPAddr); ok {
		nd.opts.Port = addr.Port
	}
}

// Nodes returns the cluster's nodes in order.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Node returns node i (0-based).
func (c *Cluster) Node(i int) *Node { return c.nodes[i] }

// URL returns every node's client URL, comma-separated, as nats.Connect takes
// them: a client fails over to another node when its own stops.
func (c *Cluster) URL() string {
	urls := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		urls[i] = nd.URL()
	}
	return strings.Join(urls, ",")
}

// Stop shuts node nd down cleanly, as SIGTERM does: nats-server first steps
// down every raft group it leads, so its streams and consumers get new
// leaders at once. Its clients reconnect to the other nodes.
func (c *Cluster) Stop(tb testing.TB, nd *Node) {
	tb.Helper()
	nd.shutdown()
}

// Kill stops node nd the way a crash or a power cut does: its routes are cut
// first, so the step-downs a clean shutdown sends never arrive and the other
// nodes elect new leaders only after their election timeout. Its clients are
// disconnected and reconnect to the other nodes.
func (c *Cluster) Kill(tb testing.TB, nd *Node) {
	tb.Helper()
	c.cut(nd)
	nd.shutdown()
}

// Isolate cuts node nd's routes while it keeps running and keeps its
// clients: a network partition with nd alone on one side.
func (c *Cluster) Isolate(tb testing.TB, nd *Node) {
	tb.Helper()
	c.cut(nd)
}

// Heal restores node nd's routes after Isolate.
func (c *Cluster) Heal(tb testing.TB, nd *Node) {
	tb.Helper()
	c.heal(nd)
}

func (c *Cluster) cut(nd *Node) {
	for j := range c.nodes {
		if j != nd.idx {
			c.routes[nd.idx][j].Cut()
			c.routes[j][nd.idx].Cut()
		}
	}
}

func (c *Cluster) heal(nd *Node) {
	for j := range c.nodes {
		if j != nd.idx {
			c.routes[nd.idx][j].Heal()
			c.routes[j][nd.idx].Heal()
		}
	}
}

// Restart starts a stopped or killed node again on the same ports and store
// directory, restores its routes, and waits until it is current with the
// meta group and with every stream it replicates.
func (c *Cluster) Restart(tb testing.TB, nd *Node) {
	tb.Helper()
	nd.shutdown()
	c.heal(nd)
	if err := nd.boot(); err != nil {
		tb.Fatalf("natstest: restart: %v", err)
	}
	c.WaitCurrent(tb)
}

func (nd *Node) shutdown() {
	nd.mu.Lock()
	ns := nd.ns
	nd.mu.Unlock()
	if ns == nil {
		return
	}
	ns.Shutdown()
	ns.WaitForShutdown()
}

// shutdown stops every node, the proxies and the sink, then silences the
// loggers (a server may log while it shuts down, and testing panics on a
// log after the test ended).
func (c *Cluster) shutdown() {
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); nd.shutdown() }()
	}
	wg.Wait()
	for _, row := range c.routes {
		for _, p := range row {
			if p != nil {
				p.Close()
			}
		}
	}
	if c.sink != nil {
		c.sink.Close()
		c.sinkWG.Wait()
	}
	for _, nd := range c.nodes {
		if nd.log != nil {
			nd.log.close()
		}
	}
}

// Running returns the nodes whose server runs.
func (c *Cluster) Running() []*Node {
	var out []*Node
	for _, nd := range c.nodes {
		if nd.Running() {
			out = append(out, nd)
		}
	}
	return out
}

// waitFor polls cond until it returns nil or clusterTimeout passes.
func waitFor(tb testing.TB, what string, cond func() error) {
	tb.Helper()
	end := time.Now().Add(clusterTimeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(end) {
			tb.Fatalf("natstest: %s: not within %v: %v", what, clusterTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// MetaLeader returns the node leading the JetStream meta group, nil if none
// does right now.
func (c *Cluster) MetaLeader() *Node {
	for _, nd := range c.Running() {
		if nd.Server().JetStreamIsLeader() {
			return nd
		}
	}
	return nil
}

// WaitMetaLeader waits until the meta group has a leader and returns it.
func (c *Cluster) WaitMetaLeader(tb testing.TB) *Node {
	tb.Helper()
	var l *Node
	waitFor(tb, "a JetStream meta leader", func() error {
		if l = c.MetaLeader(); l == nil {
			return errors.New("no meta leader")
		}
		return nil
	})
	return l
}

// WaitCurrent waits until every running node is current with the meta
// group, every stream and every consumer has a leader, each stream's leader
// sees every replica on a running node current with no lag (a restarted node
// has caught up), and each consumer's leader sees them online.
func (c *Cluster) WaitCurrent(tb testing.TB) {
	tb.Helper()
	waitFor(tb, "every node current", c.current)
}

func (c *Cluster) current() error {
	if c.MetaLeader() == nil {
		return errors.New("no meta leader")
	}
	running := map[string]bool{}
	for _, nd := range c.Running() {
		running[nd.Name()] = true
	}
	groups := map[string]bool{} // stream and consumer names seen on any node
	led := map[string]bool{}    // ... and those whose leader answered
	for _, nd := range c.Running() {
		ns := nd.Server()
		if !ns.JetStreamIsCurrent() {
			return fmt.Errorf("%s: not current with the meta group", nd)
		}
		info, err := ns.Jsz(&server.JSzOptions{Accounts: true, Streams: true, Consumer: true})
		if err != nil {
			return fmt.Errorf("%s: jsz: %w", nd, err)
		}
		for _, acc := range info.AccountDetails {
			if acc.Name != Account {
				continue
			}
			for _, st := range acc.Streams {
				groups[st.Name] = true
				if err := replicasCurrent(nd, "stream "+st.Name, st.Cluster, running, true); err != nil {
					return err
				} else if st.Cluster != nil && st.Cluster.Leader == nd.Name() {
					led[st.Name] = true
				}
				for _, ci := range st.Consumer {
					name := st.Name + " > " + ci.Name
					groups[name] = true
					if err := replicasCurrent(nd, "consumer "+name, ci.Cluster, running, false); err != nil {
						return err
					} else if ci.Cluster != nil && ci.Cluster.Leader == nd.Name() {
						led[name] = true
					}
				}
			}
		}
	}
	for g := range groups {
		if !led[g] {
			return fmt.Errorf("%s has no leader", g)
		}
	}
	return nil
}

// replicasCurrent checks, on the group's leader only, that every replica on
// a running node is online and, if caughtUp, current with no lag. A
// consumer's replicas are only required online: an idle consumer group was
// seen to report a healthy replica one entry behind for a minute.
func replicasCurrent(nd *Node, what string, ci *server.ClusterInfo, running map[string]bool, caughtUp bool) error {
	if ci == nil || ci.Leader != nd.Name() {
		return nil
	}
	for _, r := range ci.Replicas {
		if running[r.Name] && (r.Offline || caughtUp && (!r.Current || r.Lag > 0)) {
			return fmt.Errorf("%s: replica %s current=%v offline=%v lag=%d", what, r.Name, r.Current, r.Offline, r.Lag)
		}
	}
	return nil
}

// CreateStream creates a file-backed stream replicated on every node
// (R = cluster size, at most 5) with AllowDirect, like CreateStream, and waits
// for its leader and for every replica to be current.
func (c *Cluster) CreateStream(tb testing.TB, js jetstream.JetStream, name string, retention jetstream.RetentionPolicy, subjects ...string) jetstream.Stream {
	tb.Helper()
	var st jetstream.Stream
	waitFor(tb, "create stream "+name, func() error {
		// Each attempt is bounded on its own: a request lost in an
		// election is asked again.
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		defer cancel()
		var err error
		st, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name: name, Subjects: subjects, Retention: retention,
			Storage: jetstream.FileStorage, AllowDirect: true,
			Replicas: min(len(c.nodes), 5),
		})
		return err
	})
	c.StreamLeader(tb, name)
	c.WaitCurrent(tb)
	return st
}

// StreamLeader waits until stream has a leader and returns it.
func (c *Cluster) StreamLeader(tb testing.TB, stream string) *Node {
	tb.Helper()
	var l *Node
	waitFor(tb, "a leader for stream "+stream, func() error {
		for _, nd := range c.Running() {
			if nd.Server().JetStreamIsStreamLeader(Account, stream) {
				l = nd
				return nil
			}
		}
		return errors.New("no stream leader")
	})
	return l
}

// LeaderNow returns the node leading the stream (consumer "") or the
// stream's consumer right now, nil if none does.
func (c *Cluster) LeaderNow(stream, consumer string) *Node {
	for _, nd := range c.Running() {
		ns := nd.Server()
		if consumer == "" && ns.JetStreamIsStreamLeader(Account, stream) ||
			consumer != "" && ns.JetStreamIsConsumerLeader(Account, stream, consumer) {
			return nd
		}
	}
	return nil
}

// ConsumerLeader waits until the consumer has a leader and returns it.
func (c *Cluster) ConsumerLeader(tb testing.TB, stream, consumer string) *Node {
	tb.Helper()
	var l *Node
	waitFor(tb, "a leader for consumer "+stream+" > "+consumer, func() error {
		for _, nd := range c.Running() {
			if nd.Server().JetStreamIsConsumerLeader(Account, stream, consumer) {
				l = nd
				return nil
			}
		}
		return errors.New("no consumer leader")
	})
	return l
}

// Others returns the nodes other than those given, in order.
func (c *Cluster) Others(not ...*Node) []*Node {
	var out []*Node
next:
	for _, nd := range c.nodes {
		for _, x := range not {
			if nd == x {
				continue next
			}
		}
		out = append(out, nd)
	}
	return out
}

// stepdownRequest is the body of a leader step-down request with a preferred
// successor (nats-server ≥ 2.11).
type stepdownRequest struct {
	Placement struct {
		Preferred string `json:"preferred"`
	} `json:"placement"`
}

// MoveStreamLeader makes node to the stream's leader through the step-down
// API with to as the preferred successor, and waits until it is.
func (c *Cluster) MoveStreamLeader(tb testing.TB, nc *nats.Conn, stream string, to *Node) {
	tb.Helper()
	c.moveLeader(tb, nc, "STREAM.LEADER.STEPDOWN."+stream, to, func() *Node { return c.StreamLeader(tb, stream) })
}

// MoveConsumerLeader makes node to the consumer's leader, as MoveStreamLeader
// does for a stream.
func (c *Cluster) MoveConsumerLeader(tb testing.TB, nc *nats.Conn, stream, consumer string, to *Node) {
	tb.Helper()
	c.moveLeader(tb, nc, "CONSUMER.LEADER.STEPDOWN."+stream+"."+consumer, to, func() *Node { return c.ConsumerLeader(tb, stream, consumer) })
}

func (c *Cluster) moveLeader(tb testing.TB, nc *nats.Conn, op string, to *Node, leader func() *Node) {
	tb.Helper()
	var req stepdownRequest
	req.Placement.Preferred = to.Name()
	body, err := json.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	waitFor(tb, "leader of "+op+" moved to "+to.Name(), func() error {
		l := leader()
		if l == to {
			return nil
		}
		reply, err := nc.Request(jetstream.DefaultAPIPrefix+op, body, apiTimeout)
		if err != nil {
			return fmt.Errorf("step down (leader %s): %w", l, err)
		}
		var resp struct {
			Error *jetstream.APIError `json:"error"`
		}
		if err := json.Unmarshal(reply.Data, &resp); err != nil {
			return err
		}
		if resp.Error != nil {
			// The preferred node may not be current yet; ask again.
			return fmt.Errorf("step down (leader %s): %w", l, resp.Error)
		}
		// Ask again only once the old leader has handed over.
		if nl := leader(); nl != to {
			return fmt.Errorf("leader moved from %s to %s, not to %s", l, nl, to)
		}
		return nil
	})
}
