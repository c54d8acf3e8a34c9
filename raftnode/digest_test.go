package raftnode

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/fsm"
)

// entries encodes bodies as committed entries from index first on, stamped
// with leader times the test machines take as fresh.
func entries(tb testing.TB, first uint64, bodies ...fsm.Body) []*raft.Log {
	tb.Helper()
	var logs []*raft.Log
	for i, b := range bodies {
		data, err := fsm.EncodeCommand(fsm.Command{Header: fsm.Header{Actor: "test", Time: int64(first) + int64(i)}, Body: b})
		if err != nil {
			tb.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: first + uint64(i), Term: 1, Type: raft.LogCommand, Data: data})
	}
	return logs
}

// digestMachine is a test machine whose clock sits at the leader times
// entries stamps, so that no mark is too old to be fingerprinted.
func digestMachine(tb testing.TB) *machine {
	m := newTestMachine(tb)
	m.now = func() time.Time { return time.Unix(0, 0) }
	return m
}

// workload is a run of commands with events (joins, claims, checkpoints,
// which the audit log compacts) and digest marks among them, at 5 and 9.
func workload() []fsm.Body {
	return []fsm.Body{
		fsm.Join{Worker: "w1"},
		fsm.Join{Worker: "w2"},
		fsm.Declare{Partitions: []fsm.PartitionSpec{{ID: "p1", Subjects: []string{"o.p1.>"}}, {ID: "p2", Subjects: []string{"o.p2.>"}}}},
		fsm.Claim{Items: []fsm.ClaimItem{{Partition: "p1", Worker: "w1"}, {Partition: "p2", Worker: "w2"}}},
		fsm.MarkDigest{},
		fsm.Checkpoint{Worker: "w1", Incarnation: 1, Items: []fsm.CheckpointItem{{Partition: "p1", Epoch: 1, Seq: 5}}},
		fsm.Checkpoint{Worker: "w1", Incarnation: 1, Items: []fsm.CheckpointItem{{Partition: "p1", Epoch: 1, Seq: 9}}},
		fsm.Cordon{Worker: "w2", On: true},
		fsm.MarkDigest{},
		fsm.SetRebalance{Paused: true},
	}
}

func digestsOf(m *machine) map[fsm.RaftIndex]Digest {
	out := map[fsm.RaftIndex]Digest{}
	if p := m.digests.Load(); p != nil {
		for _, d := range *p {
			out[d.Index] = d
		}
	}
	return out
}

// TestDigest_SameEntriesSameDigest: replicas that apply the same entries hold
// the same digests at the marks, however raft batched the entries; a mark in
// the middle of a batch sees the state and audit log at exactly its index (a
// replica whose batch ends at the mark agrees); and a replica that restored a
// snapshot taken before a mark agrees at that mark.
func TestDigest_SameEntriesSameDigest(t *testing.T) {
	logs := entries(t, 1, workload()...)

	whole := digestMachine(t)
	whole.ApplyBatch(logs)
	want := digestsOf(whole)
	if len(want) != 2 || want[5].Index != 5 || want[9].Index != 9 {
		t.Fatalf("digests at %v, want at 5 and 9", want)
	}
	if want[5].Sum == want[9].Sum {
		t.Fatal("the state changed between the marks, the digest did not")
	}

	cases := map[string]func(m *machine){
		"one entry per batch": func(m *machine) {
			for _, l := range logs {
				m.ApplyBatch([]*raft.Log{l})
			}
		},
		"batches ending at the marks": func(m *machine) {
			m.ApplyBatch(logs[:5])
			m.ApplyBatch(logs[5:9])
			m.ApplyBatch(logs[9:])
		},
		"batches across the marks": func(m *machine) {
			m.ApplyBatch(logs[:3])
			m.ApplyBatch(logs[3:8])
			m.ApplyBatch(logs[8:])
		},
		"restored from a snapshot at 6": func(m *machine) {
			src := digestMachine(t)
			src.ApplyBatch(logs[:6])
			if err := m.Restore(readCloser(nodeSnapshot(t, src))); err != nil {
				t.Fatal(err)
			}
			m.ApplyBatch(logs[6:])
		},
	}
	for name, run := range cases {
		t.Run(name, func(t *testing.T) {
			m := digestMachine(t)
			run(m)
			got := digestsOf(m)
			for idx, d := range got {
				if d != want[idx] {
					t.Errorf("digest at %d: %s, want %s", idx, d, want[idx])
				}
			}
			if _, ok := got[9]; !ok {
				t.Errorf("no digest at 9: %v", got)
			}
		})
	}
}

