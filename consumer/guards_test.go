package consumer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/consumer/internal/core"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// hookCoord is the real client with faults a test can switch on.
type hookCoord struct {
	*client.Client
	failHeartbeats atomic.Bool
	otherWorker    fsm.WorkerID
	// registered, if set, sees every registration before the applier.
	registered func(api.Registration)
}

func (h *hookCoord) Register(ctx context.Context, req api.RegisterRequest) (api.Registration, error) {
	r, err := h.Client.Register(ctx, req)
	if err == nil && h.registered != nil {
		h.registered(r)
	}
	return r, err
}

func (h *hookCoord) Heartbeat(ctx context.Context, w fsm.WorkerID, inc fsm.Incarnation) (time.Duration, error) {
	if h.failHeartbeats.Load() {
		return 0, errors.New("injected: heartbeat lost")
	}
	return h.Client.Heartbeat(ctx, w, inc)
}

func (h *hookCoord) WatchAssignment(ctx context.Context, w fsm.WorkerID, idx fsm.RaftIndex, wait time.Duration) (fsm.Assignment, fsm.RaftIndex, error) {
	a, i, err := h.Client.WatchAssignment(ctx, w, idx, wait)
	if h.otherWorker != "" {
		a.Worker = h.otherWorker
	}
	return a, i, err
}

func (e *env) consumerInfo(name string) (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, e.stream)
	if err != nil {
		return nil, err
	}
	c, err := st.Consumer(ctx, name)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

func TestGuard_MaxSubjects(t *testing.T) {
	e := newEnv(t, jetstream.LimitsPolicy, 4)
	a := e.startWorker("w1", WithMaxSubjects(2))
	testcluster.Eventually(t, "the guard reports", func() error {
		if err := a.Health(); !errors.Is(err, ErrMaxSubjects) {
			return fmt.Errorf("health %v", err)
		}
		return nil
	})
	// Nothing was applied: the consumer was never created with 4 subjects.
	if _, err := e.consumerInfo(a.ConsumerName()); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("consumer exists despite the guard: %v", err)
	}
}

func TestGuard_AssignmentForAnotherWorker(t *testing.T) {
	e := newEnv(t, jetstream.LimitsPolicy, 2)
	a := e.startWorkerWith("w1", &hookCoord{Client: e.client, otherWorker: "w9"}, e.rec.handler("w1"))
	testcluster.Eventually(t, "the guard reports", func() error {
		if err := a.Health(); !errors.Is(err, ErrWorkerMismatch) {
			return fmt.Errorf("health %v", err)
		}
		return nil
	})
}

func TestGuard_SubjectTemplate(t *testing.T) {
	e := newEnv(t, jetstream.LimitsPolicy, 2)
	a := e.startWorker("w1", WithSubjectTemplate("billing.{{.Partition}}.>"))
	testcluster.Eventually(t, "the guard reports", func() error {
		if err := a.Health(); !errors.Is(err, ErrTemplateMismatch) {
			return fmt.Errorf("health %v", err)
		}
		return nil
	})
	// A refused partition stays with the worker that refuses it (the
	// controller cannot move what never activated) until the worker goes.
	e.crash("w1")
	ok := e.startWorker("w2", WithSubjectTemplate("orders.{{.Partition}}.>"))
	e.waitSettled()
	if err := ok.Health(); err != nil {
		t.Fatalf("matching template refused: %v", err)
	}
}

// TestEmptyAssignment: a worker that loses every partition never sends an
// empty filter (the whole stream): on a Limits stream it pauses its consumer by
// default or deletes it by option; on a WorkQueue stream it deletes it, since a
// stale filter would block the subjects' next owner.
func TestEmptyAssignment(t *testing.T) {
	tests := []struct {
		name       string
		retention  jetstream.RetentionPolicy
		opts       []Option
		wantPaused bool // else deleted
	}{
		{"limits pauses", jetstream.LimitsPolicy, nil, true},
		{"limits deletes by option", jetstream.LimitsPolicy, []Option{WithEmptyAssignment(EmptyDelete)}, false},
		{"workqueue deletes", jetstream.WorkQueuePolicy, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.retention, 3)
			a := e.startWorker("w1", tt.opts...)
			e.waitSettled()
			name := a.ConsumerName()
			if _, err := e.consumerInfo(name); err != nil {
				t.Fatal(err)
			}
			e.startWorker("w2")
			e.cordon("w1")
			e.waitSettled()
			testcluster.Eventually(t, "consumer paused or deleted", func() error {
				info, err := e.consumerInfo(name)
				switch {
				case tt.wantPaused && err == nil && info.Paused:
					if len(info.Config.FilterSubjects) == 0 {
						return errors.New("paused with an empty filter")
					}
					return nil
				case !tt.wantPaused && errors.Is(err, jetstream.ErrConsumerNotFound):
					return nil
				}
				return fmt.Errorf("consumer: %v (err %v)", info, err)
			})
		})
	}
}

