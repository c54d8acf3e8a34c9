package core_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/batonhq/baton/consumer/internal/core"
	"github.com/batonhq/baton/fsm"
)

// TestCore_AgainstJetStreamModel drives the cores of two workers against a
// model of JetStream (jsmodel_test.go) and the real claim store (fsm.State,
// with this test as its controller and leader), with every input in a random
// order: publishes, deliveries, redeliveries, lost acks, a consumer deleted
// behind the worker's back, filter updates applied and answered late or
// failing, catch-up reads, handler results in any order across partitions,
// claims, prepares, drains, commits, aborts, expiries and forced commits,
// the janitor, heartbeats confirmed late or lost, and the clock moving by
// small steps or jumping past the lease as a pause does. How faulty a run is
// is drawn first (fault-free runs exercise graceful handoffs). Then every
// fault heals and the run goes on until the system is quiet. It checks:
//
//   - every Dispatch happens before the core's lease and the lease the model
//     computes from confirmed heartbeats (which the core's never outlasts),
//     of a partition the claim store says this incarnation owns at that
//     epoch;
//   - handlers of a partition never overlap on a worker;
//   - per partition and epoch, processed messages are exactly the stored
//     messages after resume_after, in stream order, none skipped (a message
//     gone from the stream unprocessed is a loss); a drain reports the last
//     processed sequence and nothing is processed after it; checkpoints never
//     exceed what was processed;
//   - on an Interest stream, no message of a partition that was once
//     activated is published while nobody covers it;
//   - once faults heal, every partition is owned, active, live on its
//     owner's core and processed to the end of the stream; partitions moved
//     only by graceful handoffs saw every message exactly once.
//
// The executors are modelled on the applier's, with one assumption the core
// needs and the applier must provide: a recreated consumer's deliveries
// reach the core only after its FilterDone(recreated) (see applyFilter).
func TestCore_AgainstJetStreamModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWorld(t)
		t.Repeat(map[string]func(*rapid.T){
			"step": w.step,
			"":     func(*rapid.T) {},
		})
		w.heal()
	})
}

var errOverlap = fmt.Errorf("filtered consumer not unique on workqueue stream (10100): %w", core.ErrOverlap)

const (
	modelTTL      = 5 * time.Second
	leaseFraction = 0.8
	maxMessages   = 60
)

// Partitions of the model; p2 has two subjects (its catch-up reads merge them).
var modelParts = []fsm.PartitionSpec{
	{ID: "p0", Subjects: []string{"p0.>"}},
	{ID: "p1", Subjects: []string{"p1.>"}},
	{ID: "p2", Subjects: []string{"p2.>", "q2.>"}},
}

var publishSubjects = []struct {
	subject string
	part    fsm.PartitionID
}{{"p0.a", "p0"}, {"p1.a", "p1"}, {"p2.a", "p2"}, {"q2.b", "p2"}}

type pe struct {
	p fsm.PartitionID
	e fsm.Epoch
}

type job struct {
	d         core.Dispatch
	called    bool
	cancelled bool
}

type handlerResult struct {
	d         core.Dispatch
	processed bool
}

type hbAnswer struct {
	sent time.Time
	ok   bool
}

type filterAnswer struct {
	inc       fsm.Incarnation
	version   uint64
	recreated bool
	err       error
}

type pendingReport struct {
	kind   core.ReportKind
	inc    fsm.Incarnation
	body   fsm.Body
	parts  []fsm.PartitionID
	epochs []fsm.Epoch
}

// mworker is one worker: its core and the model of its executors.
type mworker struct {
	id       fsm.WorkerID
	c        *core.Core
	inc      fsm.Incarnation
	lost     bool      // the claim store said it does not know inc: register again
	arrival  time.Time // the last heartbeat (or registration) the leader received
	lease    time.Time // sent time of the last confirmed heartbeat + the lease fraction of the TTL
	lastSent time.Time // the last heartbeat sent
	hb       []hbAnswer
	jobs     []*job
	results  []handlerResult
	want     *core.SetFilter // the latest SetFilter not yet applied (requests coalesce)
	applied  *core.SetFilter // the last one applied
	deleted  bool            // its consumer was deleted behind its back
	// recreating: its consumer was made again and the core has not yet
	// been told (FilterDone recreated); it delivers nothing until then.
	recreating bool
	answers    []filterAnswer
	reads      []core.Read
	reports    []pendingReport
	cleans     []core.Clean
}

func (w *mworker) consumer() consKey { return consKey{w.id, w.inc} }

type world struct {
	t       *rapid.T
	ret     core.Retention
	t0, now time.Time
	store   *fsm.State
	idx     fsm.RaftIndex
	js      *jetStream
	workers []*mworker
	// level is how faulty the run is: 0 none; 1 failing executors, lost
	// acks and heartbeats; 2 also pauses (clock jumps past the lease) and
	// expiries; 3 also consumers deleted behind the worker's back. -1 once
	// faults heal.
	level int

	// Records for the checks.
	resume      map[pe]fsm.StreamSeq
	last        map[pe]fsm.StreamSeq  // last processed per partition and epoch
	drained     map[pe]bool           // the claim store took the drain
	count       map[fsm.StreamSeq]int // times each message was processed
	forced      map[fsm.PartitionID]bool
	activatedAt map[fsm.PartitionID]bool // activated at least once
	graceful    int                      // graceful commits seen
}

