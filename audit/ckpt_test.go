package audit

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/batonhq/baton/fsm"
)

// indexModel pages through q the way version 1 of the log did, when every
// retained event, the latest checkpoints included, had its index entries:
// it lists the plan's entries of events (the retained events) in the plan's
// order and cuts pages at q.Limit matches or maxScan visited entries, with
// Next at the last visited entry when entries remain. The checkpoint records
// must merge back into exactly these pages.
func indexModel(events []fsm.Event, q Query, maxScan int) []Page {
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	p := q.plan()
	type entry struct {
		k  []byte
		ev fsm.Event
	}
	var es []entry
	for _, ev := range events {
		key := evKey(ev.Index, ev.Seq)
		var ks [][]byte
		switch {
		case p.timed:
			ks = append(ks, append(timePrefix(ev.Time), key...))
		case bytes.Equal(p.bucket, bEvents):
			ks = append(ks, key)
		case bytes.Equal(p.bucket, bHandoff) && ev.Handoff() == q.Handoff,
			bytes.Equal(p.bucket, bType) && ev.Type() == q.Types[0],
			bytes.Equal(p.bucket, bPartition) && slices.Contains(ev.Partitions(), q.Partition),
			bytes.Equal(p.bucket, bWorker) && slices.Contains(ev.Workers(), q.Worker):
			ks = append(ks, append(bytes.Clone(p.prefix), key...))
		}
		for _, k := range ks {
			if bytes.Compare(k, p.lo) >= 0 && bytes.Compare(k, p.hi) <= 0 {
				es = append(es, entry{k, ev})
			}
		}
	}
	slices.SortFunc(es, func(a, b entry) int { return bytes.Compare(a.k, b.k) })
	if q.Desc {
		slices.Reverse(es)
	}
	var pages []Page
	i := 0
	for {
		var page Page
		scanned := 0
		for ; i < len(es); i++ {
			scanned++
			if q.matches(es[i].ev) {
				page.Events = append(page.Events, es[i].ev)
			}
			if len(page.Events) == q.Limit || scanned == maxScan {
				if i+1 < len(es) {
					page.Next = p.cursorAt(es[i].k)
				}
				i++
				break
			}
		}
		pages = append(pages, page)
		if page.Next == nil {
			return pages
		}
	}
}

// checkpointLog returns a log holding events (a checkpoint-heavy history:
// every partition's latest checkpoint among the other events) and the events
// it retains.
func checkpointLog(tb testing.TB, events []fsm.Event, maxScan int) (*Log, []fsm.Event) {
	tb.Helper()
	cfg := testConfig(1_000_000)
	cfg.MaxScan = maxScan
	l := openLog(tb, cfg)
	appendAll(tb, l, groups(events))
	return l, compacted(events)
}

