package fsm

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// v1Entry builds a version-1 entry (no checksum) as the build before the walk
// codec wrote it: type tag, empty header at time 1, then the body bytes.
func v1Entry(t CommandType, body func(e *encoder)) []byte {
	e := encoder{}
	e.u8(commandVersion1)
	e.u8(uint8(t))
	e.str("")
	e.str("")
	e.str("")
	e.varint(1)
	body(&e)
	return e.buf
}

// TestInvariant7_NoCommittedEntryStopsANode: every way an oversized or
// malformed field reached the log before (issue 8 found seven) is, as a
// committed entry, refused the same way on every replica: a rejection and one
// EntryRejected event, nothing else changed, never a panic or an error that
// stops the node. Entries both as the old build wrote them (version 1, no
// limits on the encoder) and as today's encoder writes any value.
func TestInvariant7_NoCommittedEntryStopsANode(t *testing.T) {
	huge := strings.Repeat("w", 70_000)
	tests := []struct {
		name string
		body Body
	}{
		{"register with a 70,000-byte worker id", Join{Worker: WorkerID(huge)}},
		{"label value of 70,000 bytes", Join{Worker: "w1", Labels: []Label{{Key: "zone", Value: huge}}}},
		{"label key of 70,000 bytes", Join{Worker: "w1", Labels: []Label{{Key: huge, Value: "a"}}}},
		{"checkpoint item's partition id", Checkpoint{Worker: "w1", Incarnation: 1, Items: []CheckpointItem{{Partition: PartitionID(huge), Epoch: 1, Seq: 1}}}},
		{"drained item's partition id", DrainReport{Worker: "w1", Incarnation: 1, Items: []DrainItem{{Handoff: 1, Partition: PartitionID(huge)}}}},
		{"released item's partition id", Release{Worker: "w1", Incarnation: 1, Items: []ReleaseItem{{Partition: PartitionID(huge)}}}},
		{"activated item's partition id", Activate{Worker: "w1", Incarnation: 1, Items: []ActivateItem{{Partition: PartitionID(huge)}}}},
		{"move reason", Prepare{Items: []PrepareItem{{Partition: "p1", Epoch: 1, From: "w1", To: "w2", Reason: huge}}}},
		{"declared subject", Declare{Partitions: []PartitionSpec{{ID: "p9", Subjects: []string{huge}}}}},
		{"node address", RegisterNode{Node: "n1", APIAddr: huge}},
		{"cordon of a 129-byte worker", Cordon{Worker: WorkerID(strings.Repeat("a", 129)), On: true}},
		{"drain timeout past its bound", Prepare{Items: []PrepareItem{{Partition: "p1", Epoch: 1, From: "w1", To: "w2", DrainTimeout: 8e12 * 1e6}}}},
		{"negative drain timeout", Prepare{Items: []PrepareItem{{Partition: "p1", Epoch: 1, From: "w1", To: "w2", DrainTimeout: -1}}}},
		{"label value with ESC", Join{Worker: "w1", Labels: []Label{{Key: "zone", Value: "\x1b[31mred"}}}},
	}
	for _, tt := range tests {
		for _, form := range []string{"v2", "v1", "decoded"} {
			t.Run(tt.name+"/"+form, func(t *testing.T) {
				s := newState(DefaultConfig())
				if r := s.Apply(1, 1, Command{Header: Header{Time: 1}, Body: Join{Worker: "w1"}}); r.Err != nil {
					t.Fatal(r.Err)
				}
				before := snapshotBytes(t, s)
				var res Result
				var err error
				switch form {
				case "v2":
					data, eerr := EncodeCommand(Command{Header: Header{Time: 1}, Body: tt.body})
					if eerr != nil {
						t.Fatal(eerr)
					}
					res, err = s.ApplyEntry(2, 1, data)
				case "v1":
					res, err = s.ApplyEntry(2, 1, v1Entry(tt.body.Type(), func(e *encoder) {
						tt.body.walk(&walker{mode: walkEncode, enc: e})
					}))
				case "decoded":
					// A proposer that skipped the check hands Apply the
					// command itself.
					res = s.Apply(2, 1, Command{Header: Header{Time: 1}, Body: tt.body})
				}
				if err != nil {
					t.Fatalf("ApplyEntry stops the node: %v", err)
				}
				if !errors.Is(res.Err, ErrInvalidArgument) {
					t.Fatalf("got %v, want invalid_argument", res.Err)
				}
				if len(res.Events) != 1 || res.Events[0].Type() != EvEntryRejected {
					t.Fatalf("events %v, want one EntryRejected", res.Events)
				}
				ev := res.Events[0]
				if ev.Index != 2 || len(EncodeEvent(ev)) > 1024 {
					t.Fatalf("EntryRejected at %d, %d bytes encoded", ev.Index, len(EncodeEvent(ev)))
				}
				if _, err := DecodeEvent(EncodeEvent(ev)); err != nil {
					t.Fatalf("the EntryRejected event does not decode: %v", err)
				}
				if err := DefaultConfig().CheckCommand(Command{Body: tt.body}); !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("CheckCommand lets it through: %v", err)
				}
				if s.AppliedIndex() != 2 {
					t.Fatalf("applied index %d, want 2", s.AppliedIndex())
				}
				s.applied, s.term = 1, 1
				if !bytes.Equal(snapshotBytes(t, s), before) {
					t.Fatal("the refused entry changed the state")
				}
			})
		}
	}
}

