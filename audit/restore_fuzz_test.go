package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"testing"

	"github.com/batonhq/baton/fsm"
)

// restoreTarget is a log with content that fuzz inputs are restored into. A
// refused input must leave it exactly as it was; after an accepted one it is
// reset by restoring its original section.
type restoreTarget struct {
	l      *Log
	upTo   fsm.RaftIndex // the index orig was taken at
	orig   []byte
	before string
	bounds Bounds
	// seeds are genuine sections: of an empty log, of l itself, and of a
	// longer, trimmed history.
	seeds [][]byte
}

func newRestoreTarget(tb testing.TB) *restoreTarget {
	tb.Helper()
	cfg := testConfig(40)
	rt := &restoreTarget{l: openLog(tb, cfg)}
	e := workload(tb, 41, 120)
	appendAll(tb, rt.l, groups(e.Events))
	rt.upTo = e.Index()
	rt.orig, rt.before, rt.bounds = section(tb, rt.l, rt.upTo), dump(tb, rt.l), rt.l.Bounds()
	if rt.bounds.Base == 0 || rt.bounds.Refs == 0 {
		tb.Fatalf("the target log has no base or reference records: %+v", rt.bounds)
	}
	other := openLog(tb, cfg)
	rt.seeds = append(rt.seeds, section(tb, other, 0), rt.orig)
	e = workload(tb, 42, 250)
	appendAll(tb, other, groups(e.Events))
	rt.seeds = append(rt.seeds, section(tb, other, e.Index()))
	return rt
}

// restore restores data into the target and checks the outcome: refused with
// ErrInvalidSnapshot and the log unchanged (a snapshot taken before still
// writes the original section), or accepted and equal to what the section
// describes (checkRestored). It returns the bytes Restore allocated.
func (rt *restoreTarget) restore(t *testing.T, data []byte) uint64 {
	t.Helper()
	// A snapshot open across the restore: a refused restore must not
	// disturb it, an accepted one must make it fail as stale.
	snap, err := rt.l.Snapshot(rt.upTo)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	r := bytes.NewReader(data)
	n := allocated(func() { err = rt.l.Restore(r) })
	// Whatever happens, the next input finds the original content (a failed
	// check must not leave the log changed, or every later input would fail
	// for this one, minimization included).
	defer rt.reset(t, err == nil)
	var buf bytes.Buffer
	_, werr := snap.WriteTo(&buf)
	snap.Release()
	if err != nil {
		if !errors.Is(err, ErrInvalidSnapshot) {
			t.Fatalf("Restore = %v, want ErrInvalidSnapshot", err)
		}
		if b := rt.l.Bounds(); b != rt.bounds {
			t.Fatalf("a refused restore changed the bounds to %+v (was %+v): %v", b, rt.bounds, err)
		}
		if generations(t, rt.l) != 1 || dump(t, rt.l) != rt.before {
			t.Fatalf("a refused restore changed the log: %v", err)
		}
		if werr != nil || !bytes.Equal(buf.Bytes(), rt.orig) {
			t.Fatalf("a snapshot open across a refused restore wrote %d bytes, %v; want the original section", buf.Len(), werr)
		}
		return n
	}
	if !errors.Is(werr, ErrSnapshotStale) {
		t.Fatalf("a snapshot open across an accepted restore: WriteTo = %v, want ErrSnapshotStale", werr)
	}
	recs, consumed, err := readSection(data)
	if err != nil {
		t.Fatalf("Restore accepted a section the frame reader refuses: %v", err)
	}
	if r.Len() != len(data)-consumed {
		t.Fatalf("Restore read %d bytes of a %d-byte section", len(data)-r.Len(), consumed)
	}
	checkRestored(t, rt.l, recs)
	return n
}

// reset restores the original content after an accepted input or a failure.
func (rt *restoreTarget) reset(t *testing.T, accepted bool) {
	if !accepted && !t.Failed() {
		return
	}
	if err := rt.l.Restore(bytes.NewReader(rt.orig)); err != nil {
		t.Errorf("reset: %v", err)
	} else if dump(t, rt.l) != rt.before {
		t.Error("reset: the original section restores to other content")
	}
}

// sectionContent is what a section says, independent of framing, base
// chunking and varint spelling.
type sectionContent struct {
	base, upTo fsm.RaftIndex
	baseState  []byte
	events     []fsm.Event
}

func parseContent(tb testing.TB, recs []record) sectionContent {
	tb.Helper()
	var c sectionContent
	for i, r := range recs {
		switch r.kind {
		case recHeader:
			h, err := uvarints(r.data, 3)
			if err != nil || i != 0 {
				tb.Fatalf("record %d: header %x: %v", i, r.data, err)
			}
			c.base, c.upTo = fsm.RaftIndex(h[0]), fsm.RaftIndex(h[1])
		case recBase:
			c.baseState = append(c.baseState, r.data...)
		case recEvent:
			ev, err := fsm.DecodeEvent(r.data)
			if err != nil {
				tb.Fatalf("record %d: event: %v", i, err)
			}
			c.events = append(c.events, ev)
		case recEnd:
		default:
			tb.Fatalf("record %d of kind %d", i, r.kind)
		}
	}
	return c
}

