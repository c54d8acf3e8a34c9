package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/consumer"
	"github.com/batonhq/baton/fsm"
)

const demoHelp = `
Runs Baton end to end with no set-up: an embedded nats-server with JetStream
(--nats-cluster 3: a 3-server JetStream cluster, the stream replicated R3), a
3-node claim store over loopback TCP (raft, controller and HTTP API on each),
partitions, a producer publishing to random partitions, and workers whose
handlers record every message. Then it plays a scenario, narrating each step and
showing the handoffs live from the audit log:

  1. scale out: a worker joins; partitions rebalance with graceful handoffs
  2. drain: a worker is cordoned for maintenance; its partitions move away
  3. move: an operator moves one partition by hand
  4. crash: a worker dies without a word; once its session expires its
     partitions are force-committed elsewhere from their last checkpoints

At the end it stops the producer, waits until every message was handled, and
prints one line: produced, processed, lost, duplicated and reordered messages.
Duplicates the crash explains (after a forced commit's resume point, within the
checkpoint window) are counted separately. The exit status is 0 when nothing was
lost, duplicated or reordered. Everything lives in a temporary directory that is
removed at the end; Ctrl-C stops the demo cleanly.`

type demoFlags struct {
	partitions, workers, rate int
	natsCluster               int
	duration                  time.Duration
	retention                 string
	keep                      bool
	logs                      logFlags
}

func runDemo(args []string) error {
	f := newFlags("demo", "baton demo [--partitions 8] [--workers 3] [--rate 500] [--duration 40s] [--retention limits|interest|workqueue] [--nats-cluster 3]", demoHelp, 0, 0)
	var o demoFlags
	f.intVar(&o.partitions, "partitions", 8, 1, 1000, "partitions to declare")
	f.intVar(&o.workers, "workers", 3, 2, 50, "workers at the start; the scenario adds one")
	f.intVar(&o.rate, "rate", 500, 1, 20000, "messages published per second")
	f.durationVar(&o.duration, "duration", 40*time.Second, 10*time.Second, noMax, "how long the producer publishes while the scenario plays")
	f.StringVar(&o.retention, "retention", "limits", "stream retention: limits, interest or workqueue")
	f.intVar(&o.natsCluster, "nats-cluster", 1, 1, 5, "nats-servers: 1, or a JetStream cluster whose stream is replicated on every server")
	f.BoolVar(&o.keep, "keep", false, "keep the temporary directory (data, logs) at the end")
	o.logs.register(f, "error")
	if _, err := f.parse(args); err != nil {
		return err
	}
	retention, err := parseRetention(o.retention)
	if err != nil {
		return err
	}
	base, err := o.logs.logger(os.Stderr)
	if err != nil {
		return err
	}
	muted := new(atomic.Bool)
	log := slog.New(mutableHandler{base.Handler(), muted})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{o: o, retention: retention, out: os.Stdout, log: log, start: time.Now(), rec: newRecorder(), workers: map[fsm.WorkerID]*demoWorker{}}
	err = d.run(ctx)
	muted.Store(true) // tearing down makes raft and workers complain, as expected
	d.cleanup()
	if ctx.Err() != nil {
		fmt.Fprintln(d.out, "interrupted")
		return &exitError{code: 130}
	}
	return err
}

type demo struct {
	o         demoFlags
	retention jetstream.RetentionPolicy
	out       io.Writer
	log       *slog.Logger
	start     time.Time
	tmp       string

	ns      []*natsserver.Server
	natsURL string // every server's client URL, comma-separated
	nc      *nats.Conn
	js      jetstream.JetStream
	nodes   []*node
	cl      *client.Client
	parts   []fsm.PartitionID
	rec     *recorder
	prod    *producer
	follow  context.CancelFunc
	followW sync.WaitGroup

	mu      sync.Mutex // guards workers and crashed: the audit printer reads them
	workers map[fsm.WorkerID]*demoWorker
	crashed []*demoWorker
}

const demoStream = "ORDERS"

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%5.1fs] %s\n", time.Since(d.start).Seconds(), termSafe(fmt.Sprintf(format, args...)))
}

func (d *demo) step(format string, args ...any) {
	d.say("▶ "+format, args...)
}

