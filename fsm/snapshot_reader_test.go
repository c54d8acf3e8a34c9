package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// bigRecordState holds a request entry whose snapshot record (5,000 rejected
// items) is several times the reader's window.
func bigRecordState(t *testing.T) *State {
	t.Helper()
	s, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s.Apply(1, 1, Command{Body: Join{Worker: "w1"}})
	s.Apply(2, 1, Command{Body: Declare{Partitions: []PartitionSpec{{ID: "p1", Subjects: []string{"o.1.>"}}}}})
	items := make([]ClaimItem, 5000)
	for i := range items {
		items[i] = ClaimItem{Partition: PartitionID(fmt.Sprintf("missing-%04d", i)), Worker: "w1"}
	}
	if r := s.Apply(3, 1, Command{Header: Header{RequestID: "big"}, Body: Claim{Items: items}}); r.Rejected() != len(items) {
		t.Fatalf("%d of %d items rejected", r.Rejected(), len(items))
	}
	return s
}

// splitSnapshot returns a snapshot's records, without their lengths.
func splitSnapshot(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var recs [][]byte
	rest := b[len(snapshotMagic)+1:]
	for {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			t.Fatalf("cannot split snapshot at %d", len(b)-len(rest))
		}
		rest = rest[k:]
		if n == 0 {
			return recs
		}
		recs = append(recs, rest[:n])
		rest = rest[n:]
	}
}

// joinSnapshot frames records as WriteSnapshot does, with a good checksum.
func joinSnapshot(recs [][]byte) []byte {
	out := append(bytes.Clone(snapshotMagic), snapshotVersion)
	for _, r := range recs {
		out = binary.AppendUvarint(out, uint64(len(r)))
		out = append(out, r...)
	}
	out = append(out, 0)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
}

// TestReadSnapshot_AnyChunking: the reader gives the same state whatever
// sizes the underlying reads return, including a record longer than its
// window, and a read error is reported, never taken for the end.
func TestReadSnapshot_AnyChunking(t *testing.T) {
	good := snapshotBytes(t, bigRecordState(t))
	if longest := maxLen(splitSnapshot(t, good)); longest <= snapWindow {
		t.Fatalf("longest record %d bytes, want more than the %d-byte window", longest, snapWindow)
	}
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(good) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(good)) },
		"halves":   func() io.Reader { return iotest.HalfReader(bytes.NewReader(good)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(good)) },
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			s, err := ReadSnapshot(r(), DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(snapshotBytes(t, s), good) {
				t.Fatal("restored state encodes differently")
			}
		})
	}
	boom := errors.New("disk on fire")
	for _, at := range []int{5, len(good) / 3, len(good) - 2, len(good)} {
		r := io.MultiReader(bytes.NewReader(good[:at]), iotest.ErrReader(boom))
		if _, err := ReadSnapshot(r, DefaultConfig()); !errors.Is(err, boom) || !errors.Is(err, ErrSnapshotInvalid) {
			t.Fatalf("read error after %d bytes: got %v", at, err)
		}
	}
	for _, at := range []int{len(good) / 3, len(good) / 2, len(good) - 5} {
		if _, err := ReadSnapshot(bytes.NewReader(good[:at]), DefaultConfig()); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("truncated at %d: got %v", at, err)
		}
	}
	if _, err := ReadSnapshot(stuckReader{}, DefaultConfig()); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("reader without progress: got %v", err)
	}
}

func maxLen(recs [][]byte) int {
	n := 0
	for _, r := range recs {
		n = max(n, len(r))
	}
	return n
}

// stuckReader returns no bytes and no error, forever.
type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

// TestReadSnapshot_ForgedLengthCostsNothing: a record that claims the most a
// record may hold, followed by a few bytes, is refused without allocating
// anything like what it claims.
func TestReadSnapshot_ForgedLengthCostsNothing(t *testing.T) {
	for _, claim := range []uint64{snapWindow + 1, maxRecordLen} {
		forged := append(bytes.Clone(snapshotMagic), snapshotVersion)
		forged = binary.AppendUvarint(forged, claim)
		forged = append(forged, recHeader, 1, 2, 3)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const runs = 10
		for range runs {
			if _, err := ReadSnapshot(bytes.NewReader(forged), DefaultConfig()); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("forged length %d: got %v", claim, err)
			}
		}
		runtime.ReadMemStats(&after)
		perRun := (after.TotalAlloc - before.TotalAlloc) / runs
		t.Logf("record claiming %d bytes: %d bytes allocated per read", claim, perRun)
		if perRun > 4*snapWindow {
			t.Fatalf("a record claiming %d bytes allocated %d bytes per read", claim, perRun)
		}
	}
}

// TestReadSnapshot_RefusesNonCanonical: partition records out of order or
// repeated, and subjects that overlap (another partition's, or another of the
// same partition's), are refused even with a good checksum.
func TestReadSnapshot_RefusesNonCanonical(t *testing.T) {
	two := newState(DefaultConfig())
	for _, id := range []PartitionID{"a", "b"} {
		two.partitions[id] = &Partition{ID: id, Subjects: []string{"s." + string(id)}, Phase: PhaseUnassigned}
	}
	recs := splitSnapshot(t, snapshotBytes(t, two))
	if _, err := ReadSnapshot(bytes.NewReader(joinSnapshot(recs)), DefaultConfig()); err != nil {
		t.Fatalf("resealed snapshot refused: %v", err)
	}
	a, b := recs[1], recs[2]
	if a[0] != recPartition || b[0] != recPartition {
		t.Fatalf("records 1 and 2 are of kinds %d and %d", a[0], b[0])
	}
	for name, rs := range map[string][][]byte{
		"swapped":  {recs[0], b, a},
		"repeated": {recs[0], a, a},
	} {
		if _, err := ReadSnapshot(bytes.NewReader(joinSnapshot(rs)), DefaultConfig()); !errors.Is(err, ErrSnapshotInvalid) {
			t.Errorf("%s partition records: got %v", name, err)
		}
	}
	for name, subjects := range map[string][2][]string{
		"across partitions": {{"s.>"}, {"s.b"}},
		"wildcard later":    {{"s.b"}, {"s.*"}},
		"within one":        {{"s.a", "s.*"}, {"t"}},
		"same subject":      {{"s"}, {"s"}},
	} {
		s := newState(DefaultConfig())
		for i, id := range []PartitionID{"a", "b"} {
			s.partitions[id] = &Partition{ID: id, Subjects: subjects[i], Phase: PhaseUnassigned}
		}
		if _, err := ReadSnapshot(bytes.NewReader(snapshotBytes(t, s)), DefaultConfig()); !errors.Is(err, ErrSnapshotInvalid) {
			t.Errorf("overlap %s: got %v", name, err)
		}
	}
}