// TestCoalescing: filter requests that complete no handoff wait for the
// coalescing window and become one consumer update, while an urgent one — a
// handoff waits on it — is applied at once, taking the waiting ones with it.
func TestCoalescing(t *testing.T) {
	e := newEnv(t, jetstream.LimitsPolicy, 3)
	reg := prometheus.NewRegistry()
	a := e.startWorker("w1", WithCoalesce(time.Hour), WithRegisterer(reg))
	e.waitSettled()
	applied := func() float64 {
		return testutil.ToFloat64(a.metrics.updates.WithLabelValues("success")) + testutil.ToFloat64(a.metrics.updates.WithLabelValues("noop"))
	}
	info, err := e.consumerInfo(a.ConsumerName())
	if err != nil {
		t.Fatal(err)
	}
	same := core.SetFilter{Version: 1, Inc: a.inc(), Subjects: info.Config.FilterSubjects}
	before := applied()
	for i := 0; i < 50; i++ {
		a.filters.want(same) // within the (hour-long) window of the last update
	}
	urgent := same
	urgent.Urgent = true
	a.filters.want(urgent)
	testcluster.Eventually(t, "the urgent request applied within the window", func() error {
		if applied() == before {
			return errors.New("not applied yet")
		}
		return nil
	})
	// Let a wrongly applied extra update show up before counting.
	a.filters.want(urgent)
	testcluster.Eventually(t, "a second urgent request applied", func() error {
		if n := applied() - before; n < 2 {
			return fmt.Errorf("%v updates", n)
		}
		return nil
	})
	if n := applied() - before; n != 2 {
		t.Fatalf("51 requests then 1 urgent one gave %v consumer updates within the window, want 2", n)
	}
}

// TestRetryAndDeadLetter: a failing handler is retried in place (the
// partition's later messages wait); one that never succeeds goes to the
// dead-letter callback, and the partition moves on in order.
func TestRetryAndDeadLetter(t *testing.T) {
	e := newEnv(t, jetstream.WorkQueuePolicy, 1)
	var mu sync.Mutex
	attempts := map[fsm.StreamSeq]int{}
	var order []fsm.StreamSeq
	var dead []fsm.StreamSeq
	h := func(ctx context.Context, m *Msg) error {
		mu.Lock()
		defer mu.Unlock()
		attempts[m.Seq]++
		switch string(m.Data) {
		case "flaky":
			if m.Attempt < 3 {
				return errors.New("try again")
			}
		case "poison":
			return errors.New("never")
		}
		order = append(order, m.Seq)
		return nil
	}
	dl := func(ctx context.Context, m *Msg, err error) {
		mu.Lock()
		defer mu.Unlock()
		dead = append(dead, m.Seq)
	}
	e.startWorkerWith("w1", e.client, h, WithRetry(3, time.Millisecond, 5*time.Millisecond), WithDeadLetter(dl))
	e.waitSettled()
	ctx := context.Background()
	var seqs []fsm.StreamSeq
	for _, body := range []string{"a", "flaky", "b", "poison", "c"} {
		ack, err := e.js.Publish(ctx, "orders.p00.x", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, fsm.StreamSeq(ack.Sequence))
	}
	testcluster.Eventually(t, "all handled", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(order) < 4 {
			return fmt.Errorf("%d handled", len(order))
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	want := []fsm.StreamSeq{seqs[0], seqs[1], seqs[2], seqs[4]}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("handled %v, want %v in order", order, want)
	}
	if attempts[seqs[1]] != 3 || attempts[seqs[3]] != 4 {
		t.Fatalf("attempts flaky=%d poison=%d, want 3 and 4", attempts[seqs[1]], attempts[seqs[3]])
	}
	if fmt.Sprint(dead) != fmt.Sprint([]fsm.StreamSeq{seqs[3]}) {
		t.Fatalf("dead letters %v", dead)
	}
}

// TestSelfFencing: a worker that cannot renew its session stops dispatching
// before the leader expires it; its partitions fail over; nothing is lost.
func TestSelfFencing(t *testing.T) {
	e := newEnv(t, jetstream.LimitsPolicy, 4)
	hc := &hookCoord{Client: e.client}
	a := e.startWorkerWith("w1", hc, e.rec.handler("w1"))
	e.startWorker("w2")
	e.waitSettled()
	stop := e.publisher(context.Background(), 3*time.Millisecond)
	defer stop()
	hc.failHeartbeats.Store(true)
	testcluster.Eventually(t, "w1 fences itself", func() error {
		if err := a.Health(); !errors.Is(err, ErrFenced) {
			return fmt.Errorf("health %v", err)
		}
		return nil
	})
	handled := func() int {
		n := 0
		for _, p := range e.parts {
			for _, r := range e.rec.records(p) {
				if r.worker == "w1" {
					n++
				}
			}
		}
		return n
	}
	atFence := handled()
	// The leader expires w1's session and fails its partitions over to w2.
	testcluster.Eventually(t, "w1's partitions owned by w2", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for p, err := range e.client.AllPartitions(ctx) {
			if err != nil {
				return err
			}
			if p.Owner != "w2" || p.Phase != fsm.PhaseActive {
				return fmt.Errorf("%s owned by %s (%s)", p.ID, p.Owner, p.Phase)
			}
		}
		return nil
	})
	if n := handled(); n != atFence {
		t.Fatalf("fenced worker handled %d more messages", n-atFence)
	}
	stop()
	e.waitHandled()
}