func newWorld(t *rapid.T) *world {
	store, err := fsm.New(fsm.DefaultConfig())
	if err != nil {
		t.Fatalf("fsm: %v", err)
	}
	ret := rapid.SampledFrom([]core.Retention{core.Limits, core.Interest, core.WorkQueue}).Draw(t, "retention")
	w := &world{
		t: t, ret: ret, store: store, js: newJetStream(ret), level: rapid.IntRange(0, 3).Draw(t, "faultLevel"),
		t0:     time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		resume: map[pe]fsm.StreamSeq{}, last: map[pe]fsm.StreamSeq{}, drained: map[pe]bool{},
		count: map[fsm.StreamSeq]int{}, forced: map[fsm.PartitionID]bool{}, activatedAt: map[fsm.PartitionID]bool{},
	}
	w.now = w.t0
	w.js.deleted = func(m *jsMsg, why string) {
		if w.count[m.seq] == 0 {
			w.t.Fatalf("%s#%d removed from the stream before anyone processed it (%s): lost", m.subject, m.seq, why)
		}
	}
	w.apply(fsm.Declare{Partitions: modelParts})
	for _, id := range []fsm.WorkerID{"w0", "w1"} {
		mw := &mworker{id: id, c: core.New(core.Config{
			Worker: id, Retention: ret, Concurrency: 2, MaxSubjects: 100, ReadWindow: 3,
			DrainTimeout: time.Second, CheckpointEvery: 500 * time.Millisecond, StuckAfter: 2 * time.Second,
			RetryMin: 20 * time.Millisecond, RetryMax: 500 * time.Millisecond,
		})}
		w.workers = append(w.workers, mw)
		w.register(mw)
	}
	t.Logf("retention %s, fault level %d", ret, w.level)
	return w
}

// fault draws whether a fault of the given level happens now (one time in n).
func (w *world) fault(level, n int, label string) bool {
	return w.level >= level && rapid.IntRange(0, n-1).Draw(w.t, label) == 0
}

func (w *world) logf(format string, args ...any) {
	w.t.Logf("%8s "+format, append([]any{w.now.Sub(w.t0)}, args...)...)
}

// ---- the claim store ----

// apply proposes a command as the leader would, at the model's time, and
// records what the checks need from its events.
func (w *world) apply(body fsm.Body) fsm.Result {
	w.idx++
	res := w.store.Apply(w.idx, 1, fsm.Command{Header: fsm.Header{RequestID: fmt.Sprintf("r%d", w.idx), Actor: "test", Time: w.now.UnixNano()}, Body: body})
	for _, ev := range res.Events {
		switch b := ev.Body.(type) {
		case fsm.Claimed:
			w.resume[pe{b.Partition, b.Epoch}] = b.ResumeAfter
		case fsm.Committed:
			w.resume[pe{b.Partition, b.Epoch}] = b.ResumeAfter
			if b.Forced {
				w.forced[b.Partition] = true
			} else {
				w.graceful++
			}
		case fsm.Activated:
			w.activatedAt[b.Partition] = true
		case fsm.Drained:
			w.drained[pe{b.Partition, b.Epoch}] = true
		}
		w.logf("claim store: %s", ev.Type())
	}
	if err := w.store.CheckInvariants(); err != nil {
		w.t.Fatalf("claim store invariants: %v", err)
	}
	return res
}

func (w *world) worker(id fsm.WorkerID) *mworker {
	for _, mw := range w.workers {
		if mw.id == id {
			return mw
		}
	}
	return nil
}

func (w *world) activeWorkers() []*mworker {
	var out []*mworker
	for _, mw := range w.workers {
		if fw, ok := w.store.Worker(mw.id); ok && fw.State == fsm.WorkerActive && fw.Incarnation == mw.inc && !mw.lost {
			out = append(out, mw)
		}
	}
	return out
}

func (w *world) partitions(phase fsm.Phase) []fsm.PartitionInfo {
	var out []fsm.PartitionInfo
	for _, p := range w.store.Partitions("", 0) {
		if p.Phase == phase {
			out = append(out, p)
		}
	}
	return out
}

// ---- inputs to a core, and its actions ----

// input feeds one input to mw's core and carries out (and checks) the
// actions it produced.
func (w *world) input(mw *mworker, what string, f func(now time.Time)) {
	w.logf("%s %s", mw.id, what)
	f(w.now)
	if l := mw.c.Lease(); l.After(mw.lease) {
		w.t.Fatalf("%s: the core's lease %s outlasts its confirmed heartbeats' %s", mw.id, l.Sub(w.t0), mw.lease.Sub(w.t0))
	}
	for _, a := range mw.c.Take() {
		w.logf("  -> %s", formatAction(a))
		w.action(mw, a)
	}
}

