package consumer

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/fsm"
)

// The dispatcher owns every partition's delivery state: which messages have been
// handed to a handler, which are processed, which arrive from the consumer while
// a catch-up read is still filling the gap behind the consumer's cursor. It does
// no I/O: deliveries come from the pull loop and the catch-up readers, handlers
// run on the worker pool, and decisions that need I/O go to the reconciler as
// events.

// delivery is one message of a partition, from the consumer or a catch-up read.
type delivery struct {
	seq     fsm.StreamSeq
	subject string
	header  nats.Header
	data    []byte
	time    time.Time
	// msg is the consumer delivery to ack; nil for a catch-up read.
	msg jetstream.Msg
	// credit is released when a catch-up read leaves the pipeline, so that a
	// reader never runs more than its window ahead of the handlers.
	credit chan struct{}
}

func (d *delivery) release() {
	if d.credit != nil {
		select {
		case <-d.credit:
		default:
		}
		d.credit = nil
	}
}

type mode uint8

const (
	// catchingUp: a reader fills the gap after the resume point; consumer
	// deliveries wait in held.
	catchingUp mode = 1 + iota
	// live: consumer deliveries are processed directly.
	live
	// draining: nothing new is dispatched; the in-flight handler finishes.
	draining
	// stopped: the partition is not ours to process (handed off, lost,
	// drained); its deliveries are left alone.
	stopped
)

// part is one partition's delivery state.
type part struct {
	id       fsm.PartitionID
	epoch    fsm.Epoch
	gen      uint64 // bumped at every (re)start: stale reader and job results are ignored
	subjects []string
	mode     mode
	// lastDispatched is the highest sequence queued or handed to a handler;
	// processed the highest whose handler finished. Both start at the resume
	// point; processing is in order, so everything up to processed is done.
	lastDispatched fsm.StreamSeq
	processed      fsm.StreamSeq
	queue          []*delivery
	held           []*delivery // ascending, consumer deliveries during catch-up
	// busyGen is the generation of the job running for the partition (0:
	// none). A restart does not clear it: handlers of one partition never
	// overlap, even when an old, cancelled one is slow to return.
	busyGen      uint64
	cancelJob    context.CancelFunc
	cancelReader context.CancelFunc
	// activation: report caughtUp once processed reaches activateAt.
	wantCaughtUp bool
	activateAt   fsm.StreamSeq
	catchupDone  bool
	// restartPending: a restart waits for the running job to end, so that
	// the catch-up starts after everything that job processed.
	restartPending bool
	catchupStart   time.Time
	drainStart     time.Time
}

// partEvent tells the reconciler a partition reached a point that needs a
// report.
type partEvent struct {
	kind    eventKind
	part    fsm.PartitionID
	epoch   fsm.Epoch
	gen     uint64
	through fsm.StreamSeq
	took    time.Duration
}

type eventKind uint8

const (
	evCaughtUp eventKind = 1 + iota
	evDrained
)

// job is one message given to a handler worker.
type job struct {
	part   fsm.PartitionID
	gen    uint64
	epoch  fsm.Epoch
	d      *delivery
	ctx    context.Context
	cancel context.CancelFunc
}

type jobResult struct {
	part      fsm.PartitionID
	gen       uint64
	epoch     fsm.Epoch
	seq       fsm.StreamSeq
	processed bool
}

type catchupMsg struct {
	part fsm.PartitionID
	gen  uint64
	d    *delivery
	eof  bool
	err  error
}

// ctrlReq is a call from the reconciler; reply gets the answer (buffer 1).
type ctrlReq struct {
	op       ctrlOp
	part     fsm.PartitionID
	epoch    fsm.Epoch
	subjects []string
	resume   fsm.StreamSeq
	report   bool
	reply    chan ctrlReply
}

type ctrlOp uint8

const (
	opStart ctrlOp = 1 + iota
	opResume
	opDrain
	opCancelInflight
	opStop
	opForget
	opFence
	opUnfence
	opProgress
	opRestartAll
)

type ctrlReply struct {
	progress []progress
}

// progress is one partition's processed position, for checkpoints and drains.
type progress struct {
	part      fsm.PartitionID
	epoch     fsm.Epoch
	processed fsm.StreamSeq
	mode      mode
}

