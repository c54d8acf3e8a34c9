package proptest

import (
	"bytes"
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/batonhq/baton/fsm"
)

var (
	workerPool    = []fsm.WorkerID{"w0", "w1", "w2", "w3", "w4", "w5"}
	partitionPool = func() []fsm.PartitionSpec {
		var out []fsm.PartitionSpec
		for i := 0; i < 10; i++ {
			out = append(out, fsm.PartitionSpec{ID: fsm.PartitionID(fmt.Sprintf("p%d", i)), Subjects: []string{fmt.Sprintf("s.p%d.>", i)}})
		}
		// p10 overlaps every s.pN.> (s.pN.x matches both); p11 overlaps nothing.
		out = append(out, fsm.PartitionSpec{ID: "p10", Subjects: []string{"s.*.x"}})
		out = append(out, fsm.PartitionSpec{ID: "p11", Subjects: []string{"t.p11", "t.p11b.>"}})
		return out
	}()
)

// machine drives one fsm (and a replica fed the same bytes) and the reference
// model with the same random commands.
type machine struct {
	t       *rapid.T
	s       *fsm.State
	replica *fsm.State
	m       *model
	events  []fsm.Event
	history *fsm.HistoryChecker
	applied []fsm.Command // commands with request ids, for retries
	seq     int
}

func newMachine(t *rapid.T) *machine {
	s, _ := fsm.New(fsm.DefaultConfig())
	r, _ := fsm.New(fsm.DefaultConfig())
	return &machine{t: t, s: s, replica: r, m: newModel(), history: fsm.NewHistoryChecker(true)}
}

// apply sends body through the encoding to both replicas, checks acceptance
// against the model's prediction (want, one per item, or one for the command),
// and feeds the events to the history checker.
func (mc *machine) apply(body fsm.Body, want []bool, actor string) fsm.Result {
	mc.seq++
	cmd := fsm.Command{Header: fsm.Header{RequestID: fmt.Sprintf("req-%d", mc.seq), Actor: actor, Time: mc.m.now}, Body: body}
	data, err := fsm.EncodeCommand(cmd)
	if err != nil {
		mc.t.Fatalf("encode: %v", err)
	}
	dec, err := fsm.DecodeCommand(data)
	if err != nil {
		mc.t.Fatalf("decode: %v", err)
	}
	idx := mc.m.index
	res := mc.s.Apply(idx, 1, dec)
	mc.replica.Apply(idx, 1, dec)
	got := accepted(res)
	if len(got) != len(want) {
		mc.t.Fatalf("%T: %d outcomes, model expects %d (%v)", body, len(got), len(want), res.FirstError())
	}
	for i := range want {
		if got[i] != want[i] {
			mc.t.Fatalf("%T %+v item %d: fsm accepted=%v (%v), model says %v", body, body, i, got[i], errOf(res, i), want[i])
		}
	}
	for _, ev := range res.Events {
		if err := mc.history.Check(ev); err != nil {
			mc.t.Fatalf("history: %v", err)
		}
	}
	mc.events = append(mc.events, res.Events...)
	mc.applied = append(mc.applied, cmd)
	return res
}

func accepted(r fsm.Result) []bool {
	if r.Items == nil {
		return []bool{r.Err == nil}
	}
	out := make([]bool, len(r.Items))
	for i, e := range r.Items {
		out[i] = e == nil
	}
	return out
}

func errOf(r fsm.Result, i int) error {
	if r.Items == nil {
		return r.Err
	}
	return r.Items[i]
}

// next advances the model's raft index; the fsm applies at this index.
func (mc *machine) next() { mc.m.index++ }

func (mc *machine) worker(t *rapid.T) fsm.WorkerID {
	return rapid.SampledFrom(workerPool).Draw(t, "worker")
}