func (w *world) action(mw *mworker, a core.Action) {
	switch a := a.(type) {
	case core.Dispatch:
		w.checkDispatch(mw, a)
		mw.jobs = append(mw.jobs, &job{d: a})
	case core.Cancel:
		for _, j := range mw.jobs {
			if j.d.Partition == a.Partition && j.d.Gen == a.Gen {
				j.cancelled = true
			}
		}
	case core.Ack:
		if w.fault(1, 5, "ackLost") {
			w.logf("  ack of %d lost", a.Msg.Seq)
			return
		}
		w.js.ack(consKey{mw.id, a.Msg.Inc}, a.Msg.Seq)
	case core.SetFilter:
		if mw.want != nil {
			a.Urgent = a.Urgent || mw.want.Urgent
			a.Verify = a.Verify || mw.want.Verify
		}
		mw.want = &a
	case core.Read:
		mw.reads = append(mw.reads, a)
	case core.ReportDrained:
		r := pendingReport{kind: core.KindDrained, inc: a.Inc, body: fsm.DrainReport{Worker: mw.id, Incarnation: a.Inc, Items: a.Items}}
		for _, it := range a.Items {
			k := pe{it.Partition, it.Epoch}
			if done := w.done(k); it.ThroughSeq != done {
				w.t.Fatalf("%s reports %s drained through %d, but processed through %d", mw.id, it.Partition, it.ThroughSeq, done)
			}
			r.parts, r.epochs = append(r.parts, it.Partition), append(r.epochs, it.Epoch)
		}
		mw.reports = append(mw.reports, r)
	case core.ReportActivated:
		r := pendingReport{kind: core.KindActivated, inc: a.Inc, body: fsm.Activate{Worker: mw.id, Incarnation: a.Inc, Items: a.Items}}
		for _, it := range a.Items {
			r.parts, r.epochs = append(r.parts, it.Partition), append(r.epochs, it.Epoch)
		}
		mw.reports = append(mw.reports, r)
	case core.ReportCheckpoints:
		r := pendingReport{kind: core.KindCheckpoints, inc: a.Inc, body: fsm.Checkpoint{Worker: mw.id, Incarnation: a.Inc, Items: a.Items}}
		for _, it := range a.Items {
			if done := w.done(pe{it.Partition, it.Epoch}); it.Seq > done {
				w.t.Fatalf("%s checkpoints %s@%d at %d, but processed through %d", mw.id, it.Partition, it.Epoch, it.Seq, done)
			}
			r.parts, r.epochs = append(r.parts, it.Partition), append(r.epochs, it.Epoch)
		}
		mw.reports = append(mw.reports, r)
	case core.Clean:
		mw.cleans = append(mw.cleans, a)
	case core.Leave, core.Finish:
		w.t.Fatalf("%s: %s without Close", mw.id, formatAction(a))
	case core.Notice:
	}
}

// done is the last sequence processed in k (its resume point before any).
func (w *world) done(k pe) fsm.StreamSeq {
	if s, ok := w.last[k]; ok {
		return s
	}
	return w.resume[k]
}

func (w *world) checkDispatch(mw *mworker, d core.Dispatch) {
	if !w.now.Before(mw.c.Lease()) {
		w.t.Fatalf("%s dispatched %s at or past the core's lease %s", mw.id, formatAction(d), mw.c.Lease().Sub(w.t0))
	}
	if !w.now.Before(mw.lease) {
		w.t.Fatalf("%s dispatched %s at or past the lease of its confirmed heartbeats %s", mw.id, formatAction(d), mw.lease.Sub(w.t0))
	}
	for _, j := range mw.jobs {
		if j.d.Partition == d.Partition {
			w.t.Fatalf("%s dispatched %s while %s runs", mw.id, formatAction(d), formatAction(j.d))
		}
	}
	for _, r := range mw.results {
		if r.d.Partition == d.Partition {
			w.t.Fatalf("%s dispatched %s before the result of %s", mw.id, formatAction(d), formatAction(r.d))
		}
	}
	p, _ := w.store.PartitionView(d.Partition)
	if p.Owner != mw.id || p.OwnerIncarnation != mw.inc || p.Epoch != d.Epoch ||
		(p.Phase != fsm.PhaseActivating && p.Phase != fsm.PhaseActive && p.Phase != fsm.PhasePreparing) {
		w.t.Fatalf("%s (incarnation %d) dispatched %s, but the claim store has %s owned by %s/%d at epoch %d, %s",
			mw.id, mw.inc, formatAction(d), p.ID, p.Owner, p.OwnerIncarnation, p.Epoch, p.Phase)
	}
	if k := (pe{d.Partition, d.Epoch}); d.Msg.Seq <= w.done(k) {
		w.t.Fatalf("%s dispatched %s, already processed through %d in this epoch", mw.id, formatAction(d), w.done(k))
	}
}

// expectNext is the message of p that must be processed after prev: the next
// one stored, unless the stream removed it after someone processed it.
func (w *world) expectNext(p fsm.PartitionID, prev fsm.StreamSeq) *jsMsg {
	for s := prev + 1; s <= w.js.lastSeq(); s++ {
		m := w.js.msg(s)
		if m.part == p && m.stored && !(m.deleted && w.count[s] > 0) {
			return m
		}
	}
	return nil
}