// checkRestored checks that l, just restored from recs, holds what they say:
// the same events by query, bounds that agree, a history that replays onto
// the base state into a state that keeps the invariants, a snapshot that
// says the same again, and that the log goes on taking entries.
func checkRestored(t *testing.T, l *Log, recs []record) {
	t.Helper()
	want := parseContent(t, recs)
	sameEvents(t, "restored", all(t, l), want.events)
	wantB := Bounds{Base: want.base, Count: len(want.events)}
	if n := len(want.events); n > 0 {
		wantB.First, wantB.Last = want.events[0].Index, want.events[n-1].Index
	}
	for _, ev := range want.events {
		if ev.Index <= want.base {
			wantB.Refs++
		}
	}
	if b := l.Bounds(); b != wantB {
		t.Fatalf("restored bounds %+v, want %+v", b, wantB)
	}
	if generations(t, l) != 1 {
		t.Fatal("restore left a generation behind")
	}
	checkReplays(t, l)
	again, _, err := readSection(section(t, l, want.upTo))
	if err != nil {
		t.Fatalf("re-read the restored log's snapshot: %v", err)
	}
	got := parseContent(t, again)
	if got.base != want.base || got.upTo != want.upTo || !bytes.Equal(got.baseState, want.baseState) {
		t.Fatalf("the restored log snapshots to base %d, index %d, %d base bytes; restored from %d, %d, %d",
			got.base, got.upTo, len(got.baseState), want.base, want.upTo, len(want.baseState))
	}
	sameEvents(t, "re-snapshot", got.events, want.events)
	if want.upTo < math.MaxUint64 {
		next := fsm.Event{Meta: fsm.Meta{Index: want.upTo + 1}, Body: fsm.RebalanceSet{Paused: true}}
		if err := l.Append([]fsm.Event{next}); err != nil {
			t.Fatalf("append after the restore: %v", err)
		}
		checkReplays(t, l)
	}
}

// checkReplays checks that the log's history folds onto its base state into a
// state that keeps fsm's invariants.
func checkReplays(t *testing.T, l *Log) {
	t.Helper()
	s, err := l.Replay()
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if err := s.CheckInvariants(); err != nil {
		t.Fatalf("replayed state: %v", err)
	}
}

// FuzzRestore reads a snapshot section as another node sends it (snapshot.go:
// Log.Restore, through the frame reader). Arbitrary, truncated, bit-flipped or
// extended input is refused with ErrInvalidSnapshot and leaves the log exactly
// as it was (content, bounds, one generation), allocating at most allocBound
// of its length however large the lengths it claims; input Restore accepts
// restores to what it describes (checkRestored) and Restore reads exactly the
// section, nothing after it.
func FuzzRestore(f *testing.F) {
	rt := newRestoreTarget(f)
	for _, s := range rt.seeds {
		f.Add(s)
		f.Add(append(bytes.Clone(s), "the next section"...))
		f.Add(s[:len(s)-1])
		f.Add(s[:len(s)/2])
		flipped := bytes.Clone(s)
		flipped[len(s)/3] ^= 0x10
		f.Add(flipped)
	}
	for _, data := range restoreSeeds(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if n := rt.restore(t, data); n > restoreAllocBound(len(data)) {
			t.Fatalf("restoring %d bytes allocated %d", len(data), n)
		}
	})
}

// restoreAllocBound is what restoring n bytes of hostile input may allocate:
// the transactions that create and drop a generation, plus a multiple of the
// input (decoded events, bbolt pages and index entries: about 75 bytes per
// input byte for a genuine section). A forged 64 MiB frame or 4 GiB base
// length blows through it.
func restoreAllocBound(n int) uint64 { return 1<<20 + 128*uint64(n) }

// restoreSeeds returns sections with valid checksums whose lengths are forged
// (also committed under testdata/fuzz/FuzzRestore).
func restoreSeeds(tb testing.TB) map[string][]byte {
	tb.Helper()
	empty, err := emptyBase(fsm.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	return map[string][]byte{
		// The header claims a 4 GiB base state, and the stream ends.
		"base-length-forged-4GiB": forge(rec(recHeader, uv(0, 1, maxBaseLen))),
		// A frame claims the largest legal length, and the stream ends.
		"frame-length-forged-64MiB": append(forge(rec(recHeader, uv(0, 1, uint64(len(empty)))))[:len(sectionMagic)+1],
			binary.BigEndian.AppendUint32(nil, maxFrame)...),
		// The end record claims more events than were sent.
		"end-count-forged": forge(rec(recHeader, uv(0, 9, uint64(len(empty)))), rec(recBase, empty), rec(recEnd, uv(1<<63))),
	}
}

// frameRecords wraps raw record bytes (uvarint(1+len) kind data, repeated) in
// one frame with magic, version, end and a valid checksum.
func frameRecords(payload []byte) []byte {
	b := append(bytes.Clone(sectionMagic), sectionVersion)
	if len(payload) > 0 {
		b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
		b = append(b, payload...)
	}
	b = append(b, 0, 0, 0, 0)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// payloadOf returns the records of a section as one frame's payload.
func payloadOf(tb testing.TB, sec []byte) []byte {
	tb.Helper()
	recs, _, err := readSection(sec)
	if err != nil {
		tb.Fatal(err)
	}
	var b []byte
	for _, r := range recs {
		b = binary.AppendUvarint(b, uint64(1+len(r.data)))
		b = append(append(b, r.kind), r.data...)
	}
	return b
}

// FuzzRestoreRecords reads the records of a snapshot section (snapshot.go:
// restorer.run and write) past the checksum: the input is framed with a valid
// CRC, so the fuzzer works on the header, base state, events and end record
// themselves. The properties are FuzzRestore's: refused input leaves the log
// as it was; accepted input restores to a log that holds exactly what it
// describes, replays onto its base state, snapshots to the same content and
// takes further entries.
func FuzzRestoreRecords(f *testing.F) {
	rt := newRestoreTarget(f)
	for _, s := range rt.seeds {
		f.Add(payloadOf(f, s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) > maxFrame {
			return
		}
		data := frameRecords(payload)
		if n := rt.restore(t, data); n > restoreAllocBound(len(data)) {
			t.Fatalf("restoring %d bytes allocated %d", len(data), n)
		}
	})
}
