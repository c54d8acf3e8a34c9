package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/consumer"
	"github.com/batonhq/baton/controller"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/delivery"
	"github.com/batonhq/baton/raftnode"
)

// startNATS runs n embedded nats-servers with JetStream on random loopback
// ports, storing under dir: one server, or with n > 1 a JetStream cluster
// whose servers route to each other. It returns the servers and the client
// URLs, comma-separated, once the cluster has a JetStream meta leader and
// every server is current with it.
func startNATS(dir string, n int) ([]*natsserver.Server, string, error) {
	if n == 1 {
		ns, err := bootNATS(&natsserver.Options{
			ServerName: "baton-demo", Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: dir,
			NoSigs: true, NoLog: true, // the demo owns signals and the terminal
		})
		if err != nil {
			return nil, "", err
		}
		return []*natsserver.Server{ns}, ns.ClientURL(), nil
	}
	// Every server's routes name its peers, so the route ports are picked
	// before any server starts.
	ports, err := freePorts(n)
	if err != nil {
		return nil, "", err
	}
	servers := make([]*natsserver.Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		var routes []*url.URL
		for j, p := range ports {
			if j != i {
				routes = append(routes, &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))})
			}
		}
		opts := &natsserver.Options{
			ServerName: fmt.Sprintf("nats-%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: filepath.Join(dir, fmt.Sprintf("nats-%d", i+1)),
			NoSigs: true, NoLog: true,
			Cluster: natsserver.ClusterOpts{Name: "baton-demo", Host: "127.0.0.1", Port: ports[i]},
			Routes:  routes,
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = bootNATS(opts)
		}()
	}
	wg.Wait()
	stop := func() {
		for _, ns := range servers {
			if ns != nil {
				ns.Shutdown()
				ns.WaitForShutdown()
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		stop()
		return nil, "", err
	}
	urls := make([]string, n)
	for i, ns := range servers {
		urls[i] = ns.ClientURL()
	}
	deadline := time.Now().Add(60 * time.Second)
	for !jetStreamClusterReady(servers) {
		if time.Now().After(deadline) {
			stop()
			return nil, "", errors.New("nats-server cluster: no JetStream meta leader within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return servers, strings.Join(urls, ","), nil
}

// bootNATS starts one server and waits until it takes connections.
func bootNATS(opts *natsserver.Options) (*natsserver.Server, error) {
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("nats-server %s: not ready for connections within 20s", opts.ServerName)
	}
	return ns, nil
}

// jetStreamClusterReady: one server leads the meta group and every server is
// current with it.
func jetStreamClusterReady(servers []*natsserver.Server) bool {
	leader := false
	for _, ns := range servers {
		if !ns.JetStreamIsCurrent() {
			return false
		}
		leader = leader || ns.JetStreamIsLeader()
	}
	return leader
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
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
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

func natsConnect(url, name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", url, err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(10*time.Second))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func parseRetention(s string) (jetstream.RetentionPolicy, error) {
	switch s {
	case "limits":
		return jetstream.LimitsPolicy, nil
	case "interest":
		return jetstream.InterestPolicy, nil
	case "workqueue":
		return jetstream.WorkQueuePolicy, nil
	}
	return 0, usageErrorf("--retention %q: want limits, interest or workqueue", s)
}

// demoNodeConfig is a claim-store node tuned for a demo on one machine: fast
// elections, short sessions, a short stabilization window.
func demoNodeConfig(dir string, i int, join []string, log *slog.Logger) nodeConfig {
	id := fmt.Sprintf("n%d", i)
	rc := raftnode.DefaultConfig()
	rc.NodeID, rc.DataDir, rc.RaftAddr, rc.Bootstrap = id, filepath.Join(dir, id), "127.0.0.1:0", i == 1
	rc.HeartbeatTimeout, rc.ElectionTimeout = 500*time.Millisecond, 500*time.Millisecond
	rc.LeaderLeaseTimeout, rc.CommitTimeout = 250*time.Millisecond, 5*time.Millisecond
	cc := controller.DefaultConfig()
	cc.SessionTTL, cc.HeartbeatInterval = 2*time.Second, 500*time.Millisecond
	cc.StabilizationWindow, cc.DrainTimeout, cc.Tick = time.Second, 10*time.Second, 100*time.Millisecond
	return nodeConfig{
		Raft: rc, Controller: cc, API: server.Config{DrainTimeout: cc.DrainTimeout},
		HTTPAddr: "127.0.0.1:0", Join: join, Logger: log,
	}
}

// recorder remembers every handled message in handling order.
type recorder struct {
	mu       sync.Mutex
	handled  map[fsm.PartitionID][]delivery.Record
	byWorker map[fsm.WorkerID]int
}

func newRecorder() *recorder {
	return &recorder{handled: map[fsm.PartitionID][]delivery.Record{}, byWorker: map[fsm.WorkerID]int{}}
}

func (r *recorder) add(w fsm.WorkerID, m *consumer.Msg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handled[m.Partition] = append(r.handled[m.Partition], delivery.Record{Partition: m.Partition, Seq: m.Seq, Epoch: m.Epoch, Worker: w})
	r.byWorker[w]++
}

func (r *recorder) snapshot() (map[fsm.PartitionID][]delivery.Record, map[fsm.WorkerID]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[fsm.PartitionID][]delivery.Record, len(r.handled))
	for p, recs := range r.handled {
		out[p] = append([]delivery.Record(nil), recs...)
	}
	byWorker := make(map[fsm.WorkerID]int, len(r.byWorker))
	for w, n := range r.byWorker {
		byWorker[w] = n
	}
	return out, byWorker
}

// missing counts published messages not handled yet.
func (r *recorder) missing(published map[fsm.PartitionID][]fsm.StreamSeq) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for p, seqs := range published {
		seen := make(map[fsm.StreamSeq]bool, len(r.handled[p]))
		for _, h := range r.handled[p] {
			seen[h.Seq] = true
		}
		for _, s := range seqs {
			if !seen[s] {
				n++
			}
		}
	}
	return n
}

// producer publishes to random partitions at a fixed rate and remembers each
// message's stream sequence.
type producer struct {
	js     jetstream.JetStream
	parts  []fsm.PartitionID
	rate   int
	stop   chan struct{}
	done   chan struct{}
	errors atomic.Int64

	mu        sync.Mutex // guards published
	published map[fsm.PartitionID][]fsm.StreamSeq
}

func startProducer(js jetstream.JetStream, parts []fsm.PartitionID, rate int) *producer {
	p := &producer{js: js, parts: parts, rate: rate, stop: make(chan struct{}), done: make(chan struct{}), published: map[fsm.PartitionID][]fsm.StreamSeq{}}
	go p.run()
	return p
}

func (p *producer) run() {
	defer close(p.done)
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	sent := 0
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			due := int(now.Sub(start).Seconds() * float64(p.rate))
			for ; sent < due; sent++ {
				select {
				case <-p.stop:
					return
				default:
				}
				p.publish(sent)
			}
		}
	}
}

