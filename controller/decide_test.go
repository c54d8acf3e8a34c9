package controller

import (
	"fmt"
	"testing"
	"time"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/fsm/fsmtest"
)

// sim drives decide against a real fsm state with simulated workers that
// activate and drain at once, so that tests read as scenarios over the
// controller's synchronous core.
type sim struct {
	t   *testing.T
	env *fsmtest.Env
	cfg Config
	now time.Time
	// dead workers neither activate nor drain.
	dead map[fsm.WorkerID]bool
	// thr is the controller's handoff throttle, made from cfg at the first
	// round.
	thr *throttle
}

func newSim(t *testing.T) *sim {
	cfg := DefaultConfig()
	return &sim{t: t, env: fsmtest.New(t), cfg: cfg, now: time.Unix(1000, 0), dead: map[fsm.WorkerID]bool{}}
}

func (s *sim) apply(actor string, b fsm.Body) fsm.Result {
	s.t.Helper()
	s.env.Now = s.now.UnixNano()
	return s.env.Apply(fsm.Command{Header: fsm.Header{Actor: actor}, Body: b})
}

func (s *sim) join(ws ...fsm.WorkerID) {
	for _, w := range ws {
		s.apply("worker:"+string(w), fsm.Join{Worker: w, Replace: true})
	}
}

func (s *sim) declare(n int) {
	var specs []fsm.PartitionSpec
	for i := 0; i < n; i++ {
		specs = append(specs, fsm.PartitionSpec{ID: fsm.PartitionID(fmt.Sprintf("p%03d", i)), Subjects: []string{fmt.Sprintf("o.%d.>", i)}})
	}
	s.apply("operator:t", fsm.Declare{Partitions: specs})
}

// round runs decide once and applies its commands; it returns the decision.
func (s *sim) round(stable bool) decision {
	s.t.Helper()
	if s.thr == nil {
		s.thr = newThrottle(s.cfg)
	}
	v := readView(s.env.State)
	s.thr.observe(v, s.now)
	d, err := decide(s.cfg, v, s.now, stable, s.thr.limit)
	if err != nil {
		s.t.Fatal(err)
	}
	if len(d.commits) > 0 {
		s.apply("controller", fsm.Commit{Items: d.commits})
	}
	if len(d.forces) > 0 {
		s.apply("controller", fsm.ForceCommit{Items: d.forces})
	}
	if len(d.claims) > 0 {
		s.apply("controller", fsm.Claim{Items: d.claims})
	}
	if len(d.prepares) > 0 {
		s.apply("controller", fsm.Prepare{Items: d.prepares})
	}
	return d
}

// workersAct makes every live worker activate what it was given and drain what
// it must hand off, through its checkpoint.
func (s *sim) workersAct() {
	for _, w := range s.env.State.Workers() {
		if s.dead[w.ID] || w.State == fsm.WorkerGone {
			continue
		}
		a, _ := s.env.State.Assignment(w.ID)
		var act []fsm.ActivateItem
		var drain []fsm.DrainItem
		for _, p := range a.Partitions {
			switch p.Phase {
			case fsm.PhaseActivating:
				act = append(act, fsm.ActivateItem{Partition: p.Partition, Epoch: p.Epoch})
			case fsm.PhasePreparing:
				drain = append(drain, fsm.DrainItem{Handoff: p.Handoff, Partition: p.Partition, Epoch: p.Epoch, ThroughSeq: p.Checkpoint})
			}
		}
		if len(act) > 0 {
			s.apply("worker:"+string(w.ID), fsm.Activate{Worker: w.ID, Incarnation: w.Incarnation, Items: act})
		}
		if len(drain) > 0 {
			s.apply("worker:"+string(w.ID), fsm.DrainReport{Worker: w.ID, Incarnation: w.Incarnation, Items: drain})
		}
	}
}

// settle alternates rounds and worker actions until nothing changes; it
// returns the number of rounds that proposed something.
func (s *sim) settle() int {
	s.t.Helper()
	busy := 0
	for i := 0; i < 200; i++ {
		before := s.env.Index()
		if d := s.round(true); !d.empty() {
			busy++
		}
		s.workersAct()
		if s.env.Index() == before {
			return busy
		}
	}
	s.t.Fatal("controller did not settle in 200 rounds")
	return busy
}

func (s *sim) owners() map[fsm.WorkerID]int {
	out := map[fsm.WorkerID]int{}
	for _, p := range s.env.State.Partitions("", 0) {
		if p.Phase != fsm.PhaseActive {
			s.t.Fatalf("partition %s is %s after settling", p.ID, p.Phase)
		}
		out[p.Owner]++
	}
	return out
}

func count(evs []fsm.Event, t fsm.EventType) int {
	n := 0
	for _, ev := range evs {
		if ev.Type() == t {
			n++
		}
	}
	return n
}

func TestDecide_ClaimsEverythingBalanced(t *testing.T) {
	s := newSim(t)
	s.join("w1", "w2", "w3")
	s.declare(30)
	s.settle()
	for w, n := range s.owners() {
		if n != 10 {
			t.Fatalf("%s owns %d, want 10", w, n)
		}
	}
	if got := count(s.env.Events, fsm.EvPrepared); got != 0 {
		t.Fatalf("%d handoffs for an initial claim", got)
	}
}

func TestDecide_HoldsClaimsWhileMembershipStabilizes(t *testing.T) {
	s := newSim(t)
	s.join("w1")
	s.declare(5)
	d := s.round(false)
	if len(d.claims) != 0 {
		t.Fatalf("claimed %d partitions while stabilizing", len(d.claims))
	}
	if len(d.notes) != 5 || d.notes[0].Action != "hold" {
		t.Fatalf("notes %+v", d.notes)
	}
}