func (d *demo) run(ctx context.Context) error {
	var err error
	if d.tmp, err = os.MkdirTemp("", "baton-demo-"); err != nil {
		return err
	}
	if err := d.setup(ctx); err != nil {
		return err
	}
	if err := d.scenario(ctx); err != nil {
		return err
	}
	return d.finish(ctx)
}

// setup starts JetStream, the claim store, the workers and the producer.
func (d *demo) setup(ctx context.Context) error {
	var err error
	if d.ns, d.natsURL, err = startNATS(d.tmp+"/nats", d.o.natsCluster); err != nil {
		return err
	}
	if d.nc, d.js, err = natsConnect(d.natsURL, "baton demo producer"); err != nil {
		return err
	}
	if _, err := d.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: demoStream, Subjects: []string{"orders.>"}, Retention: d.retention,
		Storage: jetstream.FileStorage, AllowDirect: true, Replicas: d.o.natsCluster,
	}); err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	if d.o.natsCluster > 1 {
		d.step("JetStream cluster of %d servers at %s: stream %s (subjects orders.>, %s retention, R%d)", d.o.natsCluster, d.natsURL, demoStream, d.o.retention, d.o.natsCluster)
	} else {
		d.step("JetStream at %s: stream %s (subjects orders.>, %s retention)", d.natsURL, demoStream, d.o.retention)
	}

	var join []string
	for i := 1; i <= 3; i++ {
		n, err := startNode(demoNodeConfig(d.tmp, i, join, d.log))
		if err != nil {
			return fmt.Errorf("start node n%d: %w", i, err)
		}
		d.nodes = append(d.nodes, n)
		if i == 1 {
			join = []string{n.url}
		}
	}
	var urls []string
	for _, n := range d.nodes {
		urls = append(urls, n.url)
	}
	if d.cl, err = client.New(urls, client.WithTimeout(5*time.Second)); err != nil {
		return err
	}
	if err := d.waitFor(ctx, 30*time.Second, "3 ready claim-store nodes", d.clusterReady); err != nil {
		return err
	}
	st, _ := d.cl.Status(ctx)
	d.step("claim store: 3 raft nodes over loopback TCP, leader %s (%s)", st.LeaderID, strings.Join(urls, " "))

	specs := make([]fsm.PartitionSpec, d.o.partitions)
	width := len(fmt.Sprint(d.o.partitions - 1))
	for i := range specs {
		id := fsm.PartitionID(fmt.Sprintf("p%0*d", width, i))
		subj, err := consumer.Subject("orders.{{.Partition}}.>", id)
		if err != nil {
			return err
		}
		specs[i] = fsm.PartitionSpec{ID: id, Subjects: []string{subj}}
		d.parts = append(d.parts, id)
	}
	if _, err := d.cl.Declare(ctx, specs); err != nil {
		return fmt.Errorf("declare partitions: %w", err)
	}
	d.step("declared %d partitions %s .. %s (subjects orders.<partition>.>)", len(specs), specs[0].ID, specs[len(specs)-1].ID)

	d.startFollow()
	for i := 1; i <= d.o.workers; i++ {
		if err := d.addWorker(ctx, fsm.WorkerID(fmt.Sprintf("w%d", i))); err != nil {
			return err
		}
	}
	d.step("started workers w1..w%d; waiting until every partition is claimed and active", d.o.workers)
	if err := d.waitFor(ctx, 30*time.Second, "every partition active", d.settled); err != nil {
		return err
	}
	d.prod = startProducer(d.js, d.parts, d.o.rate)
	d.step("producer: %d msg/s to random partitions for %s", d.o.rate, d.o.duration)
	return nil
}

func (d *demo) addWorker(ctx context.Context, id fsm.WorkerID) error {
	var urls []string
	for _, n := range d.nodes {
		urls = append(urls, n.url)
	}
	w, err := startDemoWorker(ctx, id, d.natsURL, urls, demoStream, d.rec, d.log)
	if err != nil {
		return fmt.Errorf("start worker %s: %w", id, err)
	}
	d.mu.Lock()
	d.workers[id] = w
	d.mu.Unlock()
	return nil
}

