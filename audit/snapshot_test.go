package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/batonhq/baton/fsm"
)

// section writes a snapshot of l at upTo and releases it.
func section(tb testing.TB, l *Log, upTo fsm.RaftIndex) []byte {
	tb.Helper()
	s, err := l.Snapshot(upTo)
	if err != nil {
		tb.Fatalf("snapshot: %v", err)
	}
	defer s.Release()
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	if err != nil {
		tb.Fatalf("write snapshot: %v", err)
	}
	if n != int64(buf.Len()) {
		tb.Fatalf("WriteTo reported %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

// generations counts the generation buckets in the file.
func generations(tb testing.TB, l *Log) int {
	tb.Helper()
	n := 0
	if err := l.db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			if name[0] == 'g' {
				n++
			}
			return nil
		})
	}); err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	cfg := testConfig(80)
	a, b := openLog(t, cfg), openLog(t, cfg)
	s := newSim(t, 21)
	for range 1500 {
		s.step1(t, a)
	}
	data := section(t, a, s.e.Index())
	// The section ends where it says: what follows it stays in the reader.
	r := strings.NewReader(string(data) + "NEXT SECTION")
	if err := b.Restore(r); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "NEXT SECTION" {
		t.Fatalf("restore left %q unread", rest)
	}
	if dump(t, a) != dump(t, b) || a.Bounds() != b.Bounds() {
		t.Fatalf("restored content differs: bounds %+v vs %+v", a.Bounds(), b.Bounds())
	}
	sameEvents(t, "restored", all(t, b), all(t, a))
	checkReplay(t, b, s.e.State)
	checkRefs(t, b)
	// Both replicas go on identically, retention included.
	for range 800 {
		s.step1(t, a, b)
	}
	if dump(t, a) != dump(t, b) {
		t.Fatal("replicas diverged after the restore")
	}
	checkReplay(t, b, s.e.State)
	if generations(t, b) != 1 {
		t.Fatal("restore left a generation behind")
	}
}

func TestSnapshotRestoreEmpty(t *testing.T) {
	t.Parallel()
	a, b := openLog(t, DefaultConfig()), openLog(t, DefaultConfig())
	if err := b.Restore(bytes.NewReader(section(t, a, 0))); err != nil {
		t.Fatal(err)
	}
	if b.Bounds() != (Bounds{}) || dump(t, a) != dump(t, b) {
		t.Fatalf("bounds %+v", b.Bounds())
	}
}