// inPhase mostly picks a partition the model has in one of the phases, so that
// random sequences reach deep into handoffs; sometimes any partition at all.
func (mc *machine) inPhase(t *rapid.T, phases ...fsm.Phase) fsm.PartitionID {
	var ids []fsm.PartitionID
	for _, id := range mc.m.sortedParts() {
		for _, ph := range phases {
			if mc.m.parts[id].phase == ph {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 || rapid.IntRange(0, 9).Draw(t, "anyPartition") == 0 {
		return mc.part(t)
	}
	return rapid.SampledFrom(ids).Draw(t, "partitionInPhase")
}

// eligibleWorker mostly picks a worker that may receive partitions.
func (mc *machine) eligibleWorker(t *rapid.T) fsm.WorkerID {
	var ws []fsm.WorkerID
	for _, w := range workerPool {
		if mc.m.eligible(w) {
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 || rapid.IntRange(0, 9).Draw(t, "anyWorker") == 0 {
		return mc.worker(t)
	}
	return rapid.SampledFrom(ws).Draw(t, "eligibleWorker")
}

// rarely skips an action most of the time, to make it rare.
func rarely(t *rapid.T) {
	if rapid.IntRange(0, 3).Draw(t, "rare") != 0 {
		t.Skip("rare action")
	}
}
func (mc *machine) part(t *rapid.T) fsm.PartitionID {
	return rapid.SampledFrom(partitionPool).Draw(t, "partition").ID
}

// inc is the worker's incarnation, or (rarely) a wrong one.
func (mc *machine) inc(t *rapid.T, w fsm.WorkerID) fsm.Incarnation {
	var inc fsm.Incarnation
	if x := mc.m.workers[w]; x != nil {
		inc = x.inc
	}
	if rapid.IntRange(0, 9).Draw(t, "badInc") == 0 {
		inc += fsm.Incarnation(rapid.IntRange(1, 3).Draw(t, "incDelta"))
	}
	return inc
}

// epoch is the partition's epoch, or (rarely) a stale one.
func (mc *machine) epoch(t *rapid.T, p *mPart) fsm.Epoch {
	var e fsm.Epoch
	if p != nil {
		e = p.epoch
	}
	if rapid.IntRange(0, 9).Draw(t, "badEpoch") == 0 {
		return e + 1
	}
	return e
}

// owner is the partition's owner, or (rarely) a random worker.
func (mc *machine) owner(t *rapid.T, p *mPart) fsm.WorkerID {
	if p != nil && p.owner != "" && rapid.IntRange(0, 9).Draw(t, "wrongWorker") != 0 {
		return p.owner
	}
	return mc.worker(t)
}

func (mc *machine) seqAround(t *rapid.T, p *mPart) fsm.StreamSeq {
	var cp fsm.StreamSeq
	if p != nil {
		cp = p.cp
	}
	d := rapid.IntRange(-2, 30).Draw(t, "seqDelta")
	if int(cp)+d < 0 {
		return 0
	}
	return fsm.StreamSeq(int(cp) + d)
}

func (mc *machine) Join(t *rapid.T) {
	mc.next()
	w, replace := mc.worker(t), rapid.Bool().Draw(t, "replace")
	ok := mc.m.join(w, replace)
	mc.apply(fsm.Join{Worker: w, Replace: replace, Weight: uint32(rapid.IntRange(0, 3).Draw(t, "weight"))}, []bool{ok}, "worker:"+string(w))
}

func (mc *machine) Leave(t *rapid.T) {
	rarely(t)
	mc.next()
	w := mc.worker(t)
	inc := mc.inc(t, w)
	mc.apply(fsm.Leave{Worker: w, Incarnation: inc}, []bool{mc.m.leave(w, inc)}, "worker:"+string(w))
}

func (mc *machine) Expire(t *rapid.T) {
	rarely(t)
	mc.next()
	w := mc.worker(t)
	inc := mc.inc(t, w)
	mc.apply(fsm.Expire{Worker: w, Incarnation: inc}, []bool{mc.m.expire(w, inc, true)}, "controller")
}

func (mc *machine) RemoveWorker(t *rapid.T) {
	rarely(t)
	mc.next()
	w := mc.worker(t)
	mc.apply(fsm.RemoveWorker{Worker: w}, []bool{mc.m.expire(w, 0, false)}, "operator:test")
}

func (mc *machine) Declare(t *rapid.T) {
	mc.next()
	specs := rapid.SliceOfN(rapid.SampledFrom(partitionPool), 1, 4).Draw(t, "specs")
	mc.apply(fsm.Declare{Partitions: specs}, mc.m.declare(specs), "operator:test")
}

func (mc *machine) RemovePartition(t *rapid.T) {
	rarely(t)
	mc.next()
	id := mc.part(t)
	mc.apply(fsm.RemovePartitions{Partitions: []fsm.PartitionID{id}}, []bool{mc.m.remove(id)}, "operator:test")
}

func (mc *machine) Claim(t *rapid.T) {
	mc.next()
	n := rapid.IntRange(1, 3).Draw(t, "claims")
	var items []fsm.ClaimItem
	var want []bool
	for i := 0; i < n; i++ {
		it := fsm.ClaimItem{Partition: mc.inPhase(t, fsm.PhaseUnassigned), Worker: mc.eligibleWorker(t)}
		items = append(items, it)
		want = append(want, mc.m.claim(it.Partition, it.Worker))
	}
	mc.apply(fsm.Claim{Items: items}, want, "controller")
}

func (mc *machine) Prepare(t *rapid.T) {
	mc.next()
	id := mc.inPhase(t, fsm.PhaseActive)
	p := mc.m.parts[id]
	it := fsm.PrepareItem{Partition: id, Epoch: mc.epoch(t, p), From: mc.owner(t, p), Reason: "rebalance"}
	if rapid.IntRange(0, 5).Draw(t, "release") != 0 {
		it.To = mc.eligibleWorker(t)
	}
	if rapid.Bool().Draw(t, "deadline") {
		it.DrainTimeout = int64(rapid.IntRange(1, 5).Draw(t, "deadlineSec")) * 1e9
	}
	mc.apply(fsm.Prepare{Items: []fsm.PrepareItem{it}}, []bool{mc.m.prepare(it)}, "controller")
}

func (mc *machine) Drain(t *rapid.T) {
	mc.next()
	id := mc.inPhase(t, fsm.PhasePreparing)
	p := mc.m.parts[id]
	w := mc.owner(t, p)
	inc := mc.inc(t, w)
	it := fsm.DrainItem{Partition: id, Epoch: mc.epoch(t, p), ThroughSeq: mc.seqAround(t, p)}
	if p != nil && p.h != nil {
		it.Handoff = p.h.id
	}
	if !mc.m.reporter(w, inc) {
		mc.apply(fsm.DrainReport{Worker: w, Incarnation: inc, Items: []fsm.DrainItem{it}}, []bool{false}, "worker:"+string(w))
		return
	}
	mc.apply(fsm.DrainReport{Worker: w, Incarnation: inc, Items: []fsm.DrainItem{it}}, []bool{mc.m.drain(w, it)}, "worker:"+string(w))
}

func (mc *machine) Commit(t *rapid.T) {
	mc.next()
	id := mc.inPhase(t, fsm.PhaseDrained)
	it := fsm.CommitItem{Partition: id, Handoff: fsm.HandoffID(rapid.IntRange(1, 3).Draw(t, "handoff"))}
	if p := mc.m.parts[id]; p != nil && p.h != nil && rapid.IntRange(0, 9).Draw(t, "wrongHandoff") != 0 {
		it.Handoff = p.h.id
	}
	mc.apply(fsm.Commit{Items: []fsm.CommitItem{it}}, []bool{mc.m.commit(it)}, "controller")
}

func (mc *machine) Force(t *rapid.T) {
	mc.next()
	id := mc.inPhase(t, fsm.PhaseOrphaned, fsm.PhasePreparing)
	p := mc.m.parts[id]
	it := fsm.ForceItem{Partition: id, Epoch: mc.epoch(t, p), To: mc.eligibleWorker(t),
		Reason: fsm.ForceReason(rapid.IntRange(1, 3).Draw(t, "reason"))}
	actor := "controller"
	if it.Reason == fsm.ForceOperator {
		actor = "operator:test"
	}
	mc.apply(fsm.ForceCommit{Items: []fsm.ForceItem{it}}, []bool{mc.m.force(it)}, actor)
}

func (mc *machine) Activate(t *rapid.T) {
	mc.next()
	id := mc.inPhase(t, fsm.PhaseActivating)
	p := mc.m.parts[id]
	w := mc.owner(t, p)
	inc := mc.inc(t, w)
	it := fsm.ActivateItem{Partition: id, Epoch: mc.epoch(t, p)}
	ok := mc.m.reporter(w, inc) && mc.m.activate(w, it)
	mc.apply(fsm.Activate{Worker: w, Incarnation: inc, Items: []fsm.ActivateItem{it}}, []bool{ok}, "worker:"+string(w))
}

func (mc *machine) Abort(t *rapid.T) {
	rarely(t)
	mc.next()
	id := mc.inPhase(t, fsm.PhasePreparing, fsm.PhaseDrained, fsm.PhaseOrphaned)
	it := fsm.AbortItem{Partition: id, Handoff: fsm.HandoffID(rapid.IntRange(1, 3).Draw(t, "handoff")), Reason: "operator"}
	if p := mc.m.parts[id]; p != nil && p.h != nil && rapid.IntRange(0, 9).Draw(t, "wrongHandoff") != 0 {
		it.Handoff = p.h.id
	}
	mc.apply(fsm.Abort{Items: []fsm.AbortItem{it}}, []bool{mc.m.abort(it)}, "controller")
}

func (mc *machine) Release(t *rapid.T) {
	rarely(t)
	mc.next()
	id := mc.inPhase(t, fsm.PhaseActive, fsm.PhaseActivating)
	p := mc.m.parts[id]
	w := mc.owner(t, p)
	inc := mc.inc(t, w)
	it := fsm.ReleaseItem{Partition: id, Epoch: mc.epoch(t, p), ThroughSeq: mc.seqAround(t, p)}
	if !mc.m.reporter(w, inc) {
		mc.apply(fsm.Release{Worker: w, Incarnation: inc, Items: []fsm.ReleaseItem{it}}, []bool{false}, "worker:"+string(w))
		return
	}
	mc.apply(fsm.Release{Worker: w, Incarnation: inc, Items: []fsm.ReleaseItem{it}}, []bool{mc.m.releaseCmd(w, it)}, "worker:"+string(w))
}

func (mc *machine) Checkpoint(t *rapid.T) {
	mc.next()
	id0 := mc.inPhase(t, fsm.PhaseActive, fsm.PhaseActivating, fsm.PhasePreparing)
	w := mc.owner(t, mc.m.parts[id0])
	inc := mc.inc(t, w)
	n := rapid.IntRange(1, 4).Draw(t, "checkpoints")
	var items []fsm.CheckpointItem
	for i := 0; i < n; i++ {
		id := id0
		if i > 0 {
			id = mc.inPhase(t, fsm.PhaseActive, fsm.PhaseActivating, fsm.PhasePreparing)
		}
		p := mc.m.parts[id]
		items = append(items, fsm.CheckpointItem{Partition: id, Epoch: mc.epoch(t, p), Seq: mc.seqAround(t, p)})
	}
	if !mc.m.reporter(w, inc) {
		mc.apply(fsm.Checkpoint{Worker: w, Incarnation: inc, Items: items}, []bool{false}, "worker:"+string(w))
		return
	}
	want := make([]bool, n)
	for i, it := range items {
		want[i] = mc.m.checkpoint(w, it)
	}
	mc.apply(fsm.Checkpoint{Worker: w, Incarnation: inc, Items: items}, want, "worker:"+string(w))
}

func (mc *machine) Cordon(t *rapid.T) {
	rarely(t)
	mc.next()
	w, on := mc.worker(t), rapid.Bool().Draw(t, "on")
	mc.apply(fsm.Cordon{Worker: w, On: on}, []bool{mc.m.cordon(w, on)}, "operator:test")
}

func (mc *machine) Pin(t *rapid.T) {
	rarely(t)
	mc.next()
	id := mc.part(t)
	var w fsm.WorkerID
	if rapid.Bool().Draw(t, "pin") {
		w = mc.worker(t)
	}
	mc.apply(fsm.Pin{Partition: id, Worker: w}, []bool{mc.m.pin(id, w)}, "operator:test")
}

func (mc *machine) Pause(t *rapid.T) {
	rarely(t)
	mc.next()
	on := rapid.Bool().Draw(t, "paused")
	mc.m.paused = on
	mc.apply(fsm.SetRebalance{Paused: on}, []bool{true}, "operator:test")
}

func (mc *machine) Tick(t *rapid.T) {
	mc.m.now += int64(rapid.IntRange(1, 3).Draw(t, "seconds")) * 1e9
}

// Retry re-proposes an applied command with its request id: the fsm must return
// the first outcome and emit nothing.
func (mc *machine) Retry(t *rapid.T) {
	if len(mc.applied) == 0 {
		t.Skip("nothing applied yet")
	}
	cmd := rapid.SampledFrom(mc.applied).Draw(t, "retry")
	mc.next()
	res := mc.s.Apply(mc.m.index, 1, cmd)
	mc.replica.Apply(mc.m.index, 1, cmd)
	if !res.Duplicate || len(res.Events) != 0 {
		t.Fatalf("retry of %s: duplicate=%v events=%d", cmd.RequestID, res.Duplicate, len(res.Events))
	}
}

// SnapshotRestore replaces the live state with its restored snapshot, which must
// encode byte for byte the same.
func (mc *machine) SnapshotRestore(t *rapid.T) {
	var a bytes.Buffer
	if err := mc.s.WriteSnapshot(&a); err != nil {
		t.Fatal(err)
	}
	raw := a.Bytes()
	s, err := fsm.ReadSnapshot(bytes.NewReader(raw), fsm.DefaultConfig())
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	var b bytes.Buffer
	if err := s.WriteSnapshot(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, b.Bytes()) {
		t.Fatal("snapshot→restore changed the encoding")
	}
	mc.s = s
}

// Replay folds the audit trail from empty (invariant 5), both in full and with
// checkpoints compacted to the latest per partition as the audit log keeps them.
func (mc *machine) Replay(t *rapid.T) {
	r, err := fsm.Replay(fsm.DefaultConfig(), mc.events)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if err := fsm.SameContent(r, mc.s); err != nil {
		t.Fatalf("replay differs: %v", err)
	}
	c, err := fsm.Replay(fsm.DefaultConfig(), compactCheckpoints(mc.events))
	if err != nil {
		t.Fatalf("compacted replay: %v", err)
	}
	if err := fsm.SameContent(c, mc.s); err != nil {
		t.Fatalf("compacted replay differs: %v", err)
	}
	lenient := fsm.NewHistoryChecker(false)
	if err := lenient.CheckAll(compactCheckpoints(mc.events)); err != nil {
		t.Fatalf("lenient history of compacted log: %v", err)
	}
}

// compactCheckpoints keeps only the last Checkpointed event of each partition.
func compactCheckpoints(evs []fsm.Event) []fsm.Event {
	last := map[fsm.PartitionID]int{}
	for i, ev := range evs {
		if cp, ok := ev.Body.(fsm.Checkpointed); ok {
			last[cp.Partition] = i
		}
	}
	var out []fsm.Event
	for i, ev := range evs {
		if cp, ok := ev.Body.(fsm.Checkpointed); ok && last[cp.Partition] != i {
			continue
		}
		out = append(out, ev)
	}
	return out
}

// Check runs after every action: the state's invariants, agreement with the
// model, and byte-identical replicas.
func (mc *machine) Check(t *rapid.T) {
	if err := mc.s.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if err := mc.m.diff(mc.s); err != nil {
		t.Fatalf("fsm and model disagree: %v", err)
	}
	var a, b bytes.Buffer
	_ = mc.s.WriteSnapshot(&a)
	_ = mc.replica.WriteSnapshot(&b)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("replicas fed the same commands encode differently")
	}
}

// seed starts from a few joined workers and declared partitions, so that the
// random steps are spent on handoffs rather than on set-up.
func (mc *machine) seed(t *rapid.T) {
	for i, n := 0, rapid.IntRange(1, 4).Draw(t, "seedWorkers"); i < n; i++ {
		mc.next()
		w := workerPool[i]
		mc.apply(fsm.Join{Worker: w}, []bool{mc.m.join(w, false)}, "worker:"+string(w))
	}
	specs := partitionPool[:rapid.IntRange(1, 8).Draw(t, "seedPartitions")]
	mc.next()
	mc.apply(fsm.Declare{Partitions: specs}, mc.m.declare(specs), "operator:test")
}

// TestStateMachine_AgreesWithModel drives the fsm with random, mostly valid
// command sequences (joins, expiries, replaced incarnations, handoffs interrupted
// at every phase, stale epochs, wrong workers) and checks invariants 1–6 after
// every step.
func TestStateMachine_AgreesWithModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mc := newMachine(t)
		mc.seed(t)
		t.Repeat(rapid.StateMachineActions(mc))
	})
}
