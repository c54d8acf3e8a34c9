package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/controller"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/natstest"
	"github.com/batonhq/baton/internal/retry"
	"github.com/batonhq/baton/internal/testcluster"
)

// env is a complete Baton deployment in one test: an embedded JetStream server
// with one stream, a 3-node claim store with controllers and the HTTP API over
// loopback TCP, a client, and workers whose handlers record what they process.
type env struct {
	t    testing.TB
	nats *natstest.Server // nil on a cluster
	// jsc is the JetStream cluster the stream is replicated on, if any;
	// publishes then retry through elections.
	jsc     *natstest.Cluster
	prefix  string // the stream's subjects are <prefix>.>
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  string
	cluster *testcluster.Cluster
	client  *client.Client
	rec     *recorder
	parts   []fsm.PartitionID

	mu        sync.Mutex
	published map[fsm.PartitionID][]fsm.StreamSeq
	workers   map[fsm.WorkerID]*Applier
	cordons   int
}

func (e *env) cordoned() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cordons
}

// cordon drains a worker for maintenance through the API.
func (e *env) cordon(w fsm.WorkerID) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.client.Cordon(ctx, w, true); err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.cordons++
	e.mu.Unlock()
}

func controllerConfig() controller.Config {
	c := controller.DefaultConfig()
	c.SessionTTL = 1500 * time.Millisecond
	c.HeartbeatInterval = 250 * time.Millisecond
	c.StabilizationWindow = 150 * time.Millisecond
	c.DrainTimeout = 10 * time.Second
	c.Tick = 50 * time.Millisecond
	return c
}

func newEnv(t testing.TB, retention jetstream.RetentionPolicy, partitions int) *env {
	t.Helper()
	e := &env{t: t, stream: "ORDERS", prefix: "orders"}
	e.nats = natstest.Start(t)
	e.nc, e.js = natstest.Connect(t, e.nats.URL())
	natstest.CreateStream(t, e.js, e.stream, retention, "orders.>")
	e.declare(controllerConfig(), partitions)
	return e
}

// newClusterEnv is newEnv on a JetStream cluster: stream is replicated on
// every node of jsc, its subjects are <prefix>.>, and drains may take an
// election's time, so the drain deadline is longer than the single-server
// tests'.
func newClusterEnv(t testing.TB, jsc *natstest.Cluster, retention jetstream.RetentionPolicy, stream, prefix string, partitions int) *env {
	t.Helper()
	e := &env{t: t, stream: stream, prefix: prefix, jsc: jsc}
	e.nc, e.js = natstest.Connect(t, jsc.URL())
	jsc.CreateStream(t, e.js, stream, retention, prefix+".>")
	cc := controllerConfig()
	cc.DrainTimeout = 30 * time.Second
	e.declare(cc, partitions)
	return e
}