// TestSnapshotIsPointInTime: a Snap taken on the FSM goroutine writes what the
// log held then, although Append goes on trimming and compacting meanwhile.
func TestSnapshotIsPointInTime(t *testing.T) {
	t.Parallel()
	cfg := testConfig(50)
	a, b := openLog(t, cfg), openLog(t, cfg)
	s := newSim(t, 22)
	for range 700 {
		s.step1(t, a)
	}
	then, state := dump(t, a), s.e.State.Clone()
	snap, err := a.Snapshot(s.e.Index())
	if err != nil {
		t.Fatal(err)
	}
	base := a.Bounds().Base
	for range 700 {
		s.step1(t, a)
	}
	if a.Bounds().Base <= base {
		t.Fatal("no trim while the snapshot was open")
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if err := b.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if dump(t, b) != then {
		t.Fatal("the snapshot does not hold what the log held when it was taken")
	}
	checkReplay(t, b, state)
	// Once released, the next Append drops the held events.
	for appended := 0; appended == 0; {
		appended = len(s.step1(t, a))
	}
	if err := a.db.View(func(tx *bbolt.Tx) error {
		bs, err := openGen(tx, a.view.Load().gen)
		if err != nil {
			return err
		}
		if k, _ := bs.held.Cursor().First(); k != nil {
			return errors.New("held events remain after release")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestRestoreInvalidatesOpenSnap(t *testing.T) {
	t.Parallel()
	a, b := openLog(t, testConfig(100)), openLog(t, testConfig(100))
	e := workload(t, 23, 300)
	appendAll(t, a, groups(e.Events))
	appendAll(t, b, groups(e.Events[:len(e.Events)/2]))
	snap, err := a.Snapshot(e.Events[len(e.Events)-1].Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Restore(bytes.NewReader(section(t, b, b.LastIndex()))); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.WriteTo(io.Discard); !errors.Is(err, ErrSnapshotStale) {
		t.Fatalf("WriteTo after Restore = %v, want ErrSnapshotStale", err)
	}
	snap.Release()
	snap.Release()
	if _, err := snap.WriteTo(io.Discard); !errors.Is(err, ErrReleased) {
		t.Fatalf("WriteTo after Release = %v, want ErrReleased", err)
	}
	if dump(t, a) != dump(t, b) {
		t.Fatal("restore did not replace the content")
	}
	if _, err := a.Snapshot(a.Bounds().Base - 1); a.Bounds().Base > 0 && !errors.Is(err, ErrBelowBase) {
		t.Fatalf("Snapshot below the base = %v", err)
	}
}

// forge builds a section with a valid checksum around the given records.
func forge(records ...[]byte) []byte {
	var buf bytes.Buffer
	fw := newFrameWriter(&buf)
	for _, r := range records {
		fw.record(r[0], r[1:])
	}
	if err := fw.finish(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func rec(kind byte, data ...[]byte) []byte {
	return append([]byte{kind}, bytes.Join(data, nil)...)
}

func uv(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

func TestRestoreRejectsBadInput(t *testing.T) {
	t.Parallel()
	a, b := openLog(t, testConfig(40)), openLog(t, DefaultConfig())
	e := workload(t, 24, 300)
	appendAll(t, a, groups(e.Events))
	good := section(t, a, e.Index())
	appendAll(t, b, groups(e.Events[:20]))
	before := dump(t, b)

	empty, err := emptyBase(fsm.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ev := func(idx fsm.RaftIndex, seq uint32) []byte {
		return rec(recEvent, fsm.EncodeEvent(fsm.Event{Meta: fsm.Meta{Index: idx, Seq: seq}, Body: fsm.RebalanceSet{Paused: true}}))
	}
	head := func(base, upTo uint64) []byte { return rec(recHeader, uv(base, upTo, uint64(len(empty)))) }
	body := func(idx fsm.RaftIndex, b fsm.EventBody) []byte {
		return rec(recEvent, fsm.EncodeEvent(fsm.Event{Meta: fsm.Meta{Index: idx}, Body: b}))
	}
	declare := body(2, fsm.PartitionsDeclared{Partitions: []fsm.PartitionSpec{{ID: "p1", Subjects: []string{"a.>"}}}})
	cases := map[string][]byte{
		"empty":               nil,
		"bad magic":           append([]byte("BATONXXX"), good[8:]...),
		"bad version":         append(append([]byte("BATONAUD"), 9), good[9:]...),
		"huge frame":          append(append([]byte("BATONAUD\x01"), 0xff, 0xff, 0xff, 0xff), make([]byte, 100)...),
		"no header":           forge(rec(recBase, empty)),
		"base above index":    forge(rec(recHeader, uv(5, 4, uint64(len(empty))))),
		"base too long":       forge(rec(recHeader, uv(0, 4, maxBaseLen+1))),
		"short base":          forge(head(0, 9), rec(recBase, empty[:10]), rec(recEnd, uv(0))),
		"base at other index": forge(head(3, 9), rec(recBase, empty), rec(recEnd, uv(0))),
		"no end record":       forge(head(0, 9), rec(recBase, empty), ev(2, 0)),
		"wrong count":         forge(head(0, 9), rec(recBase, empty), ev(2, 0), rec(recEnd, uv(2))),
		"out of order":        forge(head(0, 9), rec(recBase, empty), ev(3, 0), ev(2, 0), rec(recEnd, uv(2))),
		"duplicate":           forge(head(0, 9), rec(recBase, empty), ev(3, 0), ev(3, 0), rec(recEnd, uv(2))),
		"above snapshot":      forge(head(0, 9), rec(recBase, empty), ev(10, 0), rec(recEnd, uv(1))),
		"undecodable event":   forge(head(0, 9), rec(recBase, empty), rec(recEvent, []byte{1, 99}), rec(recEnd, uv(1))),
		"unknown record":      forge(head(0, 9), rec(recBase, empty), rec(42), rec(recEnd, uv(0))),
		"after end":           forge(head(0, 9), rec(recBase, empty), rec(recEnd, uv(0)), ev(2, 0)),
		"empty record":        append(append([]byte("BATONAUD\x01"), 0, 0, 0, 1, 0), make([]byte, 8)...),
		// Found by FuzzRestoreRecords: the history above the base must fold
		// onto it (else Replay and the first trim fail after the restore)...
		"history does not fold": forge(head(0, 9), rec(recBase, empty),
			body(2, fsm.Committed{Partition: "p1", From: "w1", To: "w2", Epoch: 2}), rec(recEnd, uv(1))),
		// ...into a state that keeps fsm's invariants (a pending handoff
		// from a worker that does not own the partition).
		"history breaks invariants": forge(head(0, 9), rec(recBase, empty), declare,
			body(3, fsm.Prepared{Handoff: 1, Partition: "p1", From: "w1", To: "w2", Epoch: 1}), rec(recEnd, uv(2))),
		// A genuine section holds one checkpoint per partition above the
		// base; a second would be compacted away, so the log would not hold
		// what the section says.
		"superseded checkpoint": forge(head(0, 9), rec(recBase, empty), declare,
			body(3, fsm.Checkpointed{Partition: "p1", Seq: 5}), body(4, fsm.Checkpointed{Partition: "p1", Seq: 6}), rec(recEnd, uv(3))),
	}
	// Truncations and bit flips of a good section.
	r := rand.New(rand.NewPCG(24, 24))
	for i := 0; i < len(good); i += 1 + r.IntN(len(good)/150+1) {
		cases[fmt.Sprintf("truncated at %d", i)] = good[:i]
	}
	for range 150 {
		i := r.IntN(len(good))
		bad := bytes.Clone(good)
		bad[i] ^= byte(1 << r.IntN(8))
		cases[fmt.Sprintf("flipped bit at %d", i)] = bad
	}
	for name, data := range cases {
		err := b.Restore(bytes.NewReader(data))
		if !errors.Is(err, ErrInvalidSnapshot) {
			t.Fatalf("%s: Restore = %v, want ErrInvalidSnapshot", name, err)
		}
		if generations(t, b) != 1 {
			t.Fatalf("%s: a failed restore left a generation behind", name)
		}
	}
	if dump(t, b) != before {
		t.Fatal("a failed restore changed the log")
	}
	// The good section still restores.
	if err := b.Restore(bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	checkReplay(t, b, e.State)
}
