package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
)

// Session is the part of the claim store client that keeps a worker's session.
type Session interface {
	Register(ctx context.Context, req api.RegisterRequest) (api.Registration, error)
	Heartbeat(ctx context.Context, worker fsm.WorkerID, inc fsm.Incarnation) (time.Duration, error)
	Leave(ctx context.Context, worker fsm.WorkerID, inc fsm.Incarnation) (api.WriteResponse, error)
}

// Watcher delivers a worker's assignment as blocking queries.
type Watcher interface {
	WatchAssignment(ctx context.Context, worker fsm.WorkerID, index fsm.RaftIndex, wait time.Duration) (fsm.Assignment, fsm.RaftIndex, error)
}

// Reporter sends a worker's drain, activation and checkpoint reports.
type Reporter interface {
	Drained(ctx context.Context, worker fsm.WorkerID, inc fsm.Incarnation, items []fsm.DrainItem) (api.WriteResponse, error)
	Activated(ctx context.Context, worker fsm.WorkerID, inc fsm.Incarnation, items []fsm.ActivateItem) (api.WriteResponse, error)
	Checkpoints(ctx context.Context, worker fsm.WorkerID, inc fsm.Incarnation, items []fsm.CheckpointItem) (api.WriteResponse, error)
}

// Coordinator is everything the applier needs from the claim store:
// *client.Client from api/client implements it.
type Coordinator interface {
	Session
	Watcher
	Reporter
}

// Applier keeps one worker's durable JetStream pull consumer in line with the
// partitions the claim store assigns it, and hands every partition's messages to
// the handler exactly once, in order, across handoffs. See the package doc and
// DESIGN.md.
type Applier struct {
	worker    fsm.WorkerID
	coord     Coordinator
	js        jetstream.JetStream
	streamNm  string
	stream    jetstream.Stream
	store     *storeReader
	retention jetstream.RetentionPolicy
	handler   Handler
	opts      options
	log       *slog.Logger
	metrics   *metrics

	sess   mailbox[sessionState]
	assign mailbox[fsm.Assignment]
	disp   *dispatcher

	// health is published by the reconciler and session loops for Health and
	// Ready; readers never wait on them.
	health atomic.Pointer[healthState]

	started   atomic.Bool
	closing   chan struct{} // closed by Close: leave, then stop
	emptyCh   chan struct{} // closed by the reconciler once nothing is owned or handed after leaving
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

type healthState struct {
	registered  bool
	inc         fsm.Incarnation
	fenced      bool
	reconciled  bool
	catchingUp  int
	err         error // the last terminal reconcile error, if still relevant
	consumerErr error
}

// New returns an applier for worker on stream, with an immutable handler. It
// checks its arguments and the stream (which must exist) but starts nothing:
// call Start.
func New(ctx context.Context, worker fsm.WorkerID, coord Coordinator, js jetstream.JetStream, stream string, handler Handler, opts ...Option) (*Applier, error) {
	switch {
	case !validWorkerID(worker):
		return nil, fmt.Errorf("%w: worker id %q (1 to 128 of A-Z a-z 0-9 . _ -)", ErrInvalidOption, worker)
	case coord == nil:
		return nil, fmt.Errorf("%w: nil coordinator", ErrInvalidOption)
	case js == nil:
		return nil, fmt.Errorf("%w: nil JetStream", ErrInvalidOption)
	case stream == "":
		return nil, fmt.Errorf("%w: empty stream name", ErrInvalidOption)
	case handler == nil:
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidOption)
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: nil option", ErrInvalidOption)
		}
		if err := opt.apply(&o); err != nil {
			return nil, err
		}
	}
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("consumer: stream %s: %w", stream, err)
	}
	info := st.CachedInfo()
	switch info.Config.Retention {
	case jetstream.LimitsPolicy, jetstream.InterestPolicy, jetstream.WorkQueuePolicy:
	default:
		return nil, fmt.Errorf("%w: %v", ErrStreamRetention, info.Config.Retention)
	}
	a := &Applier{
		worker: worker, coord: coord, js: js, streamNm: stream, stream: st, retention: info.Config.Retention,
		handler: handler, opts: o, log: o.logger.With("worker", string(worker)),
		sess: newMailbox[sessionState](), assign: newMailbox[fsm.Assignment](),
		closing: make(chan struct{}), emptyCh: make(chan struct{}),
	}
	a.metrics = newMetrics(o.registerer, string(worker))
	a.store = newStoreReader(js, stream, info.Config.AllowDirect, o.catchupWindow, a.metrics.staleReads.Inc)
	a.health.Store(&healthState{})
	a.disp = newDispatcher(a)
	return a, nil
}

