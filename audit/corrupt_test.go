package audit

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/batonhq/baton/fsm"
)

// storedLog is a closed log file that fuzz inputs corrupt copies of, and the
// entries that were not appended to it yet.
type storedLog struct {
	cfg  Config
	file []byte
	rest []fsm.Event
}

func newStoredLog(tb testing.TB) *storedLog {
	tb.Helper()
	sl := &storedLog{cfg: testConfig(40)}
	path := filepath.Join(tb.TempDir(), "audit.db")
	l, err := Open(path, sl.cfg)
	if err != nil {
		tb.Fatal(err)
	}
	e := workload(tb, 51, 160)
	gs := groups(e.Events)
	appendAll(tb, l, gs[:len(gs)-10])
	for _, g := range gs[len(gs)-10:] {
		sl.rest = append(sl.rest, g...)
	}
	if b := l.Bounds(); b.Base == 0 || b.Refs == 0 {
		tb.Fatalf("the stored log has no base or reference records: %+v", b)
	}
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	if sl.file, err = os.ReadFile(path); err != nil {
		tb.Fatal(err)
	}
	return sl
}

// storedEntry is one key of the file's current generation (or root bucket).
type storedEntry struct {
	bucket *bbolt.Bucket
	key    []byte
	value  []byte
}

// storedEntries lists every key/value of the root bucket and of the current
// generation's sub-buckets, in a fixed order.
func storedEntries(tx *bbolt.Tx) ([]storedEntry, error) {
	root := tx.Bucket(rootBucket)
	var out []storedEntry
	add := func(b *bbolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v != nil { // nil: a nested bucket
				out = append(out, storedEntry{b, k, v})
			}
			return nil
		})
	}
	if err := add(root); err != nil {
		return nil, err
	}
	bs, _, err := openCurrent(tx)
	if err != nil {
		return nil, err
	}
	for _, b := range []*bbolt.Bucket{bs.events, bs.cev, bs.part, bs.work, bs.hand, bs.typ, bs.time, bs.ckpt, bs.refs, bs.held, bs.info} {
		if err := add(b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// corrupt changes one stored entry of db: entry sel (modulo their number)
// gets value data (mode 0), is deleted (mode 1), gets a twin under key data
// (mode 2); or data is split into a key and a value put into the held bucket
// (mode 3), where Snap.WriteTo reads clock-prefixed events.
func corrupt(db *bbolt.DB, sel uint16, mode uint8, data []byte) error {
	return db.Update(func(tx *bbolt.Tx) error {
		es, err := storedEntries(tx)
		if err != nil {
			return err
		}
		e := es[int(sel)%len(es)]
		switch mode % 4 {
		case 0:
			return e.bucket.Put(e.key, data)
		case 1:
			return e.bucket.Delete(e.key)
		case 2:
			if len(data) == 0 {
				return nil
			}
			return e.bucket.Put(data, e.value)
		default:
			bs, _, err := openCurrent(tx)
			if err != nil || len(data) == 0 {
				return err
			}
			n := 1 + int(data[0])%len(data)
			return bs.held.Put(data[:n], data[n:])
		}
	})
}

// storedQueries cover every query plan: primary, partition, worker, handoff,
// type and time index, both directions.
func storedQueries() []Query {
	qs := []Query{
		{}, {FromIndex: 20, ToIndex: 120}, {Partition: "p001"}, {Partition: "p003", ToIndex: 90},
		{Worker: "w1"}, {Worker: "w2", FromIndex: 30}, {Handoff: 1}, {Handoff: 2},
		{Types: []fsm.EventType{fsm.EvClaimed}}, {Types: []fsm.EventType{fsm.EvCheckpointed, fsm.EvCommitted}},
		{Since: 1}, {Since: 1, Until: 1 << 62},
	}
	for _, q := range qs[:len(qs):len(qs)] {
		q.Desc = true
		qs = append(qs, q)
	}
	return qs
}

// checkPage fails unless every event of page matches q and comes after the
// previous one (prev) in q's order.
func checkPage(t *testing.T, q Query, page []fsm.Event, prev *fsm.Event) {
	t.Helper()
	timed := q.plan().timed
	for i := range page {
		ev := &page[i]
		if !q.matches(*ev) {
			t.Fatalf("query %+v returned %v, which does not match it", q, ev)
		}
		if prev != nil {
			order := cmp.Or(cmp.Compare(ev.Index, prev.Index), cmp.Compare(ev.Seq, prev.Seq))
			if timed {
				order = cmp.Or(cmp.Compare(ev.Time, prev.Time), order)
			}
			if q.Desc {
				order = -order
			}
			if order <= 0 {
				t.Fatalf("query %+v returned %v after %v", q, ev, prev)
			}
		}
		prev = ev
	}
}

// corruptOK fails unless err is nil, ErrCorrupt, or one of also.
func corruptOK(t *testing.T, op string, err error, also ...error) {
	t.Helper()
	if err == nil || errors.Is(err, ErrCorrupt) {
		return
	}
	for _, a := range also {
		if errors.Is(err, a) {
			return
		}
	}
	t.Fatalf("%s on a corrupted log: %v, want nil or ErrCorrupt", op, err)
}

// exercise runs every reader of stored bytes on l and checks each result.
func (sl *storedLog) exercise(t *testing.T, l *Log) {
	t.Helper()
	for _, q := range storedQueries() {
		var prev *fsm.Event
		for pages := 0; ; pages++ {
			if pages > 10_000 {
				t.Fatalf("query %+v does not terminate", q)
			}
			p, err := l.Query(ctxT(t), q)
			corruptOK(t, "Query", err)
			if err != nil {
				break
			}
			checkPage(t, q, p.Events, prev)
			if n := len(p.Events); n > 0 {
				prev = &p.Events[n-1]
			}
			if p.Next == nil {
				break
			}
			q.After = p.Next
		}
	}
	_, err := l.Replay()
	corruptOK(t, "Replay", err)
	if s, err := l.Snapshot(l.LastIndex()); err != nil {
		corruptOK(t, "Snapshot", err, ErrBelowBase)
	} else {
		var buf bytes.Buffer
		_, err := s.WriteTo(&buf)
		s.Release()
		// A generation pointer changed to another number reads as a
		// restore.
		corruptOK(t, "WriteTo", err, ErrSnapshotStale)
		if err == nil {
			if _, _, err := readSection(buf.Bytes()); err != nil {
				t.Fatalf("WriteTo wrote a section that does not read: %v", err)
			}
		}
	}
}

// FuzzStoredLog reads a log file whose stored keys and values were changed
// (log.go, writer.go, retention.go, query.go, snapshot.go: everything that
// reads bbolt: generation and counters, event keys and values, index keys,
// checkpoint pointers, reference marks, held events, the base state). The
// change is made under an open log (whose published view is then stale), and
// the file is then reopened. Open, Query, Replay, Snapshot/WriteTo and Append
// never panic and fail only with ErrCorrupt (Append also ErrConflict,
// Snapshot also ErrBelowBase), and every query result still matches its
// query and comes in its order.
func FuzzStoredLog(f *testing.F) {
	sl := newStoredLog(f)
	for sel := range uint16(40) {
		f.Add(sel*7, uint8(sel%4), []byte{0x01, 0x02, 0x03})
	}
	f.Add(uint16(0), uint8(0), []byte{})
	f.Add(uint16(3), uint8(0), fsm.EncodeEvent(fsm.Event{Meta: fsm.Meta{Index: 999}, Body: fsm.RebalanceSet{Paused: true}}))
	f.Fuzz(func(t *testing.T, sel uint16, mode uint8, data []byte) {
		path := filepath.Join(t.TempDir(), "audit.db")
		if err := os.WriteFile(path, sl.file, 0o600); err != nil {
			t.Fatal(err)
		}
		for round := range 2 {
			l, err := Open(path, sl.cfg)
			corruptOK(t, "Open", err)
			if err != nil {
				return
			}
			if round == 0 {
				if err := corrupt(l.db, sel, mode, data); err != nil {
					l.Close()
					t.Skipf("corrupt: %v", err) // e.g. a key bbolt refuses
				}
			}
			sl.exercise(t, l)
			if round == 0 {
				corruptOK(t, "Append", l.Append(sl.rest), ErrConflict)
				sl.exercise(t, l)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestCorruptStoredLog: every corruption the fuzzer found, as a named case.
// Each was a panic or a silent misreading before; now the operation that
// reads the damaged bytes fails with ErrCorrupt.
func TestCorruptStoredLog(t *testing.T) {
	t.Parallel()
	sl := newStoredLog(t)
	some := func(b *bbolt.Bucket) (k, v []byte) { return b.Cursor().First() }
	cases := []struct {
		name string
		// damage changes the current generation.
		damage func(bs *buckets) error
		// op reads the damage on the reopened log.
		op func(l *Log) error
	}{
		{"a short key in the events bucket (panicked in Open)",
			func(bs *buckets) error { return bs.events.Put([]byte{0, 0, 1}, []byte{1}) },
			nil},
		{"an event stored under another event's key (Query returned the other event)",
			func(bs *buckets) error {
				c := bs.events.Cursor()
				_, v1 := c.First()
				k2, _ := c.Next()
				return bs.events.Put(bytes.Clone(k2), bytes.Clone(v1))
			},
			func(l *Log) error { _, err := l.Query(ctxT(t), Query{Limit: MaxLimit}); return err }},
		{"a counter of the wrong length (read as 0)",
			func(bs *buckets) error { return bs.info.Put(infoTail, []byte{1, 2, 3}) },
			nil},
		{"a missing counter (read as 0)",
			func(bs *buckets) error { return bs.info.Delete(infoIndex) },
			nil},
		{"a base index that is not the base state's (Replay folded the reference records)",
			func(bs *buckets) error {
				base, err := getU64(bs.info, infoIndex)
				if err != nil {
					return err
				}
				return bs.info.Put(infoIndex, u64(base-1))
			},
			func(l *Log) error { _, err := l.Replay(); return err }},
		{"a checkpoint pointer that is not an event key (later checkpoints were dropped)",
			func(bs *buckets) error {
				p, _ := some(bs.ckpt)
				return bs.ckpt.Put(bytes.Clone(p), []byte{0xff})
			},
			func(l *Log) error {
				var p []byte
				if err := l.db.View(func(tx *bbolt.Tx) error {
					bs, _, err := openCurrent(tx)
					if err == nil {
						p, _ = some(bs.ckpt)
						p = bytes.Clone(p)
					}
					return err
				}); err != nil {
					return err
				}
				return l.Append([]fsm.Event{{Meta: fsm.Meta{Index: l.LastIndex() + 1},
					Body: fsm.Checkpointed{Partition: fsm.PartitionID(p), Worker: "w1", Epoch: 1, Seq: 1 << 40}}})
			}},
		// Version 2's checkpoint records: read through the pointer by a
		// partition query, and as events by every walk of the log.
		{"a checkpoint pointer at a key with no record",
			func(bs *buckets) error {
				p, _ := some(bs.ckpt)
				return bs.ckpt.Put(bytes.Clone(p), evKey(1<<40, 0))
			},
			func(l *Log) error {
				p, err := firstCheckpointed(l)
				if err != nil {
					return err
				}
				_, err = l.Query(ctxT(t), Query{Partition: p})
				return err
			}},
		{"a checkpoint record holding another event",
			func(bs *buckets) error {
				k, _ := some(bs.cev)
				idx, seq := splitKey(k)
				return bs.cev.Put(bytes.Clone(k), fsm.EncodeEvent(fsm.Event{Meta: fsm.Meta{Index: idx, Seq: seq},
					Body: fsm.RebalanceSet{Paused: true}}))
			},
			func(l *Log) error { _, err := l.Query(ctxT(t), Query{Limit: MaxLimit}); return err }},
		{"a record that is also an index entry",
			func(bs *buckets) error {
				p, key := some(bs.ckpt)
				return bs.part.Put(append(partitionPrefix(fsm.PartitionID(p)), key...), []byte{})
			},
			func(l *Log) error {
				p, err := firstCheckpointed(l)
				if err != nil {
					return err
				}
				_, err = l.Query(ctxT(t), Query{Partition: p})
				return err
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.db")
			if err := os.WriteFile(path, sl.file, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := bbolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bbolt.Tx) error {
				bs, _, err := openCurrent(tx)
				if err != nil {
					return err
				}
				return tc.damage(bs)
			})
			if cerr := db.Close(); err != nil || cerr != nil {
				t.Fatal(err, cerr)
			}
			l, err := Open(path, sl.cfg)
			if tc.op == nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open = %v, want ErrCorrupt", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer l.Close()
			if err := tc.op(l); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
}

// firstCheckpointed returns the first partition with a checkpoint record.
func firstCheckpointed(l *Log) (fsm.PartitionID, error) {
	var p fsm.PartitionID
	err := l.db.View(func(tx *bbolt.Tx) error {
		bs, _, err := openCurrent(tx)
		if err == nil {
			k, _ := bs.ckpt.Cursor().First()
			p = fsm.PartitionID(k)
		}
		return err
	})
	return p, err
}

// TestWriteToDamagedGeneration: WriteTo reported a generation pointer that is
// no longer 8 bytes as ErrSnapshotStale (a restore, which raft handles by
// taking another snapshot) instead of ErrCorrupt. Found by FuzzStoredLog.
func TestWriteToDamagedGeneration(t *testing.T) {
	t.Parallel()
	l := openLog(t, DefaultConfig())
	appendAll(t, l, groups(workload(t, 52, 40).Events))
	snap, err := l.Snapshot(l.LastIndex())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	if err := l.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(rootBucket).Put(keyGen, []byte{1, 2, 3})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.WriteTo(io.Discard); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("WriteTo = %v, want ErrCorrupt", err)
	}
}