// TestCheckpointRecordsMergeIntoEveryPlan: queries of every plan, in both
// directions, with small and large pages and scan bounds, return page for
// page what version 1 returned when the latest checkpoints were indexed
// events (indexModel): same events, same order, same Next cursors. A merge
// that dropped, duplicated or misordered a checkpoint record, or paged
// differently, fails here.
func TestCheckpointRecordsMergeIntoEveryPlan(t *testing.T) {
	t.Parallel()
	events := workload(t, 61, 350).Events
	want := compacted(events)
	// Pick the history's checkpoints worth asking about: the newest event
	// overall is a checkpoint, some partition's checkpoint is its only event
	// in an index range, and a worker with checkpoints.
	var ckpts []fsm.Event
	for _, ev := range want {
		if ev.Type() == fsm.EvCheckpointed {
			ckpts = append(ckpts, ev)
		}
	}
	if len(ckpts) < 10 {
		t.Fatalf("only %d checkpoint records", len(ckpts))
	}
	first, mid, last := ckpts[0], ckpts[len(ckpts)/2], ckpts[len(ckpts)-1]
	cp := func(ev fsm.Event) fsm.Checkpointed { return ev.Body.(fsm.Checkpointed) }
	var handoff fsm.HandoffID
	for _, ev := range want {
		if h := ev.Handoff(); h != 0 && slices.Contains(ev.Partitions(), cp(mid).Partition) {
			handoff = h
		}
	}
	if handoff == 0 {
		t.Fatal("no handoff of a checkpointed partition")
	}
	queries := []struct {
		name string
		q    Query
	}{
		{"primary", Query{}},
		{"primary, index range around a checkpoint", Query{FromIndex: mid.Index - 5, ToIndex: mid.Index + 5}},
		{"primary, exactly a checkpoint's index", Query{FromIndex: mid.Index, ToIndex: mid.Index}},
		{"partition", Query{Partition: cp(mid).Partition}},
		{"partition, range up to its checkpoint", Query{Partition: cp(mid).Partition, ToIndex: mid.Index}},
		{"partition, range below its checkpoint", Query{Partition: cp(mid).Partition, ToIndex: mid.Index - 1}},
		{"partition, range from its checkpoint", Query{Partition: cp(last).Partition, FromIndex: last.Index}},
		{"partition and checkpoint type", Query{Partition: cp(first).Partition, Types: []fsm.EventType{fsm.EvCheckpointed}}},
		{"partition and other types", Query{Partition: cp(first).Partition, Types: []fsm.EventType{fsm.EvClaimed, fsm.EvCommitted}}},
		{"worker", Query{Worker: cp(mid).Worker}},
		{"worker, index range", Query{Worker: cp(mid).Worker, FromIndex: mid.Index - 30, ToIndex: mid.Index + 30}},
		{"worker and checkpoint type", Query{Worker: cp(last).Worker, Types: []fsm.EventType{fsm.EvCheckpointed}}},
		{"worker and time", Query{Worker: cp(mid).Worker, Since: mid.Time - 30e9, Until: mid.Time}},
		{"handoff", Query{Handoff: handoff}},
		{"checkpoint type", Query{Types: []fsm.EventType{fsm.EvCheckpointed}}},
		{"checkpoint type, index range", Query{Types: []fsm.EventType{fsm.EvCheckpointed}, FromIndex: mid.Index, ToIndex: last.Index - 1}},
		{"checkpoint type, repeated", Query{Types: []fsm.EventType{fsm.EvCheckpointed, fsm.EvCheckpointed}}},
		{"another type", Query{Types: []fsm.EventType{fsm.EvActivated}}},
		{"checkpoint and another type (primary)", Query{Types: []fsm.EventType{fsm.EvCheckpointed, fsm.EvActivated}}},
		{"time range", Query{Since: first.Time, Until: mid.Time}},
		{"time, from a checkpoint's time", Query{Since: mid.Time}},
		{"time and checkpoint type (type plan)", Query{Since: mid.Time, Types: []fsm.EventType{fsm.EvCheckpointed}}},
		{"time and two types", Query{Until: mid.Time, Types: []fsm.EventType{fsm.EvCheckpointed, fsm.EvClaimed}}},
		{"time and index range", Query{Since: first.Time, FromIndex: mid.Index - 20, ToIndex: mid.Index + 20}},
		{"unknown partition", Query{Partition: "nope"}},
	}
	logs := map[int]*Log{}
	for _, scan := range []int{1, 2, 50_000} {
		logs[scan], _ = checkpointLog(t, events, scan)
	}
	for _, tt := range queries {
		t.Run(tt.name, func(t *testing.T) {
			for _, scan := range []int{1, 2, 50_000} {
				for _, desc := range []bool{false, true} {
					for _, limit := range []int{1, 2, 0} {
						if scan < 10 && limit != 0 && (scan == 1 || limit != 1) {
							continue // the scan bound cuts most pages anyway
						}
						q := tt.q
						q.Desc, q.Limit = desc, limit
						checkPages(t, logs[scan], q, indexModel(want, q, scan))
					}
				}
			}
		})
	}
}

