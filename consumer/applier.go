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
	"github.com/batonhq/baton/consumer/internal/core"
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
//
// Its state lives in a deterministic core (internal/core); one goroutine (the
// loop) feeds the core every input and hands its actions to executors that run
// beside it: the handler pool, the consumer manager (filter updates, the pull
// loop), catch-up reads, reports, and the session. None of them can hold the
// loop up, so a fence or a dispatch decision never waits on the network.
type Applier struct {
	worker    fsm.WorkerID
	coord     Coordinator
	js        jetstream.JetStream
	streamNm  string
	stream    jetstream.Stream
	reader    *streamReader
	retention jetstream.RetentionPolicy
	handler   Handler
	opts      options
	log       *slog.Logger
	metrics   *metrics

	// events carries every input but deliveries and handler results to the
	// loop; deliveries and results have their own channels (the hot path).
	events  chan event
	msgs    chan *core.Delivery
	results chan result
	jobs    chan *job
	filters *filterManager

	// lease is the core's lease deadline, published for the handler pool,
	// which checks it right before every handler call.
	lease atomic.Pointer[time.Time]
	// status is the core's state, published after every step for Health,
	// Ready and the other goroutines.
	status      atomic.Pointer[core.Status]
	consumerErr atomic.Pointer[error]

	started atomic.Bool
	closing chan struct{} // closed by Close: leave, then stop
	// janitorNow asks the janitor to look at once (buffer 1): a WorkQueue
	// cover refused as overlapping that the partitions' own cleans did
	// not fix.
	janitorNow chan struct{}
	emptyCh    chan struct{} // closed once the graceful leave is finished
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
}

// ErrStuck is reported (Health, Ready) while a partition has stayed in a
// transitional phase (covering, catching up, activating, draining, reporting)
// longer than WithStuckAfter; the step is being retried.
var ErrStuck = errors.New("consumer: partition stuck")

// event is an input for the core, run on the loop.
type event func(c *core.Core, now time.Time)

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
		events:  make(chan event, 64),
		msgs:    make(chan *core.Delivery, o.batch),
		results: make(chan result, o.concurrency),
		jobs:    make(chan *job, o.concurrency),
		closing: make(chan struct{}), emptyCh: make(chan struct{}), janitorNow: make(chan struct{}, 1),
	}
	a.metrics = newMetrics(o.registerer, string(worker))
	a.reader = newStreamReader(js, stream, info.Config.AllowDirect, o.catchupWindow, a.metrics.staleReads.Inc)
	a.status.Store(&core.Status{})
	a.lease.Store(&time.Time{})
	a.filters = newFilterManager(a)
	return a, nil
}

// coreConfig is the core's configuration from the options.
func (a *Applier) coreConfig() core.Config {
	ret := core.Limits
	switch a.retention {
	case jetstream.InterestPolicy:
		ret = core.Interest
	case jetstream.WorkQueuePolicy:
		ret = core.WorkQueue
	}
	return core.Config{
		Worker: a.worker, Retention: ret, Concurrency: a.opts.concurrency, MaxSubjects: a.opts.maxSubjects,
		ReadWindow: a.opts.catchupWindow, DrainTimeout: a.opts.drainTimeout, CheckpointEvery: a.opts.checkpointEvery,
		StuckAfter: a.opts.stuckAfter, RetryMin: 20 * time.Millisecond, RetryMax: time.Second,
		Check: a.checkTemplate,
	}
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
	a.spawn(ctx, a.loop)
	a.spawn(ctx, a.sessionLoop)
	a.spawn(ctx, a.watchLoop)
	a.spawn(ctx, a.filters.run)
	a.spawn(ctx, a.janitorLoop)
	for i := 0; i < a.opts.concurrency; i++ {
		a.spawn(ctx, a.runHandlers)
	}
	return nil
}

// spawn runs f on a goroutine that Close waits for.
func (a *Applier) spawn(ctx context.Context, f func(context.Context)) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f(ctx)
	}()
}

// post hands an input to the loop; false once the applier stops.
func (a *Applier) post(ctx context.Context, e event) bool {
	select {
	case a.events <- e:
		return true
	case <-ctx.Done():
		return false
	}
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

// Health returns nil while the applier works as it should: registered, its
// lease valid, its consumer in line with its assignment, no partition stuck.
// Otherwise it says why.
func (a *Applier) Health() error {
	s := a.status.Load()
	switch {
	case !s.Registered:
		return errors.New("consumer: not registered with the claim store")
	case s.Fenced || !time.Now().Before(s.Lease):
		return ErrFenced
	case s.Mismatch != nil:
		return fmt.Errorf("%w: %w", ErrWorkerMismatch, s.Mismatch)
	}
	if e := a.consumerErr.Load(); e != nil && *e != nil {
		return *e
	}
	switch {
	case errors.Is(s.FilterErr, core.ErrMaxSubjects):
		return fmt.Errorf("%w: %w", ErrMaxSubjects, s.FilterErr)
	case s.FilterErr != nil:
		return s.FilterErr
	case s.Refused != nil:
		return s.Refused
	case len(s.Stuck) > 0:
		st := s.Stuck[0]
		return fmt.Errorf("%w: %d partitions, first %s in %s at epoch %d", ErrStuck, len(s.Stuck), st.Partition, st.Phase, st.Epoch)
	}
	return nil
}

// Ready returns nil once the applier is healthy, has applied its latest
// assignment to the consumer, and no partition is still catching up.
func (a *Applier) Ready() error {
	if err := a.Health(); err != nil {
		return err
	}
	s := a.status.Load()
	switch {
	case !s.Reconciled:
		return errors.New("consumer: assignment not applied yet")
	case s.CatchingUp > 0:
		return fmt.Errorf("consumer: %d partitions catching up", s.CatchingUp)
	}
	return nil
}

// ConsumerName returns the durable consumer name of the current incarnation (""
// before registration).
func (a *Applier) ConsumerName() string {
	s := a.status.Load()
	if s.Inc == 0 {
		return ""
	}
	return consumerName(a.opts.prefix, a.worker, s.Inc)
}

// inc returns the current incarnation (0 before registration).
func (a *Applier) inc() fsm.Incarnation { return a.status.Load().Inc }