// declare starts the claim store and declares the partitions p00, p01, ...
// on subjects <prefix>.<partition>.>.
func (e *env) declare(cc controller.Config, partitions int) {
	t := e.t
	t.Helper()
	e.rec, e.published, e.workers = newRecorder(), map[fsm.PartitionID][]fsm.StreamSeq{}, map[fsm.WorkerID]*Applier{}
	e.cluster = testcluster.NewFull(t, 3, server.Config{}, cc)
	cl, err := client.New(e.cluster.URLs(), client.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	e.client = cl
	var specs []fsm.PartitionSpec
	for i := 0; i < partitions; i++ {
		id := fsm.PartitionID(fmt.Sprintf("p%02d", i))
		e.parts = append(e.parts, id)
		specs = append(specs, fsm.PartitionSpec{ID: id, Subjects: []string{e.prefix + "." + string(id) + ".>"}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Declare(ctx, specs); err != nil {
		t.Fatal(err)
	}
}

// startWorker starts an applier whose handler records every message.
func (e *env) startWorker(id fsm.WorkerID, opts ...Option) *Applier {
	e.t.Helper()
	return e.startWorkerWith(id, e.client, e.rec.handler(id), opts...)
}

// startWorkerWith starts an applier with its own coordinator and handler.
func (e *env) startWorkerWith(id fsm.WorkerID, coord Coordinator, h Handler, opts ...Option) *Applier {
	e.t.Helper()
	level := slog.LevelWarn
	if os.Getenv("BATON_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(tlog{e.t}, &slog.HandlerOptions{Level: level}))
	opts = append([]Option{WithLogger(logger), WithCheckpointInterval(100 * time.Millisecond), WithAckWait(2 * time.Second)}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := New(ctx, id, coord, e.js, e.stream, h, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.workers[id] = a
	e.mu.Unlock()
	e.t.Cleanup(func() { e.crash(id) })
	return a
}

// stopWorker closes a worker gracefully: it hands everything off first.
func (e *env) stopWorker(id fsm.WorkerID) {
	e.t.Helper()
	e.mu.Lock()
	a := e.workers[id]
	delete(e.workers, id)
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		e.t.Fatalf("close %s: %v", id, err)
	}
}

// crash stops a worker as a crash would: no leave, no drain, no cleanup; its
// session expires and its partitions fail over from their checkpoints.
func (e *env) crash(id fsm.WorkerID) {
	e.mu.Lock()
	a := e.workers[id]
	delete(e.workers, id)
	e.mu.Unlock()
	if a == nil {
		return
	}
	a.cancel()
	a.wg.Wait()
	a.metrics.unregister()
}

// publisher publishes round-robin over the partitions every interval until
// stopped, and remembers each message's stream sequence per partition. Stopping
// waits for the publish in progress: a publish cut off by a cancelled context
// may still have been stored, and the test would then see a message handled that
// it never recorded as published.
func (e *env) publisher(ctx context.Context, every time.Duration) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			e.publishOne(context.Background(), e.parts[i%len(e.parts)], i)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

func (e *env) publishOne(ctx context.Context, p fsm.PartitionID, i int) {
	subj := e.prefix + "." + string(p) + ".x"
	var ack *jetstream.PubAck
	var err error
	if e.jsc != nil {
		// A stream without a leader (an election after a node was killed)
		// refuses or drops publishes for seconds: retry with the same
		// message id, so that a retry of a publish that was stored after
		// all is stored once.
		id := fmt.Sprintf("%s-%d", e.stream, i)
		err = retry.Do(ctx, retry.Policy{Initial: 50 * time.Millisecond, Max: time.Second, Attempts: 60}, func(ctx context.Context) error {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			var err error
			ack, err = e.js.Publish(pctx, subj, []byte(fmt.Sprint(i)), jetstream.WithMsgID(id))
			return err
		})
	} else {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ack, err = e.js.Publish(pctx, subj, []byte(fmt.Sprint(i)))
		cancel()
	}
	if err != nil {
		e.t.Errorf("publish: %v", err)
		return
	}
	e.mu.Lock()
	e.published[p] = append(e.published[p], fsm.StreamSeq(ack.Sequence))
	e.mu.Unlock()
}

func (e *env) publishedCopy() map[fsm.PartitionID][]fsm.StreamSeq {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[fsm.PartitionID][]fsm.StreamSeq{}
	for p, s := range e.published {
		out[p] = slices.Clone(s)
	}
	return out
}

// waitHandled waits until every published message was handled at least once.
func (e *env) waitHandled() {
	e.t.Helper()
	pub := e.publishedCopy()
	testcluster.Eventually(e.t, "every published message handled", func() error {
		for p, seqs := range pub {
			got := e.rec.set(p)
			for _, s := range seqs {
				if !got[s] {
					return fmt.Errorf("partition %s: seq %d not handled (%d of %d)", p, s, len(got), len(seqs))
				}
			}
		}
		return nil
	})
}

// checkExactlyOnce asserts that, per partition, the handled sequences across
// every owner are exactly the published ones: no gap, no duplicate, in order.
func (e *env) checkExactlyOnce() {
	e.t.Helper()
	for p, want := range e.publishedCopy() {
		got := e.rec.seqs(p)
		if !slices.Equal(got, want) {
			e.t.Fatalf("partition %s: handled %s\npublished %s", p, describeDiff(got, want), short(want))
		}
	}
}

// checkAudit checks the invariants over the whole audit log of the leader.
func (e *env) checkAudit() []fsm.Event {
	e.t.Helper()
	evs, err := testcluster.AllEvents(e.cluster.Leader(e.t).Raft().Audit())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := fsm.NewHistoryChecker(false).CheckAll(evs); err != nil {
		e.t.Fatalf("audit log breaks an invariant: %v", err)
	}
	return evs
}

// waitSettled waits until exactly the workers the test runs are active, every
// partition is active with no handoff pending, and the controller's dry run
// plans no move.
func (e *env) waitSettled() {
	e.t.Helper()
	testcluster.Eventually(e.t, "placement settled", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.mu.Lock()
		want := len(e.workers)
		e.mu.Unlock()
		wl, err := e.client.Workers(ctx)
		if err != nil {
			return err
		}
		active := 0
		for _, w := range wl.Workers {
			if w.State == fsm.WorkerActive && !w.Cordoned {
				active++
			}
		}
		if active != want-e.cordoned() {
			return fmt.Errorf("%d active workers, want %d", active, want-e.cordoned())
		}
		plan, err := e.client.Plan(ctx)
		if err != nil {
			return err
		}
		if len(plan.Moves) > 0 {
			return fmt.Errorf("%d moves planned", len(plan.Moves))
		}
		for p, err := range e.client.AllPartitions(ctx) {
			if err != nil {
				return err
			}
			if p.Phase != fsm.PhaseActive || p.PendingHandoff != nil {
				return fmt.Errorf("partition %s is %s", p.ID, p.Phase)
			}
		}
		return nil
	})
}

func describeDiff(got, want []fsm.StreamSeq) string {
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at position %d: handled %d, published %d (handled %d, published %d messages)", i, got[i], want[i], len(got), len(want))
		}
	}
	return fmt.Sprintf("handled %d messages, published %d", len(got), len(want))
}

func short(s []fsm.StreamSeq) string {
	if len(s) > 20 {
		return fmt.Sprint(s[:10], "...", s[len(s)-10:])
	}
	return fmt.Sprint(s)
}

// recorder remembers, per partition, every handled message in handling order.
type recorder struct {
	mu      sync.Mutex
	handled map[fsm.PartitionID][]record
}

type record struct {
	seq    fsm.StreamSeq
	epoch  fsm.Epoch
	worker fsm.WorkerID
	at     time.Time // handler entry
	stored time.Time // the message's stream timestamp
}

// firstAt returns when the first message of p under epoch was handled.
func (r *recorder) firstAt(p fsm.PartitionID, e fsm.Epoch) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.handled[p] {
		if h.epoch == e {
			return h.at
		}
	}
	return time.Time{}
}

func newRecorder() *recorder { return &recorder{handled: map[fsm.PartitionID][]record{}} }

func (r *recorder) handler(w fsm.WorkerID) Handler {
	return r.working(w, 0)
}

// working is handler with work of the given duration per message, after the
// record is taken (at handler entry).
func (r *recorder) working(w fsm.WorkerID, work time.Duration) Handler {
	return func(ctx context.Context, m *Msg) error {
		r.mu.Lock()
		r.handled[m.Partition] = append(r.handled[m.Partition], record{seq: m.Seq, epoch: m.Epoch, worker: w, at: time.Now(), stored: m.Time})
		r.mu.Unlock()
		if work > 0 {
			time.Sleep(work)
		}
		return nil
	}
}

func (r *recorder) seqs(p fsm.PartitionID) []fsm.StreamSeq {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]fsm.StreamSeq, len(r.handled[p]))
	for i, h := range r.handled[p] {
		out[i] = h.seq
	}
	return out
}

func (r *recorder) records(p fsm.PartitionID) []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.handled[p])
}

func (r *recorder) set(p fsm.PartitionID) map[fsm.StreamSeq]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[fsm.StreamSeq]bool{}
	for _, h := range r.handled[p] {
		out[h.seq] = true
	}
	return out
}

type tlog struct{ t testing.TB }

func (l tlog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
