package fsm_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/fsm/fsmtest"
)

func TestSnapshot_RestoreEncodesIdentically(t *testing.T) {
	e := world(t)
	e.Apply(fsm.Command{Header: fsm.Header{RequestID: "r1"}, Body: fsm.SetRebalance{Paused: true}})
	a := snapshotBytes(t, e.State)
	s, err := fsm.ReadSnapshot(bytes.NewReader(a), fsm.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if b := snapshotBytes(t, s); !bytes.Equal(a, b) {
		t.Fatal("restored state encodes differently")
	}
	if s.AppliedIndex() != e.State.AppliedIndex() || !s.Paused() {
		t.Fatalf("restored applied=%d paused=%v", s.AppliedIndex(), s.Paused())
	}
	// The request table came along: a retry after restore is still a duplicate.
	res := s.Apply(s.AppliedIndex()+1, 1, fsm.Command{Header: fsm.Header{RequestID: "r1"}, Body: fsm.SetRebalance{Paused: true}})
	if !res.Duplicate {
		t.Fatal("request id forgotten by the snapshot")
	}
}

func TestSnapshot_ReplicasEncodeByteIdentically(t *testing.T) {
	// Two states fed the same commands in the same order, but with maps filled
	// differently (declared in opposite orders over several commands).
	build := func(reverse bool) *fsm.State {
		e := fsmtest.New(t)
		e.Apply(fsm.Command{Body: fsm.Join{Worker: "w1"}})
		for i := 0; i < 50; i++ {
			n := i
			if reverse {
				n = 49 - i
			}
			_ = n
			e.Apply(fsm.Command{Body: fsm.Declare{Partitions: []fsm.PartitionSpec{{
				ID: fsm.PartitionID(fmt.Sprintf("p%02d", i)), Subjects: []string{fmt.Sprintf("s.%d", i)},
			}}}})
		}
		return e.State
	}
	a, b := snapshotBytes(t, build(false)), snapshotBytes(t, build(true))
	if !bytes.Equal(a, b) {
		t.Fatal("same commands, different snapshot bytes")
	}
}

func TestReadSnapshot_RejectsDamage(t *testing.T) {
	good := snapshotBytes(t, world(t).State)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"bad magic", append([]byte("NOTBATON"), good[8:]...)},
		{"truncated", good[:len(good)/2]},
		{"no checksum", good[:len(good)-4]},
		{"flipped byte", flip(good, len(good)/2)},
		{"flipped checksum", flip(good, len(good)-1)},
		{"trailing bytes", append(append([]byte(nil), good...), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := fsm.ReadSnapshot(bytes.NewReader(tt.data), fsm.DefaultConfig()); !errors.Is(err, fsm.ErrSnapshotInvalid) {
				t.Fatalf("got %v, want ErrSnapshotInvalid", err)
			}
		})
	}
	t.Run("every truncation", func(t *testing.T) {
		for i := 0; i < len(good); i++ {
			if _, err := fsm.ReadSnapshot(bytes.NewReader(good[:i]), fsm.DefaultConfig()); err == nil {
				t.Fatalf("truncation at %d/%d accepted", i, len(good))
			}
		}
	})
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x5a
	return c
}

// FuzzReadSnapshot: arbitrary bytes never panic the restore, and a snapshot
// that reads back is canonical: written again it gives the same bytes, which
// read back to the same state. Inputs are also tried resealed with a correct
// checksum, so that the fuzzer reaches the record decoder behind it.
func FuzzReadSnapshot(f *testing.F) {
	e := world(f)
	var buf bytes.Buffer
	_ = e.State.WriteSnapshot(&buf)
	f.Add(buf.Bytes())
	small := fsmtest.New(f)
	small.Apply(fsm.Command{Body: fsm.Join{Worker: "w1", Labels: []fsm.Label{{Key: "zone", Value: "a"}}}})
	buf.Reset()
	_ = small.State.WriteSnapshot(&buf)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSnapshotBytes(t, data)
		if len(data) > 4 {
			body := data[:len(data)-4]
			checkSnapshotBytes(t, binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli))))
		}
	})
}

func checkSnapshotBytes(t *testing.T, data []byte) {
	s, err := fsm.ReadSnapshot(bytes.NewReader(data), fsm.DefaultConfig())
	if err != nil {
		if !errors.Is(err, fsm.ErrSnapshotInvalid) {
			t.Fatalf("error %v does not wrap ErrSnapshotInvalid", err)
		}
		return
	}
	if err := s.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := s.WriteSnapshot(&a); err != nil {
		t.Fatal(err)
	}
	s2, err := fsm.ReadSnapshot(bytes.NewReader(a.Bytes()), fsm.DefaultConfig())
	if err != nil {
		t.Fatalf("a snapshot written from a restored state does not read back: %v", err)
	}
	if err := fsm.SameContent(s, s2); err != nil {
		t.Fatal(err)
	}
	if err := s2.WriteSnapshot(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("snapshot encoding is not canonical")
	}
}
