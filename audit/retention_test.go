package audit

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/batonhq/baton/fsm"
)

// step runs one sim command and appends its events (one raft entry) to every
// log; it returns them.
func (s *sim) step1(tb testing.TB, logs ...*Log) []fsm.Event {
	tb.Helper()
	before := len(s.e.Events)
	s.run(1)
	evs := s.e.Events[before:]
	if len(evs) > 0 {
		for _, l := range logs {
			appendAll(tb, l, [][]fsm.Event{evs})
		}
	}
	return evs
}

// baseState decodes the log's current base state.
func baseState(tb testing.TB, l *Log) *fsm.State {
	tb.Helper()
	s, err := fsm.ReadSnapshot(bytes.NewReader(l.view.Load().base), l.cfg.FSM)
	if err != nil {
		tb.Fatalf("base state: %v", err)
	}
	return s
}

// checkRefs checks that every event at or below the base index explains the
// base state, and that every part of the base state is explained by a
// retained, queryable event.
func checkRefs(tb testing.TB, l *Log) {
	tb.Helper()
	b := l.Bounds()
	if b.Base == 0 {
		return
	}
	base := baseState(tb, l)
	refs := queryAll(tb, l, Query{ToIndex: b.Base})
	for _, ev := range refs {
		if !isRef(base, ev) {
			tb.Fatalf("event %v at or below the base %d explains nothing", ev, b.Base)
		}
	}
	if len(refs) != b.Refs {
		tb.Fatalf("%d events at or below the base, bounds say %d refs", len(refs), b.Refs)
	}
	find := func(what string, q Query, types ...fsm.EventType) {
		tb.Helper()
		q.Types = types
		if got := queryAll(tb, l, q); len(got) != 1 {
			tb.Fatalf("%s: %d reference records for %+v", what, len(got), q)
		}
	}
	for _, p := range base.Partitions("", 0) {
		if p.DeclaredIndex <= b.Base {
			find("declared "+string(p.ID), Query{Partition: p.ID, FromIndex: p.DeclaredIndex, ToIndex: p.DeclaredIndex},
				fsm.EvPartitionsDeclared)
		}
		if p.OwnerIndex != 0 && p.OwnerIndex <= b.Base {
			find("owner of "+string(p.ID), Query{Partition: p.ID, FromIndex: p.OwnerIndex, ToIndex: p.OwnerIndex},
				fsm.EvClaimed, fsm.EvCommitted)
		}
		if h := p.PendingHandoff; h != nil && h.PreparedIndex <= b.Base {
			find("handoff "+h.ID.String(), Query{Handoff: h.ID, FromIndex: h.PreparedIndex, ToIndex: h.PreparedIndex},
				fsm.EvPrepared)
		}
	}
	for _, w := range base.Workers() {
		idx := fsm.RaftIndex(w.Incarnation)
		find("incarnation of "+string(w.ID), Query{Worker: w.ID, FromIndex: idx, ToIndex: idx}, fsm.EvWorkerJoined)
	}
}

// TestRetentionKeepsReplayExact trims aggressively and checks invariant 5 and
// the reference records along the way.
func TestRetentionKeepsReplayExact(t *testing.T) {
	t.Parallel()
	cfg := testConfig(60)
	l := openLog(t, cfg)
	s := newSim(t, 11)
	largest := 0
	for i := range 2500 {
		largest = max(largest, len(s.step1(t, l)))
		if i%100 == 99 {
			checkReplay(t, l, s.e.State)
			checkRefs(t, l)
		}
		b := l.Bounds()
		if tail := b.Count - b.Refs; tail > cfg.MaxEvents+cfg.countSlack()+largest {
			t.Fatalf("%d events above the base, bound %d", tail, cfg.MaxEvents+cfg.countSlack())
		}
	}
	b := l.Bounds()
	if b.Base == 0 || b.Refs == 0 {
		t.Fatalf("nothing trimmed or no reference records: %+v", b)
	}
	t.Logf("bounds %+v", b)
	checkReplay(t, l, s.e.State)
	checkRefs(t, l)
}

func TestRetentionByAge(t *testing.T) {
	t.Parallel()
	cfg := testConfig(1_000_000)
	cfg.MaxAge = 30 * time.Second
	l := openLog(t, cfg)
	s := newSim(t, 12)
	for i := range 2000 {
		s.step1(t, l)
		if i%200 == 199 {
			checkReplay(t, l, s.e.State)
			checkRefs(t, l)
		}
	}
	b := l.Bounds()
	if b.Base == 0 {
		t.Fatalf("nothing trimmed: %+v", b)
	}
	tail := queryAll(t, l, Query{FromIndex: b.Base + 1})
	newest := tail[len(tail)-1].Time
	if oldest := tail[0]; oldest.Index != b.Last && olderBy(oldest.Time, newest, uint64(cfg.MaxAge+cfg.ageSlack())) {
		t.Fatalf("oldest event %v is more than %s older than the newest", oldest, cfg.MaxAge+cfg.ageSlack())
	}
	checkReplay(t, l, s.e.State)
}

// TestRetentionIsDeterministic: replicas trim at the same points whatever the
// batching of Append and whether a snapshot is open.
func TestRetentionIsDeterministic(t *testing.T) {
	t.Parallel()
	e := workload(t, 13, 2000)
	cfg := testConfig(70)
	cfg.MaxAge = time.Minute
	a, b := openLog(t, cfg), openLog(t, cfg)
	appendAll(t, a, groups(e.Events))
	r := rand.New(rand.NewPCG(13, 1))
	bs := batches(r, e.Events)
	var snap *Snap
	for i, batch := range bs {
		if i == len(bs)/4 {
			var err error
			if snap, err = b.Snapshot(batch[0].Index - 1); err != nil {
				t.Fatal(err)
			}
		}
		if i == len(bs)/2 {
			snap.Release()
		}
		appendAll(t, b, [][]fsm.Event{batch})
	}
	if dump(t, a) != dump(t, b) {
		t.Fatal("the same events in other batches left different content")
	}
	if a.Bounds() != b.Bounds() {
		t.Fatalf("bounds %+v vs %+v", a.Bounds(), b.Bounds())
	}
	checkReplay(t, b, e.State)
}