func validWorkerID(w fsm.WorkerID) bool {
	if len(w) == 0 || len(w) > 128 {
		return false
	}
	for _, c := range []byte(w) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return w[0] != '.' && w[len(w)-1] != '.'
}

// Start registers the worker's session and starts following its assignment. The
// JetStream consumer is created lazily, at the first assignment that gives the
// worker something. Start returns at once; Close stops everything.
func (a *Applier) Start() error {
	if !a.started.CompareAndSwap(false, true) {
		return errors.New("consumer: already started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	run := func(f func(context.Context)) {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			f(ctx)
		}()
	}
	run(a.sessionLoop)
	run(a.watchLoop)
	run(a.disp.run)
	for i := 0; i < a.opts.concurrency; i++ {
		run(func(ctx context.Context) { a.runWorker(ctx, a.disp.work, a.disp.done) })
	}
	run(a.reconcileLoop)
	return nil
}

// Close hands every partition off before it returns: it starts a graceful
// leave, keeps draining what the controller moves away, waits (bounded by ctx)
// until the worker owns nothing and no next owner still needs its coverage,
// deletes its consumer, and stops. With ctx expired it stops anyway; what it
// still owned is then failed over from the last checkpoint. Idempotent.
func (a *Applier) Close(ctx context.Context) error {
	if !a.started.Load() {
		return ErrNotStarted
	}
	a.closeOnce.Do(func() {
		close(a.closing)
		select {
		case <-a.emptyCh:
		case <-ctx.Done():
			a.closeErr = fmt.Errorf("consumer: close before every partition was handed off: %w", ctx.Err())
		}
		a.cancel()
		a.wg.Wait()
		a.metrics.unregister()
	})
	return a.closeErr
}

// Health returns nil while the applier works as it should: registered, not
// fenced, its consumer in line with its assignment. Otherwise it says why.
func (a *Applier) Health() error {
	h := a.health.Load()
	switch {
	case !h.registered:
		return errors.New("consumer: not registered with the claim store")
	case h.fenced:
		return ErrFenced
	case h.consumerErr != nil:
		return h.consumerErr
	case h.err != nil:
		return h.err
	}
	return nil
}

// Ready returns nil once the applier is healthy, has applied its latest
// assignment to the consumer, and no partition is still catching up.
func (a *Applier) Ready() error {
	if err := a.Health(); err != nil {
		return err
	}
	h := a.health.Load()
	switch {
	case !h.reconciled:
		return errors.New("consumer: assignment not applied yet")
	case h.catchingUp > 0:
		return fmt.Errorf("consumer: %d partitions catching up", h.catchingUp)
	}
	return nil
}

// ConsumerName returns the durable consumer name of the current incarnation (""
// before registration).
func (a *Applier) ConsumerName() string {
	h := a.health.Load()
	if h.inc == 0 {
		return ""
	}
	return consumerName(a.opts.prefix, a.worker, h.inc)
}

// setHealth updates the published health with f applied to a copy.
func (a *Applier) setHealth(f func(*healthState)) {
	for {
		old := a.health.Load()
		h := *old
		f(&h)
		if a.health.CompareAndSwap(old, &h) {
			return
		}
	}
}

// mailbox holds the latest value of something and signals its arrival; older
// values are overwritten (coalescing). A leaf type: its mutex guards v and has.
type mailbox[T any] struct {
	mu  *sync.Mutex
	v   *T
	sig chan struct{}
}

func newMailbox[T any]() mailbox[T] {
	return mailbox[T]{mu: &sync.Mutex{}, v: new(T), sig: make(chan struct{}, 1)}
}

func (m mailbox[T]) put(v T) {
	m.mu.Lock()
	*m.v = v
	m.mu.Unlock()
	select {
	case m.sig <- struct{}{}:
	default:
	}
}

func (m mailbox[T]) get() T {
	m.mu.Lock()
	defer m.mu.Unlock()
	return *m.v
}