type dispatcher struct {
	a   *Applier
	ctx context.Context // the run loop's, for readers started from results

	parts   map[fsm.PartitionID]*part
	match   *fsm.SubjectIndex
	nextGen uint64
	fenced  bool
	ready   []fsm.PartitionID
	pending *job // built and waiting for a free worker

	in       chan jetstream.Msg
	catchups chan catchupMsg
	done     chan jobResult
	ctrl     chan ctrlReq
	work     chan *job
	events   chan partEvent
	queued   []partEvent
}

func newDispatcher(a *Applier) *dispatcher {
	return &dispatcher{
		a: a, parts: make(map[fsm.PartitionID]*part), match: fsm.NewSubjectIndex(),
		// in: one pull batch; catchups: the readers' windows are bounded by
		// credits, this only decouples them; done/work: one per worker.
		in:       make(chan jetstream.Msg, a.opts.batch),
		catchups: make(chan catchupMsg, 64),
		done:     make(chan jobResult, a.opts.concurrency),
		ctrl:     make(chan ctrlReq),
		work:     make(chan *job),
		events:   make(chan partEvent, 1),
	}
}

// call sends a control request and waits for its reply.
func (d *dispatcher) call(ctx context.Context, r ctrlReq) (ctrlReply, error) {
	r.reply = make(chan ctrlReply, 1)
	select {
	case d.ctrl <- r:
	case <-ctx.Done():
		return ctrlReply{}, ctx.Err()
	}
	select {
	case rep := <-r.reply:
		return rep, nil
	case <-ctx.Done():
		return ctrlReply{}, ctx.Err()
	}
}

// run is the dispatcher's loop; it owns every field of d.
func (d *dispatcher) run(ctx context.Context) {
	d.ctx = ctx
	defer func() {
		for _, p := range d.parts {
			d.halt(p)
		}
	}()
	for {
		var work chan *job
		if d.pending == nil {
			d.pending = d.nextJob(ctx)
		}
		if d.pending != nil {
			work = d.work
		}
		var events chan partEvent
		var ev partEvent
		if len(d.queued) > 0 {
			events, ev = d.events, d.queued[0]
		}
		select {
		case <-ctx.Done():
			return
		case m := <-d.in:
			d.onDelivery(m)
		case c := <-d.catchups:
			d.onCatchup(ctx, c)
		case r := <-d.done:
			d.onDone(r)
		case req := <-d.ctrl:
			req.reply <- d.onCtrl(ctx, req)
		case work <- d.pending:
			d.pending = nil
		case events <- ev:
			d.queued = d.queued[1:]
		}
	}
}

// nextJob takes the next message of the first ready partition.
func (d *dispatcher) nextJob(ctx context.Context) *job {
	if d.fenced {
		return nil
	}
	for len(d.ready) > 0 {
		id := d.ready[0]
		d.ready = d.ready[1:]
		p := d.parts[id]
		if p == nil || p.busyGen != 0 || len(p.queue) == 0 || (p.mode != live && p.mode != catchingUp) {
			continue
		}
		dl := p.queue[0]
		p.queue = p.queue[1:]
		jctx, cancel := context.WithCancel(ctx)
		p.busyGen, p.cancelJob = p.gen, cancel
		return &job{part: p.id, gen: p.gen, epoch: p.epoch, d: dl, ctx: jctx, cancel: cancel}
	}
	return nil
}

func (d *dispatcher) markReady(p *part) {
	if p.busyGen == 0 && len(p.queue) > 0 && (p.mode == live || p.mode == catchingUp) && !slices.Contains(d.ready, p.id) {
		d.ready = append(d.ready, p.id)
	}
}

func (d *dispatcher) emit(ev partEvent) { d.queued = append(d.queued, ev) }

// onDelivery routes a consumer delivery.
func (d *dispatcher) onDelivery(m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return // not a JetStream message; nothing to ack
	}
	seq := fsm.StreamSeq(meta.Sequence.Stream)
	id, ok := d.match.Overlap(m.Subject())
	p := d.parts[id]
	if !ok || p == nil {
		d.stray(m)
		return
	}
	switch {
	case p.mode == catchingUp:
		if seq <= p.lastDispatched {
			d.duplicate(p, m, seq)
			return
		}
		i, found := slices.BinarySearchFunc(p.held, seq, func(h *delivery, s fsm.StreamSeq) int { return cmp.Compare(h.seq, s) })
		if !found {
			p.held = slices.Insert(p.held, i, fromMsg(m, seq))
		}
	case p.mode == live && !d.fenced:
		if seq <= p.lastDispatched {
			d.duplicate(p, m, seq)
			return
		}
		p.queue = append(p.queue, fromMsg(m, seq))
		p.lastDispatched = seq
		d.markReady(p)
	default:
		d.stray(m)
	}
}