// TestSelfFencing_ConsumerNotMadeAgainWhileFenced: a fenced worker whose
// consumer is deleted (by the next owner's clean, once its session has
// expired) does not make it again with its old subjects: on a WorkQueue
// stream that would refuse the next owner's cover, on Interest it would
// keep messages nobody reads. Once its session is renewed it makes the
// consumer again (or a new incarnation makes its own) and goes on.
func TestSelfFencing_ConsumerNotMadeAgainWhileFenced(t *testing.T) {
	e := newEnv(t, jetstream.WorkQueuePolicy, 4)
	hc := &hookCoord{Client: e.client}
	a := e.startWorkerWith("w1", hc, e.rec.handler("w1"))
	e.waitSettled()
	stop := e.publisher(context.Background(), 5*time.Millisecond)
	defer stop()
	var name string
	for _, n := range e.consumerNames(t) {
		if strings.Contains(n, "_w1_") {
			name = n
		}
	}
	hc.failHeartbeats.Store(true)
	testcluster.Eventually(t, "w1 fences itself", func() error {
		if err := a.Health(); !errors.Is(err, ErrFenced) {
			return fmt.Errorf("health %v", err)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	defer cancel()
	if err := e.js.DeleteConsumer(ctx, e.stream, name); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, "w1 refuses to make its consumer again while fenced", func() error {
		if s := a.status.Load(); !errors.Is(s.FilterErr, errFencedNoCreate) {
			return fmt.Errorf("filter error %v", s.FilterErr)
		}
		return nil
	})
	if _, err := e.consumerInfo(name); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("consumer %s while w1 is fenced: %v", name, err)
	}
	// Back in touch: renewed (the consumer is made again) or, if the
	// session expired meanwhile, a new incarnation with its own consumer.
	hc.failHeartbeats.Store(false)
	e.waitSettled()
	stop()
	e.waitHandled()
}

// TestCreateOfUnknownOutcome_ConsumerTaken: a create that the server applied
// but whose answer was lost leaves a consumer that a second create cannot
// match (its start sequence cannot be updated, 10012). The applier then
// looks for it and takes it as it is, instead of failing every attempt.
// The consumer is made here, as that lost create would have, between the
// registration and the worker's first create.
func TestCreateOfUnknownOutcome_ConsumerTaken(t *testing.T) {
	e := newEnv(t, jetstream.LimitsPolicy, 4)
	hc := &hookCoord{Client: e.client}
	hc.registered = func(r api.Registration) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := e.js.CreateConsumer(ctx, e.stream, jetstream.ConsumerConfig{
			Durable: consumerName("baton", r.Worker, r.Incarnation), FilterSubjects: []string{e.prefix + ".p00.>"},
			AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: 1,
		})
		if err != nil {
			t.Errorf("the lost create's consumer: %v", err)
		}
	}
	// Messages first, so that the stream's end (where a create starts the
	// consumer) is past where the lost create started it.
	for i := range 8 {
		e.publishOne(context.Background(), e.parts[i%len(e.parts)], i)
	}
	e.startWorkerWith("w1", hc, e.rec.handler("w1"))
	e.waitSettled()
	for i := 8; i < 40; i++ {
		e.publishOne(context.Background(), e.parts[i%len(e.parts)], i)
	}
	e.waitHandled()
	e.checkExactlyOnce()
}