// processed records a handler that finished and settled its message.
func (w *world) processed(mw *mworker, d core.Dispatch) {
	k := pe{d.Partition, d.Epoch}
	if w.drained[k] {
		w.t.Fatalf("%s processed %s after the claim store took its drain", mw.id, formatAction(d))
	}
	prev := w.done(k)
	want := w.expectNext(d.Partition, prev)
	switch {
	case want == nil:
		w.t.Fatalf("%s processed %s; nothing of %s after %d is in the stream", mw.id, formatAction(d), d.Partition, prev)
	case want.seq != d.Msg.Seq:
		w.t.Fatalf("%s processed %s after %d; the next message of %s is %d (deleted=%v, processed %d times)",
			mw.id, formatAction(d), prev, d.Partition, want.seq, want.deleted, w.count[want.seq])
	}
	w.last[k] = d.Msg.Seq
	w.count[d.Msg.Seq]++
}

// ---- the random steps ----

type choice struct {
	name   string
	weight int
	run    func()
}

// step draws one applicable action and runs it.
func (w *world) step(t *rapid.T) {
	var cs []choice
	add := func(name string, weight int, ok bool, run func()) {
		if ok && weight > 0 {
			cs = append(cs, choice{name, weight, run})
		}
	}
	faulty := func(level, weight int) int {
		if w.level >= level {
			return weight
		}
		return 0
	}
	add("publish", 4, len(w.js.msgs) < maxMessages, w.publish)
	add("advance", 4, true, func() { w.advance(time.Duration(rapid.IntRange(1, 400).Draw(t, "ms")) * time.Millisecond) })
	add("pause", faulty(2, 1), true, func() {
		// The whole process freezes: nothing of it runs, and it wakes
		// up believing what it believed before.
		w.now = w.now.Add(time.Duration(rapid.IntRange(3000, 9000).Draw(t, "pauseMs")) * time.Millisecond)
		w.logf("pause")
	})
	for _, mw := range w.workers {
		ck := mw.consumer()
		add("heartbeat answer", 4, len(mw.hb) > 0, func() { w.heartbeatAnswer(mw) })
		add("register", 2, mw.lost && len(mw.hb) == 0, func() { w.register(mw) })
		add("expire", faulty(2, 2), w.expirable(mw), func() { w.apply(fsm.Expire{Worker: mw.id, Incarnation: mw.inc}) })
		add("watch", 4, true, func() { w.watch(mw) })
		add("tick", 2, true, func() { w.input(mw, "tick", mw.c.Tick) })
		add("executors", 3, true, func() { w.executors(mw) })
		add("deliver", 4, !mw.recreating && w.js.hasNext(ck), func() { w.deliver(mw, rapid.IntRange(1, 3).Draw(t, "n")) })
		add("redeliver", 1, !mw.recreating && len(w.js.pendingSeqs(ck)) > 0, func() {
			w.redeliver(mw, rapid.SampledFrom(w.js.pendingSeqs(ck)).Draw(t, "seq"))
		})
		add("handler start", 3, slices.ContainsFunc(mw.jobs, func(j *job) bool { return !j.called }), func() {
			w.startJob(mw, w.pick(t, mw.jobs, func(j *job) bool { return !j.called }))
		})
		add("handler finish", 3, slices.ContainsFunc(mw.jobs, func(j *job) bool { return j.called }), func() {
			w.finishJob(mw, w.pick(t, mw.jobs, func(j *job) bool { return j.called }), rapid.IntRange(0, 9).Draw(t, "deadLetter") == 0)
		})
		add("handler result", 3, len(mw.results) > 0, func() { w.result(mw) })
		add("filter apply", 2, mw.want != nil || (mw.deleted && mw.applied != nil), func() {
			w.applyFilter(mw, w.fault(1, 6, "filterErr"))
		})
		add("filter answer", 2, len(mw.answers) > 0, func() { w.filterAnswer(mw) })
		add("read answer", 3, len(mw.reads) > 0, func() {
			i := rapid.IntRange(0, len(mw.reads)-1).Draw(t, "read")
			w.readAnswer(mw, i, rapid.IntRange(1, 3).Draw(t, "readN"), w.fault(1, 7, "readErr"))
		})
		add("report answer", 2, len(mw.reports) > 0, func() {
			fault := 9
			if w.level >= 1 {
				fault = rapid.IntRange(0, 9).Draw(t, "reportFault")
			}
			w.reportAnswer(mw, fault)
		})
		add("clean answer", 2, len(mw.cleans) > 0, func() { w.cleanAnswer(mw, w.fault(1, 5, "cleanErr")) })
		// Interest is left out: there the stream deletes at once what only
		// this consumer covered, a loss no worker can prevent.
		add("delete consumer", faulty(3, 1), w.ret != core.Interest && w.js.consumers[ck] != nil, func() {
			delete(w.js.consumers, ck)
			mw.deleted = true
			w.logf("%s: consumer %s/%d deleted", mw.id, ck.worker, ck.inc)
		})
	}
	add("janitor", 1, true, w.janitor)
	add("claim", 3, len(w.partitions(fsm.PhaseUnassigned)) > 0 && len(w.activeWorkers()) > 0, func() {
		p := rapid.SampledFrom(w.partitions(fsm.PhaseUnassigned)).Draw(t, "p")
		to := rapid.SampledFrom(w.activeWorkers()).Draw(t, "to")
		w.apply(fsm.Claim{Items: []fsm.ClaimItem{{Partition: p.ID, Worker: to.id}}})
	})
	add("prepare", 4, len(w.partitions(fsm.PhaseActive)) > 0, func() {
		p := rapid.SampledFrom(w.partitions(fsm.PhaseActive)).Draw(t, "p")
		var to fsm.WorkerID // a release unless another worker is active
		for _, mw := range w.activeWorkers() {
			if mw.id != p.Owner && rapid.IntRange(0, 5).Draw(t, "release") != 0 {
				to = mw.id
			}
		}
		w.apply(fsm.Prepare{Items: []fsm.PrepareItem{{Partition: p.ID, Epoch: p.Epoch, From: p.Owner, To: to, Reason: "test"}}})
	})
	add("commit", 4, len(w.partitions(fsm.PhaseDrained)) > 0, func() {
		p := rapid.SampledFrom(w.partitions(fsm.PhaseDrained)).Draw(t, "p")
		w.apply(fsm.Commit{Items: []fsm.CommitItem{{Handoff: p.Handoff, Partition: p.ID}}})
	})
	add("abort", 1, len(w.partitions(fsm.PhasePreparing))+len(w.partitions(fsm.PhaseDrained)) > 0, func() {
		p := rapid.SampledFrom(append(w.partitions(fsm.PhasePreparing), w.partitions(fsm.PhaseDrained)...)).Draw(t, "p")
		w.apply(fsm.Abort{Items: []fsm.AbortItem{{Handoff: p.Handoff, Partition: p.ID, Reason: "test"}}})
	})
	add("force", 3, len(w.partitions(fsm.PhaseOrphaned)) > 0 && len(w.activeWorkers()) > 0, func() {
		p := rapid.SampledFrom(w.partitions(fsm.PhaseOrphaned)).Draw(t, "p")
		to := rapid.SampledFrom(w.activeWorkers()).Draw(t, "to")
		w.apply(fsm.ForceCommit{Items: []fsm.ForceItem{{Partition: p.ID, Epoch: p.Epoch, To: to.id, Reason: fsm.ForceOwnerLeft}}})
	})
	total := 0
	for _, c := range cs {
		total += c.weight
	}
	n := rapid.IntRange(0, total-1).Draw(t, "action")
	for _, c := range cs {
		if n -= c.weight; n < 0 {
			c.run()
			return
		}
	}
}

