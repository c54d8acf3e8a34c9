package fsm

import (
	"errors"
	"reflect"
	"testing"
)

// sampleBodies has one fully populated body of every command type.
func sampleBodies() []Body {
	return []Body{
		Join{Worker: "w1", Weight: 3, Labels: []Label{{"zone", "a"}, {"host", "h1"}}, Replace: true},
		Leave{Worker: "w1", Incarnation: 7},
		Expire{Worker: "w1", Incarnation: 7},
		RemoveWorker{Worker: "w1"},
		Declare{Partitions: []PartitionSpec{{ID: "p1", Subjects: []string{"a.>", "b.c"}, Weight: 2, StartAfter: 99}}},
		RemovePartitions{Partitions: []PartitionID{"p1", "p2"}},
		Claim{Items: []ClaimItem{{Partition: "p1", Worker: "w1"}, {Partition: "p2", Worker: "w2"}}},
		Prepare{Items: []PrepareItem{{Partition: "p1", Epoch: 4, From: "w1", To: "w2", Reason: "rebalance", DrainTimeout: -1 << 40}}},
		Drain{Worker: "w1", Incarnation: 3, Items: []DrainItem{{Handoff: 9, Partition: "p1", Epoch: 4, ThroughSeq: 1 << 60}}},
		Commit{Items: []CommitItem{{Handoff: 9, Partition: "p1"}}},
		ForceCommit{Items: []ForceItem{{Partition: "p1", Epoch: 4, To: "w3", Reason: ForceDrainDeadline}}},
		Activate{Worker: "w2", Incarnation: 5, Items: []ActivateItem{{Partition: "p1", Epoch: 5}}},
		Abort{Items: []AbortItem{{Handoff: 9, Partition: "p1", Reason: "operator"}}},
		Release{Worker: "w1", Incarnation: 3, Items: []ReleaseItem{{Partition: "p1", Epoch: 4, ThroughSeq: 10}}},
		Checkpoint{Worker: "w1", Incarnation: 3, Items: []CheckpointItem{{Partition: "p1", Epoch: 4, Seq: 11}, {Partition: "p2", Epoch: 1, Seq: 2}}},
		Cordon{Worker: "w1", On: true},
		Pin{Partition: "p1", Worker: "w2"},
		SetRebalance{Paused: true},
		RegisterNode{Node: "n1", APIAddr: "http://127.0.0.1:8080"},
		RemoveNode{Node: "n1"},
	}
}

func sampleEvents() []EventBody {
	return []EventBody{
		WorkerJoined{Worker: "w1", Incarnation: 3, Weight: 2, Labels: []Label{{"zone", "a"}}},
		LeaveStarted{Worker: "w1", Incarnation: 3},
		WorkerLeft{Worker: "w1", Incarnation: 3, Reason: LeftReplaced},
		WorkerCordoned{Worker: "w1", On: true},
		PartitionsDeclared{Partitions: []PartitionSpec{{ID: "p1", Subjects: []string{"a.>"}, Weight: 1, StartAfter: 5}}},
		PartitionRemoved{Partition: "p1", Owner: "w1", Epoch: 3, Lingerers: []Lingerer{{Worker: "w0", Incarnation: 2}}},
		Claimed{Partition: "p1", Worker: "w1", Epoch: 1, ResumeAfter: 5},
		Prepared{Handoff: 2, Partition: "p1", From: "w1", To: "w2", Epoch: 1, Reason: "r", Deadline: 77},
		Drained{Handoff: 2, Partition: "p1", From: "w1", Epoch: 1, ThroughSeq: 8},
		Committed{Handoff: 2, Partition: "p1", From: "w1", To: "w2", Epoch: 2, ResumeAfter: 8, Forced: true, ForceReason: ForceOperator},
		Activated{Partition: "p1", Worker: "w2", Epoch: 2, Lingerers: []Lingerer{{Worker: "w1", Incarnation: 4}}},
		Aborted{Handoff: 2, Partition: "p1", From: "w1", To: "w2", Reason: "target_left"},
		Released{Partition: "p1", Worker: "w2", Epoch: 2, ThroughSeq: 9},
		Checkpointed{Partition: "p1", Worker: "w2", Epoch: 2, Seq: 9},
		PartitionPinned{Partition: "p1", Worker: "w2"},
		RebalanceSet{Paused: true},
		NodeRegistered{Node: "n1", APIAddr: "http://127.0.0.1:8080"},
		NodeRemoved{Node: "n1"},
	}
}