// TestApplyEntry_StopsOnlyWhenItMust: bytes that fail their checksum (local
// corruption) and entries from a newer build are the only ones that stop a
// replica, and they change nothing.
func TestApplyEntry_StopsOnlyWhenItMust(t *testing.T) {
	good, _ := EncodeCommand(Command{Header: Header{Time: 1}, Body: Join{Worker: "w1"}})
	flipped := bytes.Clone(good)
	flipped[5] ^= 0x01
	future := bytes.Clone(good)
	future[0] = commandVersion + 1
	for _, tt := range []struct {
		name string
		data []byte
		want error
	}{
		{"corrupted byte", flipped, ErrChecksum},
		{"newer encoding version", future, ErrUnsupportedVersion},
		{"unknown command type", withChecksum([]byte{byte(cmdTypeEnd), 0, 0, 0, 2, 0}), ErrUnknownCommand},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newState(DefaultConfig())
			before := snapshotBytes(t, s)
			if _, err := s.ApplyEntry(1, 1, tt.data); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !bytes.Equal(snapshotBytes(t, s), before) {
				t.Fatal("state changed")
			}
		})
	}
}

// FuzzCheckImpliesDecode: for any command (built from arbitrary bytes with the
// fields' limits lifted), passing Config.CheckCommand means it encodes and
// decodes to itself, so it applies the same on every replica; failing it
// means Apply refuses it with one EntryRejected and no other change. The
// check and the decoder share one definition of every limit.
func FuzzCheckImpliesDecode(f *testing.F) {
	for _, b := range sampleBodies() {
		data, _ := EncodeCommand(Command{Header: Header{RequestID: "x", Time: 5}, Body: b})
		f.Add(data[:len(data)-4])
	}
	long, _ := EncodeCommand(Command{Body: Join{Worker: WorkerID(strings.Repeat("w", 129))}})
	f.Add(long[:len(long)-4])
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		d := decoder{buf: data[1:], lenient: true}
		typ := CommandType(d.u8())
		if d.err != nil || typ == 0 || typ >= cmdTypeEnd {
			return
		}
		var cmd Command
		w := walker{mode: walkDecode, dec: &d}
		cmd.Header.walk(&w)
		cmd.Digest = d.uvarint()
		cmd.Body = commandTypes[typ].zero.walk(&w)
		if d.done() != nil {
			return
		}
		enc, err := EncodeCommand(cmd)
		if err != nil {
			t.Fatal(err)
		}
		got, derr := DecodeCommand(enc)
		cerr := DefaultConfig().CheckCommand(cmd)
		if cerr == nil {
			if derr != nil {
				t.Fatalf("passes the check but does not decode: %v", derr)
			}
			if !reflect.DeepEqual(got, cmd) {
				t.Fatalf("passes the check but does not round-trip:\n got %#v\nwant %#v", got, cmd)
			}
			return
		}
		s := newState(DefaultConfig())
		before := snapshotBytes(t, s)
		res, err := s.ApplyEntry(1, 1, enc)
		if err != nil {
			t.Fatalf("an entry that fails the check stops the node: %v", err)
		}
		if res.Err == nil || len(res.Events) != 1 || res.Events[0].Type() != EvEntryRejected {
			t.Fatalf("not refused: %+v", res)
		}
		s.applied, s.term = 0, 0
		if !bytes.Equal(snapshotBytes(t, s), before) {
			t.Fatal("refused entry changed the state")
		}
	})
}