// advance moves the clock a little. Each worker heartbeats every second, as
// the session loop does; answers come back by "heartbeat answer".
func (w *world) advance(d time.Duration) {
	w.now = w.now.Add(d)
	for _, mw := range w.workers {
		if !mw.lost && !w.now.Before(mw.lastSent.Add(time.Second)) {
			w.heartbeat(mw, w.fault(1, 6, "hbLost"))
		}
	}
}

// executors lets every executor of mw finish what it has, without faults:
// filter updates, reads, handlers, reports and cleans, once each.
func (w *world) executors(mw *mworker) {
	if mw.want != nil || (mw.deleted && mw.applied != nil) {
		w.applyFilter(mw, false)
	}
	for len(mw.answers) > 0 {
		w.filterAnswer(mw)
	}
	for range len(mw.reads) {
		w.readAnswer(mw, 0, 3, false)
	}
	for _, j := range slices.Clone(mw.jobs) {
		if !j.called {
			w.startJob(mw, j)
		}
		if j.called {
			w.finishJob(mw, j, false)
		}
	}
	for len(mw.results) > 0 {
		w.result(mw)
	}
	for range len(mw.reports) {
		w.reportAnswer(mw, 9)
	}
	for range len(mw.cleans) {
		w.cleanAnswer(mw, false)
	}
}

func (w *world) pick(t *rapid.T, jobs []*job, ok func(*job) bool) *job {
	var cands []*job
	for _, j := range jobs {
		if ok(j) {
			cands = append(cands, j)
		}
	}
	return cands[rapid.IntRange(0, len(cands)-1).Draw(t, "job")]
}

func (w *world) publish() {
	s := rapid.SampledFrom(publishSubjects).Draw(w.t, "subject")
	m := w.js.publish(s.subject, s.part)
	w.logf("publish %s#%d stored=%v", s.subject, m.seq, m.stored)
	if !m.stored && w.activatedAt[s.part] {
		w.t.Fatalf("%s#%d published while nobody covered %s, which was activated before: lost", s.subject, m.seq, s.part)
	}
}

// ---- sessions ----

func (w *world) register(mw *mworker) {
	res := w.apply(fsm.Join{Worker: mw.id, Replace: true})
	if res.Err != nil {
		w.t.Fatalf("join %s: %v", mw.id, res.Err)
	}
	mw.inc, mw.lost, mw.deleted, mw.recreating, mw.applied = fsm.Incarnation(res.Index), false, false, false, nil
	mw.arrival, mw.lastSent, mw.lease = w.now, w.now, w.now.Add(time.Duration(float64(modelTTL)*leaseFraction))
	w.input(mw, fmt.Sprintf("registered inc=%d", mw.inc), func(now time.Time) { mw.c.Registered(now, mw.inc, modelTTL, now) })
}

// heartbeat sends a heartbeat now; lost ones never reach the leader.
func (w *world) heartbeat(mw *mworker, lost bool) {
	mw.lastSent = w.now
	if lost {
		w.logf("%s heartbeat lost", mw.id)
		return
	}
	fw, ok := w.store.Worker(mw.id)
	known := ok && fw.Incarnation == mw.inc && fw.State != fsm.WorkerGone
	if known {
		mw.arrival = w.now
	}
	mw.hb = append(mw.hb, hbAnswer{sent: w.now, ok: known})
}