// publish sends message i, retrying with the same message id so that a retry
// after a lost acknowledgement is stored once.
func (p *producer) publish(i int) {
	part := p.parts[rand.N(len(p.parts))]
	subj := "orders." + string(part) + ".created"
	id := fmt.Sprintf("demo-%d", i)
	for attempt := 0; attempt < 10; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ack, err := p.js.Publish(ctx, subj, []byte(fmt.Sprintf(`{"order":%d}`, i)), jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			p.mu.Lock()
			p.published[part] = append(p.published[part], fsm.StreamSeq(ack.Sequence))
			p.mu.Unlock()
			return
		}
		p.errors.Add(1)
		time.Sleep(50 * time.Millisecond)
	}
}

// halt stops publishing and waits for the last publish to finish.
func (p *producer) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

func (p *producer) snapshot() map[fsm.PartitionID][]fsm.StreamSeq {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[fsm.PartitionID][]fsm.StreamSeq, len(p.published))
	for k, v := range p.published {
		out[k] = append([]fsm.StreamSeq(nil), v...)
	}
	return out
}

func (p *producer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.published {
		n += len(v)
	}
	return n
}

// demoWorker is an in-process worker with its own NATS connection and its own
// HTTP connections to the claim store, so that it can crash: crash drops all of
// them at once and makes its handler stop processing, as a killed process would.
type demoWorker struct {
	id    fsm.WorkerID
	nc    *nats.Conn
	cl    *client.Client
	conns *killSwitch
	a     *consumer.Applier
	dead  atomic.Bool
}