func TestCommandCodec_RoundTripsEveryType(t *testing.T) {
	seen := map[CommandType]bool{}
	for _, b := range sampleBodies() {
		t.Run(b.Type().String(), func(t *testing.T) {
			cmd := Command{Header: Header{RequestID: "r-1", Actor: "operator:alice", Cause: "test", Time: 1234567890}, Body: b}
			data, err := EncodeCommand(cmd)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeCommand(data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, cmd) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, cmd)
			}
			// Every strict prefix is an error, never a panic or a shorter value.
			for i := 0; i < len(data); i++ {
				if _, err := DecodeCommand(data[:i]); err == nil {
					t.Fatalf("prefix of %d/%d bytes decoded without error", i, len(data))
				}
			}
			if _, err := DecodeCommand(append(data, 0)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("trailing byte: got %v, want ErrCorrupt", err)
			}
		})
		seen[b.Type()] = true
	}
	for ct := CommandType(1); ct < cmdTypeEnd; ct++ {
		if !seen[ct] {
			t.Errorf("command type %s has no round-trip sample", ct)
		}
	}
}

func TestEventCodec_RoundTripsEveryType(t *testing.T) {
	seen := map[EventType]bool{}
	for i, b := range sampleEvents() {
		ev := Event{Meta: Meta{Index: RaftIndex(100 + i), Seq: uint32(i), Term: 3, Time: -5, Actor: "a", Cause: "c", RequestID: "r"}, Body: b}
		got, err := DecodeEvent(EncodeEvent(ev))
		if err != nil {
			t.Fatalf("%s: %v", b.Type(), err)
		}
		if !reflect.DeepEqual(got, ev) {
			t.Fatalf("%s round trip:\n got %#v\nwant %#v", b.Type(), got, ev)
		}
		seen[b.Type()] = true
	}
	for _, et := range EventTypes() {
		if !seen[et] {
			t.Errorf("event type %s has no round-trip sample", et)
		}
	}
}

func TestDecodeCommand_DetectsVersionAndUnknownType(t *testing.T) {
	data, _ := EncodeCommand(Command{Body: SetRebalance{Paused: true}})
	tests := []struct {
		name string
		edit func([]byte) []byte
		want error
	}{
		{"empty", func([]byte) []byte { return nil }, ErrCorrupt},
		{"future version", func(b []byte) []byte { b[0] = 2; return b }, ErrUnsupportedVersion},
		{"unknown type", func(b []byte) []byte { b[1] = byte(cmdTypeEnd); return b }, ErrUnknownCommand},
		{"zero type", func(b []byte) []byte { b[1] = 0; return b }, ErrUnknownCommand},
		{"bad bool", func(b []byte) []byte { b[len(b)-1] = 7; return b }, ErrCorrupt},
		{"huge string length", func(b []byte) []byte { return append(b[:2], 0xff, 0xff, 0xff, 0xff, 0x0f) }, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.edit(append([]byte(nil), data...))
			if _, err := DecodeCommand(b); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeCommand_ForgedCountDoesNotAllocate(t *testing.T) {
	// A claim claiming 2^40 items in a few bytes must fail fast.
	b := []byte{encodingVersion, byte(CmdClaim), 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20}
	if _, err := DecodeCommand(b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
}

// FuzzDecodeCommand: decoding arbitrary bytes never panics, and whatever decodes
// re-encodes to bytes that decode to the same command.
func FuzzDecodeCommand(f *testing.F) {
	for _, b := range sampleBodies() {
		data, _ := EncodeCommand(Command{Header: Header{RequestID: "x", Time: 5}, Body: b})
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := DecodeCommand(data)
		if err != nil {
			return
		}
		again, err := EncodeCommand(cmd)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		cmd2, err := DecodeCommand(again)
		if err != nil {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		if !reflect.DeepEqual(cmd, cmd2) {
			t.Fatalf("unstable: %#v vs %#v", cmd, cmd2)
		}
		// Applying a decoded hostile command never panics either.
		s := newState(DefaultConfig())
		s.Apply(1, 1, cmd)
		if err := s.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecodeEvent: decoding arbitrary bytes as an event never panics.
func FuzzDecodeEvent(f *testing.F) {
	for _, b := range sampleEvents() {
		f.Add(EncodeEvent(Event{Meta: Meta{Index: 1}, Body: b}))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := DecodeEvent(data)
		if err != nil {
			return
		}
		if _, err := DecodeEvent(EncodeEvent(ev)); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