// scenario plays the steps at fixed fractions of the duration.
func (d *demo) scenario(ctx context.Context) error {
	t0 := time.Now()
	at := func(frac float64) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(t0.Add(time.Duration(frac * float64(d.o.duration))))):
			return nil
		}
	}
	added := fsm.WorkerID(fmt.Sprintf("w%d", d.o.workers+1))
	if err := at(0.1); err != nil {
		return err
	}
	d.step("scale out: worker %s joins; the controller rebalances with graceful handoffs", added)
	if err := d.addWorker(ctx, added); err != nil {
		return err
	}

	if err := at(0.3); err != nil {
		return err
	}
	d.step("drain: cordon w2 for maintenance (baton drain w2); its partitions move away")
	if _, err := d.cl.Cordon(ctx, "w2", true); err != nil {
		return fmt.Errorf("cordon w2: %w", err)
	}

	if err := at(0.5); err != nil {
		return err
	}
	if err := d.moveOne(ctx); err != nil {
		return err
	}

	if err := at(0.65); err != nil {
		return err
	}
	d.mu.Lock()
	victim := d.workers["w3"]
	delete(d.workers, "w3")
	d.crashed = append(d.crashed, victim)
	d.mu.Unlock()
	d.step("crash: w3 dies (connections dropped, no leave, no drain); its session expires in 2s")
	victim.crash()

	if err := at(1); err != nil {
		return err
	}
	return nil
}

// moveOne moves the first partition owned by a worker in service to another
// one, as an operator would with 'baton move'.
func (d *demo) moveOne(ctx context.Context) error {
	var ps []fsm.PartitionInfo
	for p, err := range d.cl.AllPartitions(ctx) {
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if p.Phase != fsm.PhaseActive || p.Owner == "w2" || p.Owner == "w3" {
			continue
		}
		to := fsm.WorkerID("w1")
		if p.Owner == to {
			to = fsm.WorkerID(fmt.Sprintf("w%d", d.o.workers+1))
		}
		d.step("move: baton move %s --to %s (operator's graceful handoff)", p.ID, to)
		if _, err := d.cl.Move(ctx, p.ID, api.MoveRequest{To: to, Reason: "demo"}); err != nil {
			d.say("  move refused: %v", err)
		}
		return nil
	}
	d.say("  no partition is active right now; skipping the move")
	return nil
}

// clusterReady: three members, each node ready.
func (d *demo) clusterReady(ctx context.Context) error {
	for _, n := range d.nodes {
		if err := n.raft.Ready(); err != nil {
			return err
		}
	}
	st, err := d.cl.Status(ctx)
	if err != nil {
		return err
	}
	if len(st.Members) != 3 {
		return fmt.Errorf("%d members", len(st.Members))
	}
	return nil
}

// settled: every partition active, no handoff pending.
func (d *demo) settled(ctx context.Context) error {
	for p, err := range d.cl.AllPartitions(ctx) {
		if err != nil {
			return err
		}
		if p.Phase != fsm.PhaseActive || p.PendingHandoff != nil {
			return fmt.Errorf("partition %s is %s", p.ID, p.Phase)
		}
	}
	return nil
}

// waitFor polls cond until it holds, ctx ends or timeout passes.
func (d *demo) waitFor(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := cond(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cleanup stops everything the demo started, in reverse order, bounded.
func (d *demo) cleanup() {
	if d.prod != nil {
		d.prod.halt()
	}
	d.stopFollow()
	d.mu.Lock()
	workers := make([]*demoWorker, 0, len(d.workers))
	for _, w := range d.workers {
		workers = append(workers, w)
	}
	crashed := slices.Clone(d.crashed)
	d.mu.Unlock()
	sort.Slice(workers, func(i, j int) bool { return workers[i].id < workers[j].id })
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = w.close(ctx) // the demo is over: what is not handed off in time is dropped
		}()
	}
	for _, w := range crashed {
		wg.Add(1)
		go func() { defer wg.Done(); w.reap() }()
	}
	wg.Wait()
	if d.cl != nil {
		d.cl.Close()
	}
	for _, n := range d.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = n.shutdown(ctx)
		}()
	}
	wg.Wait()
	if d.nc != nil {
		d.nc.Close()
	}
	for _, ns := range d.ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns.Shutdown()
			ns.WaitForShutdown()
		}()
	}
	wg.Wait()
	if d.tmp != "" {
		if d.o.keep {
			fmt.Fprintf(d.out, "kept %s\n", d.tmp)
		} else if err := os.RemoveAll(d.tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "baton demo: remove %s: %v\n", d.tmp, err)
		}
	}
}