// duplicate handles a consumer delivery of a sequence already dispatched: once
// processed it is acked; while its first copy is still in the pipeline it is
// left unacked, so an ack can never remove a message (WorkQueue) before it is
// processed; it comes back after AckWait and is acked then.
func (d *dispatcher) duplicate(p *part, m jetstream.Msg, seq fsm.StreamSeq) {
	d.a.metrics.duplicates.Inc()
	if seq <= p.processed {
		_ = m.Ack()
	}
}

// stray handles a delivery of a partition this worker does not process now. On
// a Limits stream acking it is harmless (the message stays for its owner); on
// WorkQueue and Interest streams an ack could delete it, so it is left to be
// redelivered until it is deleted by its owner or the subject leaves our filter.
func (d *dispatcher) stray(m jetstream.Msg) {
	d.a.metrics.messages.WithLabelValues("stray").Inc()
	if d.a.retention == jetstream.LimitsPolicy {
		_ = m.Ack()
	}
}

func fromMsg(m jetstream.Msg, seq fsm.StreamSeq) *delivery {
	dl := &delivery{seq: seq, subject: m.Subject(), header: m.Headers(), data: m.Data(), msg: m}
	if meta, err := m.Metadata(); err == nil {
		dl.time = meta.Timestamp
	}
	return dl
}

// onCatchup takes a message (or the end) from a partition's catch-up reader.
func (d *dispatcher) onCatchup(ctx context.Context, c catchupMsg) {
	p := d.parts[c.part]
	if p == nil || p.gen != c.gen || p.mode != catchingUp {
		if c.d != nil {
			c.d.release()
		}
		return
	}
	if c.err != nil {
		// The reader gave up (it retries transient errors itself): start it
		// again from where the partition stands.
		d.a.log.Warn("catch-up read failed; restarting it", "partition", p.id, "err", c.err)
		d.startReader(ctx, p, p.lastDispatched)
		return
	}
	if c.eof {
		d.finishCatchup(p)
		return
	}
	seq := c.d.seq
	switch {
	case seq <= p.lastDispatched:
		c.d.release()
	case len(p.held) > 0 && seq >= p.held[0].seq:
		// The read reached what the consumer delivers: the gap is closed.
		c.d.release()
		d.finishCatchup(p)
	default:
		p.queue = append(p.queue, c.d)
		p.lastDispatched = seq
		d.markReady(p)
	}
}

// finishCatchup ends the catch-up read and merges the held consumer deliveries.
func (d *dispatcher) finishCatchup(p *part) {
	if p.cancelReader != nil {
		p.cancelReader()
		p.cancelReader = nil
	}
	for _, h := range p.held {
		if h.seq <= p.lastDispatched {
			d.duplicate(p, h.msg, h.seq)
			continue
		}
		p.queue = append(p.queue, h)
		p.lastDispatched = h.seq
	}
	p.held = nil
	p.mode = live
	p.catchupDone = true
	p.activateAt = p.lastDispatched
	d.markReady(p)
	d.checkCaughtUp(p)
}

func (d *dispatcher) checkCaughtUp(p *part) {
	if p.wantCaughtUp && p.catchupDone && p.processed >= p.activateAt {
		p.wantCaughtUp = false
		d.emit(partEvent{kind: evCaughtUp, part: p.id, epoch: p.epoch, gen: p.gen, through: p.processed, took: time.Since(p.catchupStart)})
	}
}

// onDone records a handler's result.
func (d *dispatcher) onDone(r jobResult) {
	p := d.parts[r.part]
	if p == nil {
		return
	}
	if p.busyGen == r.gen {
		p.busyGen, p.cancelJob = 0, nil
	}
	// A job's progress counts for the epoch it ran under, even if the
	// partition restarted meanwhile (a new epoch starts from its own resume
	// point instead).
	if r.epoch == p.epoch && r.processed && r.seq > p.processed {
		p.processed = r.seq
	}
	if p.restartPending && p.busyGen == 0 {
		p.restartPending = false
		p.lastDispatched = p.processed
		d.startReader(d.ctx, p, p.processed)
	}
	if p.gen != r.gen {
		d.markReady(p)
		if p.mode == draining {
			d.drained(p)
		}
		return
	}
	switch p.mode {
	case draining:
		d.drained(p)
	default:
		d.checkCaughtUp(p)
		d.markReady(p)
	}
}