func (w *world) heartbeatAnswer(mw *mworker) {
	a := mw.hb[0]
	mw.hb = mw.hb[1:]
	if a.ok {
		if l := a.sent.Add(time.Duration(float64(modelTTL) * leaseFraction)); l.After(mw.lease) {
			mw.lease = l
		}
		w.input(mw, fmt.Sprintf("renewed (sent %s)", a.sent.Sub(w.t0)), func(now time.Time) { mw.c.Renewed(now, mw.inc, a.sent) })
		return
	}
	mw.lost = true
	w.input(mw, "session lost", func(now time.Time) { mw.c.SessionLost(now, mw.inc) })
}

// expirable: the leader may expire a session a TTL after the last heartbeat
// it received.
func (w *world) expirable(mw *mworker) bool {
	fw, ok := w.store.Worker(mw.id)
	return ok && fw.Incarnation == mw.inc && fw.State != fsm.WorkerGone && !w.now.Before(mw.arrival.Add(modelTTL))
}

func (w *world) watch(mw *mworker) {
	a, ok := w.store.Assignment(mw.id)
	if !ok {
		a = fsm.Assignment{Worker: mw.id, State: fsm.WorkerGone}
	}
	var parts []string
	for _, p := range a.Partitions {
		parts = append(parts, fmt.Sprintf("%s@%d:%s", p.Partition, p.Epoch, p.Phase))
	}
	for _, h := range a.Handed {
		parts = append(parts, fmt.Sprintf("handed:%s", h.Partition))
	}
	w.input(mw, fmt.Sprintf("assignment inc=%d %s [%s]", a.Incarnation, a.State, strings.Join(parts, " ")), func(now time.Time) { mw.c.Assign(now, a) })
}

// ---- the consumer ----

func (w *world) deliver(mw *mworker, n int) {
	var ds []*core.Delivery
	var seqs []string
	for _, m := range w.js.next(mw.consumer(), n) {
		ds = append(ds, &core.Delivery{Seq: m.seq, Subject: m.subject, Inc: mw.inc})
		seqs = append(seqs, fmt.Sprintf("%s#%d", m.subject, m.seq))
	}
	if len(ds) == 0 {
		return
	}
	w.input(mw, "deliver "+strings.Join(seqs, " "), func(now time.Time) { mw.c.DeliverBatch(now, ds) })
}

func (w *world) redeliver(mw *mworker, seq fsm.StreamSeq) {
	m := w.js.msg(seq)
	d := &core.Delivery{Seq: m.seq, Subject: m.subject, Inc: mw.inc}
	w.input(mw, fmt.Sprintf("redeliver %s#%d", m.subject, m.seq), func(now time.Time) { mw.c.Deliver(now, d) })
}

// applyFilter is the filter manager applying the latest request (or, after
// the consumer was deleted, the last applied one again).
func (w *world) applyFilter(mw *mworker, fail bool) {
	sf := mw.want
	if sf == nil {
		// The pull loop found the consumer gone: the manager applies
		// its last update again, reading the consumer back.
		again := *mw.applied
		again.Verify = true
		sf = &again
	}
	mw.want = nil
	k := consKey{mw.id, sf.Inc}
	if fail {
		w.logf("%s filter v%d failed", mw.id, sf.Version)
		mw.answers = append(mw.answers, filterAnswer{inc: sf.Inc, version: sf.Version, err: errors.New("timeout")})
		return
	}
	created, err := w.js.setFilter(k, sf.Subjects)
	recreated := created && mw.deleted && sf.Inc == mw.inc
	if err == nil {
		mw.applied, mw.deleted = sf, false
	}
	if recreated {
		// The core learns of the new consumer (which starts at the
		// stream's end) before any of its deliveries: one delivered
		// first would be dispatched ahead of the messages the old
		// consumer never delivered, and those would be skipped.
		mw.recreating = true
	}
	w.logf("%s filter v%d [%s] applied: created=%v err=%v", mw.id, sf.Version, strings.Join(sf.Subjects, " "), created, err)
	mw.answers = append(mw.answers, filterAnswer{inc: sf.Inc, version: sf.Version, recreated: recreated, err: err})
}

func (w *world) filterAnswer(mw *mworker) {
	a := mw.answers[0]
	mw.answers = mw.answers[1:]
	defer func() {
		if a.recreated {
			mw.recreating = false
		}
	}()
	w.input(mw, fmt.Sprintf("filter done v%d recreated=%v err=%v", a.version, a.recreated, a.err), func(now time.Time) {
		mw.c.FilterDone(now, a.inc, a.version, a.recreated, a.err)
	})
}

// ---- executors ----

