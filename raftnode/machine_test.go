package raftnode

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/audit"
	"github.com/batonhq/baton/fsm"
)

func newTestMachine(tb testing.TB) *machine {
	tb.Helper()
	al, err := audit.Open(filepath.Join(tb.TempDir(), "audit.db"), audit.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { al.Close() })
	m, err := newMachine(fsm.DefaultConfig(), al, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// applyAll applies bodies as committed entries from index first on.
func applyAll(tb testing.TB, m *machine, first uint64, bodies ...fsm.Body) {
	tb.Helper()
	var logs []*raft.Log
	for i, b := range bodies {
		data, err := fsm.EncodeCommand(fsm.Command{Header: fsm.Header{Actor: "test", Time: int64(first) + int64(i)}, Body: b})
		if err != nil {
			tb.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: first + uint64(i), Term: 1, Type: raft.LogCommand, Data: data})
	}
	m.ApplyBatch(logs)
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

// nodeSnapshot is what Persist writes for m now: the bytes a peer receives.
func nodeSnapshot(tb testing.TB, m *machine) []byte {
	tb.Helper()
	snap, err := m.Snapshot()
	if err != nil {
		tb.Fatal(err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		tb.Fatal(err)
	}
	return sink.Bytes()
}

// contents are the machine's state encoding and its whole audit log.
func contents(tb testing.TB, m *machine) ([]byte, []fsm.Event) {
	tb.Helper()
	var buf bytes.Buffer
	var err error
	m.read(func(s *fsm.State) { err = s.WriteSnapshot(&buf) })
	if err != nil {
		tb.Fatal(err)
	}
	var evs []fsm.Event
	q := audit.Query{Limit: audit.MaxLimit}
	for {
		p, err := m.audit.Query(context.Background(), q)
		if err != nil {
			tb.Fatal(err)
		}
		evs = append(evs, p.Events...)
		if p.Next == nil {
			return buf.Bytes(), evs
		}
		q.After = p.Next
	}
}

func seedMachine(tb testing.TB) *machine {
	m := newTestMachine(tb)
	applyAll(tb, m, 1,
		fsm.Join{Worker: "w1", Labels: []fsm.Label{{Key: "zone", Value: "a"}}},
		fsm.Declare{Partitions: []fsm.PartitionSpec{{ID: "p1", Subjects: []string{"o.p1.>"}}, {ID: "p2", Subjects: []string{"o.p2.>"}}}},
		fsm.Claim{Items: []fsm.ClaimItem{{Partition: "p1", Worker: "w1"}}},
		fsm.RegisterNode{Node: "n1", APIAddr: "http://127.0.0.1:7101"},
	)
	return m
}

// FuzzMachineRestore feeds a node arbitrary bytes as a snapshot received from
// a peer (the fsm state and the audit section behind a magic and a length). A
// refused snapshot leaves the node's state and audit log exactly as they were;
// an accepted one restores a state that keeps its invariants and that the
// node, snapshotting again, hands on unchanged to the next node.
func FuzzMachineRestore(f *testing.F) {
	f.Add(nodeSnapshot(f, seedMachine(f)))
	f.Add(nodeSnapshot(f, newTestMachine(f)))
	f.Add([]byte("BATONSNP\x01\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := seedMachine(t)
		state, evs := contents(t, m)
		if err := m.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			gotState, gotEvs := contents(t, m)
			if !bytes.Equal(gotState, state) || !reflect.DeepEqual(gotEvs, evs) {
				t.Fatalf("a refused snapshot (%v) changed the node", err)
			}
			return
		}
		var inv error
		m.read(func(s *fsm.State) { inv = s.CheckInvariants() })
		if inv != nil {
			t.Fatal(inv)
		}
		state, evs = contents(t, m)
		next := newTestMachine(t)
		if err := next.Restore(io.NopCloser(bytes.NewReader(nodeSnapshot(t, m)))); err != nil {
			t.Fatalf("the node's own snapshot of a restored state is refused: %v", err)
		}
		gotState, gotEvs := contents(t, next)
		if !bytes.Equal(gotState, state) || !reflect.DeepEqual(gotEvs, evs) {
			t.Fatal("a restored state does not pass on unchanged")
		}
	})
}