// checkPages pages through q on l and fails unless every page is the one
// want has (events and Next).
func checkPages(t *testing.T, l *Log, q Query, want []Page) {
	t.Helper()
	for i := 0; ; i++ {
		page, err := l.Query(ctxT(t), q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		if i >= len(want) {
			t.Fatalf("%+v: more than the %d pages expected", q, len(want))
		}
		what := fmt.Sprintf("scan %d, %+v, page %d", l.cfg.MaxScan, q, i)
		sameEvents(t, what, page.Events, want[i].Events)
		if (page.Next == nil) != (want[i].Next == nil) || (page.Next != nil && *page.Next != *want[i].Next) {
			t.Fatalf("%s: next %v, want %v", what, page.Next, want[i].Next)
		}
		if page.Next == nil {
			if i != len(want)-1 {
				t.Fatalf("%+v: %d pages, want %d", q, i+1, len(want))
			}
			return
		}
		q.After = page.Next
	}
}

// TestBoundsCountCheckpointRecords: a checkpoint record can be the oldest or
// the newest event retained, and counts like any event.
func TestBoundsCountCheckpointRecords(t *testing.T) {
	t.Parallel()
	ckpt := func(idx fsm.RaftIndex, seq uint32, p fsm.PartitionID, through fsm.StreamSeq) fsm.Event {
		return fsm.Event{Meta: fsm.Meta{Index: idx, Seq: seq}, Body: fsm.Checkpointed{Partition: p, Worker: "w1", Epoch: 1, Seq: through}}
	}
	other := func(idx fsm.RaftIndex) fsm.Event {
		return fsm.Event{Meta: fsm.Meta{Index: idx}, Body: fsm.RebalanceSet{Paused: true}}
	}
	l := openLog(t, DefaultConfig())
	steps := []struct {
		name   string
		append []fsm.Event
		want   Bounds
	}{
		{"a checkpoint first", []fsm.Event{ckpt(3, 0, "p1", 1)}, Bounds{First: 3, Last: 3, Count: 1}},
		{"an event after it", []fsm.Event{other(4)}, Bounds{First: 3, Last: 4, Count: 2}},
		{"a checkpoint last", []fsm.Event{ckpt(5, 0, "p2", 1)}, Bounds{First: 3, Last: 5, Count: 3}},
		{"the first checkpoint replaced", []fsm.Event{ckpt(6, 0, "p1", 2)}, Bounds{First: 4, Last: 6, Count: 3}},
		{"an older checkpoint ignored", []fsm.Event{ckpt(5, 1, "p1", 9)}, Bounds{First: 4, Last: 6, Count: 3}},
		{"two of a partition in one entry", []fsm.Event{ckpt(7, 0, "p2", 2), ckpt(7, 1, "p2", 3)}, Bounds{First: 4, Last: 7, Count: 3}},
	}
	for _, s := range steps {
		if err := l.Append(s.append); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if b := l.Bounds(); b != s.want {
			t.Fatalf("%s: bounds %+v, want %+v", s.name, b, s.want)
		}
		if l.LastIndex() != s.want.Last {
			t.Fatalf("%s: last index %d", s.name, l.LastIndex())
		}
	}
	got := all(t, l)
	if len(got) != 3 || got[0].Index != 4 || got[1].Index != 6 || got[2].Index != 7 || got[2].Seq != 1 {
		t.Fatalf("retained %v", got)
	}
	// A different event at a checkpoint record's key conflicts, the same one
	// is skipped.
	if err := l.Append([]fsm.Event{other(6)}); !errors.Is(err, ErrConflict) {
		t.Fatalf("another event at a checkpoint's key: %v, want ErrConflict", err)
	}
	if err := l.Append([]fsm.Event{ckpt(6, 0, "p1", 3)}); !errors.Is(err, ErrConflict) {
		t.Fatalf("another checkpoint at a checkpoint's key: %v, want ErrConflict", err)
	}
	if err := l.Append([]fsm.Event{ckpt(6, 0, "p1", 2)}); err != nil {
		t.Fatalf("the same checkpoint again: %v", err)
	}
}

// TestSnapshotKeepsReplacedCheckpoints: checkpoint records replaced after a
// snapshot was taken are written as they were when it was taken, those
// replaced before are not, and the section restores to the content of that
// moment.
func TestSnapshotKeepsReplacedCheckpoints(t *testing.T) {
	t.Parallel()
	const workers, parts = 3, 30
	setup, rounds := checkpointRounds(t, workers, parts, 4*workers)
	a, b := openLog(t, DefaultConfig()), openLog(t, DefaultConfig())
	appendAll(t, a, groups(setup))
	appendAll(t, a, rounds[:workers])
	// One snapshot open across the first replacement of every record, one
	// taken after it and open across the second.
	s1, err := a.Snapshot(a.LastIndex())
	if err != nil {
		t.Fatal(err)
	}
	then1 := dump(t, a)
	appendAll(t, a, rounds[workers:2*workers])
	s2, err := a.Snapshot(a.LastIndex())
	if err != nil {
		t.Fatal(err)
	}
	then2 := dump(t, a)
	appendAll(t, a, rounds[2*workers:])
	for i, tc := range []struct {
		snap *Snap
		then string
	}{{s1, then1}, {s2, then2}} {
		var buf bytes.Buffer
		if _, err := tc.snap.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		tc.snap.Release()
		if err := b.Restore(&buf); err != nil {
			t.Fatalf("snapshot %d: %v", i+1, err)
		}
		if got := dump(t, b); got != tc.then {
			t.Fatalf("snapshot %d restores to other content than the log held when it was taken", i+1)
		}
		if n := len(queryAll(t, b, Query{Types: []fsm.EventType{fsm.EvCheckpointed}})); n != parts {
			t.Fatalf("snapshot %d: %d checkpoint records, want %d", i+1, n, parts)
		}
	}
}

// TestOpenRefusesOtherVersions: a file of another layout version (version 1
// kept checkpoints among the indexed events) is refused, not misread.
func TestOpenRefusesOtherVersions(t *testing.T) {
	t.Parallel()
	for _, v := range []uint64{1, 3} {
		path := filepath.Join(t.TempDir(), "audit.db")
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bbolt.Tx) error {
			root, err := tx.CreateBucket(rootBucket)
			if err != nil {
				return err
			}
			return root.Put(keyVersion, u64(v))
		})
		if cerr := db.Close(); err != nil || cerr != nil {
			t.Fatal(err, cerr)
		}
		_, err = Open(path, DefaultConfig())
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("format version %d", v)) {
			t.Fatalf("Open of a version %d file = %v, want ErrCorrupt naming the version", v, err)
		}
	}
}