func (w *world) readAnswer(mw *mworker, i, n int, fail bool) {
	r := mw.reads[i]
	mw.reads = slices.Delete(mw.reads, i, i+1)
	if fail {
		w.input(mw, fmt.Sprintf("read %s gen=%d failed", r.Partition, r.Gen), func(now time.Time) {
			mw.c.ReadDone(now, r.Partition, r.Gen, nil, false, errors.New("timeout"))
		})
		return
	}
	msgs := w.js.read(r.Subjects, r.After, min(n, r.Limit))
	var ds []*core.Delivery
	var seqs []string
	for _, m := range msgs {
		ds = append(ds, &core.Delivery{Seq: m.seq, Subject: m.subject, FromRead: true})
		seqs = append(seqs, fmt.Sprint(m.seq))
	}
	eof := len(msgs) == 0
	w.input(mw, fmt.Sprintf("read %s gen=%d after=%d: [%s] eof=%v", r.Partition, r.Gen, r.After, strings.Join(seqs, " "), eof), func(now time.Time) {
		mw.c.ReadDone(now, r.Partition, r.Gen, ds, eof, nil)
	})
}

// startJob is a handler goroutine taking the job: past the lease it skips
// the handler, as the executor does.
func (w *world) startJob(mw *mworker, j *job) {
	if j.cancelled || !w.now.Before(mw.c.Lease()) {
		mw.jobs = slices.DeleteFunc(mw.jobs, func(x *job) bool { return x == j })
		mw.results = append(mw.results, handlerResult{d: j.d})
		w.logf("%s handler %s skipped (cancelled=%v)", mw.id, formatAction(j.d), j.cancelled)
		return
	}
	j.called = true
}

// finishJob is the handler returning: a cancelled one settles nothing; any
// other settles its message and counts as processed.
func (w *world) finishJob(mw *mworker, j *job, deadLetter bool) {
	mw.jobs = slices.DeleteFunc(mw.jobs, func(x *job) bool { return x == j })
	r := handlerResult{d: j.d, processed: !j.cancelled}
	if r.processed {
		w.processed(mw, j.d)
		how := j.d.Success
		if deadLetter {
			how = j.d.DeadLetter
		}
		w.settle(mw, j.d.Msg, how)
	}
	w.logf("%s handler %s returned processed=%v", mw.id, formatAction(j.d), r.processed)
	mw.results = append(mw.results, r)
}

func (w *world) settle(mw *mworker, d *core.Delivery, how core.Settle) {
	switch how {
	case core.SettleAck, core.SettleDoubleAck, core.SettleTerm:
		if how == core.SettleAck && w.fault(1, 5, "ackLost") {
			w.logf("  ack of %d lost", d.Seq)
			return
		}
		w.js.ack(consKey{mw.id, d.Inc}, d.Seq)
	case core.SettleDelete:
		w.js.delete(d.Seq, "DeleteMsg")
		w.js.gcInterest()
	}
}

func (w *world) result(mw *mworker) {
	r := mw.results[0]
	mw.results = mw.results[1:]
	w.input(mw, fmt.Sprintf("handler done %s@%d #%d processed=%v", r.d.Partition, r.d.Epoch, r.d.Msg.Seq, r.processed), func(now time.Time) {
		mw.c.HandlerDone(now, r.d.Partition, r.d.Gen, r.d.Epoch, r.d.Msg.Seq, r.processed)
	})
}

// reportAnswer sends the oldest report to the claim store. fault 0: the
// request is lost; 1: applied, but the answer is lost; otherwise answered.
func (w *world) reportAnswer(mw *mworker, fault int) {
	r := mw.reports[0]
	mw.reports = mw.reports[1:]
	if w.level < 1 {
		fault = 9
	}
	var res fsm.Result
	var err error
	refused := false
	if fault != 0 {
		res = w.apply(r.body)
	}
	switch {
	case fault <= 1:
		err = errors.New("unavailable")
	case res.Err != nil:
		err, refused = res.Err, true
	}
	itemErrs := make([]error, len(r.parts))
	for i := range itemErrs {
		if err == nil && i < len(res.Items) {
			itemErrs[i] = res.Items[i]
		}
	}
	w.input(mw, fmt.Sprintf("report %d done: err=%v refused=%v items=%v", r.kind, err, refused, itemErrs), func(now time.Time) {
		mw.c.ReportDone(now, r.inc, r.kind, r.parts, r.epochs, itemErrs, err, refused)
	})
}

func (w *world) cleanAnswer(mw *mworker, fail bool) {
	c := mw.cleans[0]
	mw.cleans = mw.cleans[1:]
	var err error
	if fail {
		err = errors.New("timeout")
	} else {
		for _, l := range c.Lingerers {
			if l.Gone {
				w.js.removeSubjects(consKey{l.Worker, l.Incarnation}, c.Subjects)
			}
		}
	}
	w.input(mw, fmt.Sprintf("clean %s done err=%v", c.Partition, err), func(now time.Time) { mw.c.CleanDone(now, c.Partition, c.Epoch, err) })
}