// TestDigest_SeesStateAndAudit: a replica whose state or audit log differs
// (changed behind raft's back) has another digest at the next mark.
func TestDigest_SeesStateAndAudit(t *testing.T) {
	logs := entries(t, 1, workload()...)
	ref := digestMachine(t)
	ref.ApplyBatch(logs)
	want := digestsOf(ref)[9]

	tests := map[string]func(m *machine){
		"the state": func(m *machine) {
			m.mu.Lock()
			defer m.mu.Unlock()
			// A rogue command applied here only, at the next index: the
			// real entry there is then refused as already applied.
			m.state.Apply(m.state.AppliedIndex()+1, 1, fsm.Command{Header: fsm.Header{Time: 1},
				Body: fsm.Checkpoint{Worker: "w1", Incarnation: 1, Items: []fsm.CheckpointItem{{Partition: "p1", Epoch: 1, Seq: 7}}}})
		},
		"the audit log": func(m *machine) {
			// An event the other replicas never had.
			if err := m.audit.Append([]fsm.Event{{Meta: fsm.Meta{Index: 6, Seq: 1, Term: 1}, Body: fsm.RebalanceSet{Paused: true}}}); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, corrupt := range tests {
		t.Run(name, func(t *testing.T) {
			m := digestMachine(t)
			m.ApplyBatch(logs[:6])
			corrupt(m)
			m.ApplyBatch(logs[6:])
			if got := digestsOf(m)[9]; got.Sum == want.Sum {
				t.Fatalf("corrupted %s, same digest %s at 9", name, got)
			}
		})
	}
}

// TestDigest_KeepsTheNewest: a node keeps the last keepDigests digests, and
// forgets them all when a snapshot replaces its state; marks older than the
// age bound are not fingerprinted.
func TestDigest_KeepsTheNewest(t *testing.T) {
	m := digestMachine(t)
	m.ApplyBatch(entries(t, 1, fsm.Join{Worker: "w1"}))
	marks := make([]fsm.Body, keepDigests+5)
	for i := range marks {
		marks[i] = fsm.MarkDigest{}
	}
	m.ApplyBatch(entries(t, 2, marks...))
	list := *m.digests.Load()
	if len(list) != keepDigests || list[0].Index != 7 || list[len(list)-1].Index != fsm.RaftIndex(len(marks)+1) {
		t.Fatalf("kept %d digests, %d..%d", len(list), list[0].Index, list[len(list)-1].Index)
	}
	if err := m.Restore(readCloser(nodeSnapshot(t, seedMachine(t)))); err != nil {
		t.Fatal(err)
	}
	if m.digests.Load() != nil {
		t.Fatal("digests kept across a snapshot restore")
	}

	m.now = func() time.Time { return time.Unix(0, 0).Add(m.digestMaxAge + time.Second) }
	m.ApplyBatch(entries(t, 100, fsm.MarkDigest{}))
	if m.digests.Load() != nil || m.lastMark.Load() != 100 {
		t.Fatalf("an old mark: digests %v, last mark %d; want none and 100", m.digests.Load(), m.lastMark.Load())
	}
}

func readCloser(b []byte) *nopCloser { return &nopCloser{bytes.NewReader(b)} }

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func TestParseDigest(t *testing.T) {
	d := Digest{Index: 7, Sum: sum(0xab)}
	got, err := ParseDigest(7, d.String())
	if err != nil || got != d {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, bad := range []struct {
		idx uint64
		s   string
	}{{7, d.String()[:10]}, {7, "zz" + d.String()[2:]}, {0, d.String()}, {7, d.String() + "00"}} {
		if _, err := ParseDigest(bad.idx, bad.s); err == nil {
			t.Errorf("ParseDigest(%d, %q) accepted", bad.idx, bad.s)
		}
	}
}

// FuzzParseDigest: a digest read from a peer's status is refused, or is the
// input's index and sum, spelled back (in lower case) exactly as it came.
func FuzzParseDigest(f *testing.F) {
	f.Add(uint64(7), Digest{Sum: sum(0xab)}.String())
	f.Add(uint64(1), strings.Repeat("F", 64))
	f.Add(uint64(0), strings.Repeat("0", 64))
	f.Add(uint64(9), strings.Repeat("0", 63)+"g")
	f.Add(uint64(9), "")
	f.Fuzz(func(t *testing.T, idx uint64, s string) {
		d, err := ParseDigest(idx, s)
		if err != nil {
			return
		}
		if uint64(d.Index) != idx || idx == 0 || d.String() != strings.ToLower(s) {
			t.Fatalf("ParseDigest(%d, %q) = %d %s", idx, s, d.Index, d)
		}
		if again, err := ParseDigest(idx, d.String()); err != nil || again != d {
			t.Fatalf("round trip of %s: %v %v", d, again, err)
		}
	})
}