func TestDecide_ScaleOutMovesOnlyWhatTheBoundNeeds(t *testing.T) {
	s := newSim(t)
	s.join("w1", "w2")
	s.declare(40)
	s.settle()
	before := count(s.env.Events, fsm.EvCommitted)
	s.join("w3", "w4")
	s.settle()
	moves := count(s.env.Events, fsm.EvCommitted) - before
	for w, n := range s.owners() {
		if n != 10 {
			t.Fatalf("%s owns %d, want 10", w, n)
		}
	}
	if moves != 20 {
		t.Fatalf("%d moves, the minimum is 20", moves)
	}
}

func TestDecide_DeadWorkerPartitionsForcedFromCheckpoint(t *testing.T) {
	s := newSim(t)
	s.join("w1", "w2")
	s.declare(6)
	s.settle()
	inc := s.env.Incarnation("w1")
	s.dead["w1"] = true
	s.apply("controller", fsm.Expire{Worker: "w1", Incarnation: inc})
	s.settle()
	for w, n := range s.owners() {
		if w != "w2" || n != 6 {
			t.Fatalf("after w1 died: %s owns %d", w, n)
		}
	}
	forced := 0
	for _, ev := range s.env.Events {
		if c, ok := ev.Body.(fsm.Committed); ok && c.Forced {
			forced++
			if c.ForceReason != fsm.ForceOwnerLeft {
				t.Fatalf("forced with %s", c.ForceReason)
			}
		}
	}
	if forced != 3 {
		t.Fatalf("%d forced commits, want 3", forced)
	}
}

func TestDecide_DrainDeadlineForcesAStuckOwner(t *testing.T) {
	s := newSim(t)
	s.join("w1")
	s.declare(4)
	s.settle()
	s.join("w2")
	s.dead["w1"] = true // alive but never drains
	s.round(true)
	if n := len(s.env.State.Handoffs()); n != 2 {
		t.Fatalf("%d handoffs prepared, want 2", n)
	}
	s.now = s.now.Add(s.cfg.DrainTimeout - time.Second)
	if d := s.round(true); len(d.forces) != 0 {
		t.Fatal("forced before the deadline")
	}
	s.now = s.now.Add(2 * time.Second)
	d := s.round(true)
	if len(d.forces) != 2 || d.forces[0].Reason != fsm.ForceDrainDeadline {
		t.Fatalf("forces %+v", d.forces)
	}
}

func TestDecide_ThrottlesHandoffs(t *testing.T) {
	s := newSim(t)
	s.cfg.MaxHandoffs = 3
	s.cfg.MaxHandoffsPerWorker = 2
	s.cfg.MaxHandoffsPerWorkerCeiling = 2
	s.join("w1")
	s.declare(12)
	s.settle()
	s.join("w2", "w3")
	d := s.round(true)
	// w1 is the source of every move: the per-worker bound holds it to 2.
	if len(d.prepares) != 2 {
		t.Fatalf("%d prepares, want 2 (per-worker bound)", len(d.prepares))
	}
	held := 0
	for _, n := range d.notes {
		if n.Action == "hold" {
			held++
		}
	}
	if held == 0 {
		t.Fatal("no throttled move noted")
	}
}

func TestDecide_PauseHoldsRebalancingButNotLeaving(t *testing.T) {
	s := newSim(t)
	s.join("w1", "w2")
	s.declare(8)
	s.settle()
	s.apply("operator:t", fsm.SetRebalance{Paused: true})
	s.join("w3")
	if d := s.round(true); len(d.prepares) != 0 {
		t.Fatalf("rebalanced %d partitions while paused", len(d.prepares))
	}
	s.apply("worker:w1", fsm.Leave{Worker: "w1", Incarnation: s.env.Incarnation("w1")})
	s.settle()
	if _, ok := s.env.State.Worker("w1"); ok {
		t.Fatal("w1 did not finish leaving")
	}
	owners := s.owners()
	if owners["w1"] != 0 || owners["w2"]+owners["w3"] != 8 {
		t.Fatalf("owners %v", owners)
	}
}

func TestDecide_LastWorkerLeavingReleasesAtDrainPoint(t *testing.T) {
	s := newSim(t)
	s.join("w1")
	s.declare(3)
	s.settle()
	s.apply("worker:w1", fsm.Checkpoint{Worker: "w1", Incarnation: s.env.Incarnation("w1"),
		Items: []fsm.CheckpointItem{{Partition: "p000", Epoch: 1, Seq: 42}}})
	s.apply("worker:w1", fsm.Leave{Worker: "w1", Incarnation: s.env.Incarnation("w1")})
	s.settle()
	// w1 has left; it stays known (gone) as a lingerer of the released
	// partitions until a next owner activates them.
	if w, ok := s.env.State.Worker("w1"); ok && w.State != fsm.WorkerGone {
		t.Fatalf("w1 is %s after releasing everything", w.State)
	}
	p := s.env.Partition("p000")
	if p.Phase != fsm.PhaseUnassigned || p.Checkpoint != 42 {
		t.Fatalf("p000: %v", p.Partition)
	}
}

func TestDecide_CordonEmptiesWorker(t *testing.T) {
	s := newSim(t)
	s.join("w1", "w2")
	s.declare(10)
	s.settle()
	s.apply("operator:t", fsm.Cordon{Worker: "w2", On: true})
	s.settle()
	if o := s.owners(); o["w2"] != 0 || o["w1"] != 10 {
		t.Fatalf("owners after cordon %v", o)
	}
	s.apply("operator:t", fsm.Cordon{Worker: "w2", On: false})
	s.settle()
	if o := s.owners(); o["w2"] != 5 {
		t.Fatalf("owners after uncordon %v", o)
	}
}