// janitor is the applier's janitor: it takes out of the consumers of gone
// incarnations every subject that no partition needs from them any more (as
// its owner's, or a lingerer's until the next activation), deleting a
// consumer left with none. An owner's coverage is needed in every phase: a
// drained partition whose owner died waits for its graceful commit, and on
// an Interest stream what the next owner resumes after must still be stored.
func (w *world) janitor() {
	needed := map[consKey][]string{}
	for _, p := range w.store.Partitions("", 0) {
		if p.Owner != "" {
			k := consKey{p.Owner, p.OwnerIncarnation}
			needed[k] = append(needed[k], p.Subjects...)
		}
		for _, l := range p.Lingerers {
			k := consKey{l.Worker, l.Incarnation}
			needed[k] = append(needed[k], p.Subjects...)
		}
	}
	for _, k := range w.js.sortedKeys() {
		if fw, ok := w.store.Worker(k.worker); ok && fw.Incarnation == k.inc && fw.State != fsm.WorkerGone {
			continue
		}
		var drop []string
		for _, s := range w.js.consumers[k].filter {
			if !slices.Contains(needed[k], s) {
				drop = append(drop, s)
			}
		}
		if len(drop) > 0 {
			w.logf("janitor: %s/%d drops [%s]", k.worker, k.inc, strings.Join(drop, " "))
			w.js.removeSubjects(k, drop)
		}
	}
}

// ---- healing ----

// heal ends every fault and runs until the system is quiet: heartbeats
// confirmed at once, executors answering, the controller committing drained
// handoffs and placing what is orphaned or unassigned, no clock jumps. Then
// every partition must be active, live on its owner and processed to the
// end of the stream.
func (w *world) heal() {
	w.level = -1
	w.logf("---- faults heal ----")
	const rounds = 600
	for round := 0; round < rounds; round++ {
		if w.quiet() {
			w.final()
			return
		}
		w.now = w.now.Add(50 * time.Millisecond)
		for _, mw := range w.workers {
			for len(mw.hb) > 0 {
				w.heartbeatAnswer(mw)
			}
			if mw.lost {
				w.register(mw)
			}
			w.heartbeat(mw, false)
			w.heartbeatAnswer(mw)
		}
		w.healController(round)
		if round%20 == 19 {
			w.janitor()
		}
		for _, mw := range w.workers {
			w.watch(mw)
			w.executors(mw)
			for w.js.hasNext(mw.consumer()) {
				w.deliver(mw, 10)
			}
			if round%10 == 9 {
				for _, s := range w.js.pendingSeqs(mw.consumer()) {
					w.redeliver(mw, s)
				}
			}
			w.input(mw, "tick", mw.c.Tick)
		}
	}
	var b strings.Builder
	for _, mw := range w.workers {
		fmt.Fprintf(&b, "%s: %s", mw.id, formatStatus(mw.c.Status(), w.t0))
	}
	for _, p := range w.store.Partitions("", 0) {
		fmt.Fprintf(&b, "claim store: %s owner=%s/%d epoch=%d %s processed through %d\n", p.ID, p.Owner, p.OwnerIncarnation, p.Epoch, p.Phase, w.done(pe{p.ID, p.Epoch}))
	}
	w.t.Fatalf("not quiet %d rounds after the faults healed:\n%s", rounds, b.String())
}

// healController is the controller once faults heal: drained handoffs
// commit, orphaned and unassigned partitions go to active workers.
func (w *world) healController(round int) {
	active := w.activeWorkers()
	if len(active) == 0 {
		return
	}
	for _, p := range w.partitions(fsm.PhaseDrained) {
		w.apply(fsm.Commit{Items: []fsm.CommitItem{{Handoff: p.Handoff, Partition: p.ID}}})
	}
	for i, p := range w.partitions(fsm.PhaseOrphaned) {
		w.apply(fsm.ForceCommit{Items: []fsm.ForceItem{{Partition: p.ID, Epoch: p.Epoch, To: active[(round+i)%len(active)].id, Reason: fsm.ForceOwnerLeft}}})
	}
	for i, p := range w.partitions(fsm.PhaseUnassigned) {
		w.apply(fsm.Claim{Items: []fsm.ClaimItem{{Partition: p.ID, Worker: active[(round+i)%len(active)].id}}})
	}
}

// quiet: every partition active on an active worker whose core has it live
// at that epoch and processed to the end; no executor has work left.
func (w *world) quiet() bool {
	for _, mw := range w.workers {
		if len(mw.jobs)+len(mw.results)+len(mw.reads)+len(mw.reports)+len(mw.answers)+len(mw.cleans) > 0 || mw.want != nil {
			return false
		}
	}
	for _, p := range w.store.Partitions("", 0) {
		if p.Phase != fsm.PhaseActive {
			return false
		}
		mw := w.worker(p.Owner)
		if mw == nil || mw.inc != p.OwnerIncarnation {
			return false
		}
		live := false
		for _, ps := range mw.c.Status().Partitions {
			if ps.Partition == p.ID && ps.Epoch == p.Epoch && ps.Phase == core.PhaseLive {
				live = true
			}
		}
		if !live || w.expectNext(p.ID, w.done(pe{p.ID, p.Epoch})) != nil {
			return false
		}
	}
	return true
}

// final checks what must hold once quiet: exactly once where every move was
// graceful, at least once elsewhere.
func (w *world) final() {
	for _, m := range w.js.msgs {
		if !m.stored {
			continue
		}
		switch n := w.count[m.seq]; {
		case n == 0:
			w.t.Fatalf("%s#%d was never processed", m.subject, m.seq)
		case n > 1 && !w.forced[m.part]:
			w.t.Fatalf("%s#%d was processed %d times, though %s only moved gracefully", m.subject, m.seq, n, m.part)
		}
	}
	w.logf("quiet: %d messages, %d graceful commits", len(w.js.msgs), w.graceful)
}