func startDemoWorker(ctx context.Context, id fsm.WorkerID, natsURL string, addrs []string, stream string, rec *recorder, log *slog.Logger) (*demoWorker, error) {
	w := &demoWorker{id: id, conns: &killSwitch{conns: map[net.Conn]struct{}{}}}
	nc, js, err := natsConnect(natsURL, "baton demo "+string(id))
	if err != nil {
		return nil, err
	}
	w.nc = nc
	hc := &http.Client{Transport: &http.Transport{DialContext: w.conns.dial, MaxIdleConnsPerHost: 8}}
	w.cl, err = client.New(addrs, client.WithHTTPClient(hc), client.WithTimeout(5*time.Second))
	if err != nil {
		nc.Close()
		return nil, err
	}
	handler := func(ctx context.Context, m *consumer.Msg) error {
		if w.dead.Load() {
			// A dead process processes nothing: hold the message until the
			// applier gives up on it.
			<-ctx.Done()
			return ctx.Err()
		}
		rec.add(id, m)
		return nil
	}
	w.a, err = consumer.New(ctx, id, w.cl, js, stream, handler,
		consumer.WithLogger(log.With("worker", string(id))), consumer.WithCheckpointInterval(500*time.Millisecond))
	if err != nil {
		nc.Close()
		return nil, err
	}
	if err := w.a.Start(); err != nil {
		nc.Close()
		return nil, err
	}
	return w, nil
}

// close hands the worker's partitions off (bounded by ctx) and disconnects.
func (w *demoWorker) close(ctx context.Context) error {
	err := w.a.Close(ctx)
	w.nc.Close()
	w.cl.Close()
	return err
}

// crash stops the worker the way SIGKILL would stop a process: no leave, no
// drain, no last checkpoint. Its connections drop at once; its session expires
// after the TTL and its partitions fail over from their checkpoints.
func (w *demoWorker) crash() {
	w.dead.Store(true)
	w.conns.kill()
	w.nc.Close()
}

// reap stops a crashed worker's goroutines (they only retry into closed
// connections by now).
func (w *demoWorker) reap() {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = w.a.Close(ctx)
	w.cl.Close()
}

var errCrashed = errors.New("demo: worker crashed")

// killSwitch dials a worker's HTTP connections and can drop them all at once.
// A leaf type: mu guards conns and dead, used by the HTTP transport's dialing
// goroutines and by kill.
type killSwitch struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	dead  bool
}

func (k *killSwitch) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	k.mu.Lock()
	dead := k.dead
	k.mu.Unlock()
	if dead {
		return nil, errCrashed
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.dead {
		c.Close()
		return nil, errCrashed
	}
	k.conns[c] = struct{}{}
	return &trackedConn{Conn: c, k: k}, nil
}

func (k *killSwitch) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dead = true
	for c := range k.conns {
		c.Close()
	}
	clear(k.conns)
}

type trackedConn struct {
	net.Conn
	k    *killSwitch
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.k.mu.Lock()
		delete(c.k.conns, c.Conn)
		c.k.mu.Unlock()
	})
	return c.Conn.Close()
}