// drained reports a finished drain: every message up to processed is done and
// nothing more will be dispatched.
func (d *dispatcher) drained(p *part) {
	if p.busyGen != 0 {
		return
	}
	p.mode = stopped
	d.emit(partEvent{kind: evDrained, part: p.id, epoch: p.epoch, gen: p.gen, through: p.processed, took: time.Since(p.drainStart)})
}

// halt stops everything running for p and drops its undispatched messages;
// they were not processed, so they are neither acked nor counted.
func (d *dispatcher) halt(p *part) {
	if p.cancelReader != nil {
		p.cancelReader()
		p.cancelReader = nil
	}
	for _, q := range p.queue {
		q.release()
	}
	p.queue, p.held = nil, nil
}

func (d *dispatcher) rebuildMatcher() {
	d.match = fsm.NewSubjectIndex()
	for _, p := range d.parts {
		for _, s := range p.subjects {
			d.match.Add(s, p.id)
		}
	}
}

func (d *dispatcher) onCtrl(ctx context.Context, r ctrlReq) ctrlReply {
	p := d.parts[r.part]
	switch r.op {
	case opStart:
		if p == nil {
			p = &part{id: r.part}
			d.parts[r.part] = p
		}
		d.halt(p)
		if p.cancelJob != nil {
			p.cancelJob()
		}
		p.epoch, p.subjects = r.epoch, r.subjects
		p.processed, p.lastDispatched = r.resume, r.resume
		p.restartPending = false
		p.wantCaughtUp, p.catchupDone = r.report, false
		d.restart(ctx, p)
		d.rebuildMatcher()
	case opResume:
		if p != nil && p.mode != live && p.mode != catchingUp {
			d.halt(p)
			d.restart(ctx, p)
		}
	case opDrain:
		if p != nil && (p.mode == live || p.mode == catchingUp) {
			d.halt(p)
			p.mode = draining
			p.drainStart = time.Now()
			d.drained(p)
		}
	case opCancelInflight:
		if p != nil && p.cancelJob != nil {
			p.cancelJob()
		}
	case opStop:
		if p != nil {
			d.halt(p)
			if p.cancelJob != nil {
				p.cancelJob()
			}
			p.mode = stopped
		}
	case opForget:
		if p != nil {
			d.halt(p)
			if p.cancelJob != nil {
				p.cancelJob()
			}
			delete(d.parts, r.part)
			d.rebuildMatcher()
		}
	case opFence:
		// Self-fencing: nothing is dispatched and running handlers are told
		// to stop. What they had not finished will be read again.
		d.fenced = true
		for _, p := range d.parts {
			if p.cancelJob != nil {
				p.cancelJob()
			}
		}
	case opUnfence, opRestartAll:
		// After fencing, or after the consumer was recreated: whatever was
		// dropped or missed is read again from each partition's position.
		d.fenced = false
		for _, p := range d.parts {
			if p.mode == live || p.mode == catchingUp {
				d.halt(p)
				d.restart(ctx, p)
			}
		}
	case opProgress:
		out := make([]progress, 0, len(d.parts))
		for _, p := range d.parts {
			out = append(out, progress{part: p.id, epoch: p.epoch, processed: p.processed, mode: p.mode})
		}
		slices.SortFunc(out, func(a, b progress) int { return cmp.Compare(a.part, b.part) })
		return ctrlReply{progress: out}
	}
	return ctrlReply{}
}

// restart starts p's catch-up from its processed position under a new
// generation, once no job of p is running.
func (d *dispatcher) restart(ctx context.Context, p *part) {
	d.nextGen++
	p.gen = d.nextGen
	p.mode = catchingUp
	p.catchupStart = time.Now()
	if p.busyGen != 0 {
		p.restartPending = true
		return
	}
	p.lastDispatched = p.processed
	d.startReader(ctx, p, p.processed)
}
