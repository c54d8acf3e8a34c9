package fsm_test

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/batonhq/baton/fsm"
)

// benchState builds a state with n partitions owned (active) by w workers.
func benchState(b *testing.B, n, w int) (*fsm.State, fsm.RaftIndex) {
	b.Helper()
	s, err := fsm.New(fsm.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	idx := fsm.RaftIndex(0)
	apply := func(body fsm.Body) fsm.Result {
		idx++
		r := s.Apply(idx, 1, fsm.Command{Header: fsm.Header{Actor: "bench", Time: int64(idx)}, Body: body})
		if err := r.FirstError(); err != nil {
			b.Fatalf("%T: %v", body, err)
		}
		return r
	}
	for i := 0; i < w; i++ {
		apply(fsm.Join{Worker: fsm.WorkerID(fmt.Sprintf("w%03d", i))})
	}
	for lo := 0; lo < n; lo += 10_000 {
		var specs []fsm.PartitionSpec
		var claims []fsm.ClaimItem
		for i := lo; i < min(lo+10_000, n); i++ {
			id := fsm.PartitionID(fmt.Sprintf("orders-%06d", i))
			specs = append(specs, fsm.PartitionSpec{ID: id, Subjects: []string{fmt.Sprintf("orders.%06d.>", i)}})
			claims = append(claims, fsm.ClaimItem{Partition: id, Worker: fsm.WorkerID(fmt.Sprintf("w%03d", i%w))})
		}
		apply(fsm.Declare{Partitions: specs})
		apply(fsm.Claim{Items: claims})
	}
	for i := 0; i < w; i++ {
		wid := fsm.WorkerID(fmt.Sprintf("w%03d", i))
		a, _ := s.Assignment(wid)
		var items []fsm.ActivateItem
		for _, p := range a.Partitions {
			items = append(items, fsm.ActivateItem{Partition: p.Partition, Epoch: p.Epoch})
		}
		for lo := 0; lo < len(items); lo += 10_000 {
			apply(fsm.Activate{Worker: wid, Incarnation: a.Incarnation, Items: items[lo:min(lo+10_000, len(items))]})
		}
	}
	return s, idx
}

// BenchmarkApply_Claim: claims of single partitions, one command each, over a
// pool of 100,000 partitions released in batches (untimed) when used up.
func BenchmarkApply_Claim(b *testing.B) {
	const pool = 100_000
	s, idx := benchState(b, 0, 4)
	var specs []fsm.PartitionSpec
	for i := 0; i < pool; i++ {
		specs = append(specs, fsm.PartitionSpec{ID: fsm.PartitionID(fmt.Sprintf("c%08d", i)), Subjects: []string{fmt.Sprintf("c.%d", i)}})
		if len(specs) == 10_000 {
			idx++
			s.Apply(idx, 1, fsm.Command{Body: fsm.Declare{Partitions: specs}})
			specs = nil
		}
	}
	releaseAll := func() {
		for w := 0; w < 4; w++ {
			wid := fsm.WorkerID(fmt.Sprintf("w%03d", w))
			a, _ := s.Assignment(wid)
			for lo := 0; lo < len(a.Partitions); lo += 10_000 {
				var items []fsm.ReleaseItem
				for _, p := range a.Partitions[lo:min(lo+10_000, len(a.Partitions))] {
					items = append(items, fsm.ReleaseItem{Partition: p.Partition, Epoch: p.Epoch, ThroughSeq: p.Checkpoint})
				}
				idx++
				s.Apply(idx, 1, fsm.Command{Body: fsm.Release{Worker: wid, Incarnation: a.Incarnation, Items: items}})
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i > 0 && i%pool == 0 {
			b.StopTimer()
			releaseAll()
			b.StartTimer()
		}
		idx++
		r := s.Apply(idx, 1, fsm.Command{Header: fsm.Header{RequestID: fmt.Sprint(idx)}, Body: fsm.Claim{Items: []fsm.ClaimItem{
			{Partition: fsm.PartitionID(fmt.Sprintf("c%08d", i%pool)), Worker: fsm.WorkerID(fmt.Sprintf("w%03d", i%4))}}}})
		if r.FirstError() != nil {
			b.Fatal(r.FirstError())
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
}

// BenchmarkApply_Handoff: a whole graceful handoff (prepare, drain, commit,
// activate) of one partition, four commands, over 10,000 partitions.
func BenchmarkApply_Handoff(b *testing.B) {
	s, idx := benchState(b, 10_000, 10)
	apply := func(body fsm.Body) {
		idx++
		if r := s.Apply(idx, 1, fsm.Command{Header: fsm.Header{RequestID: fmt.Sprint(idx), Time: int64(idx)}, Body: body}); r.FirstError() != nil {
			b.Fatal(r.FirstError())
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fsm.PartitionID(fmt.Sprintf("orders-%06d", i%10_000))
		p, _ := s.PartitionView(id)
		from := p.Owner
		to := fsm.WorkerID(fmt.Sprintf("w%03d", (i/10_000+1+int(from[len(from)-1]-'0'))%10))
		if to == from {
			to = fsm.WorkerID(fmt.Sprintf("w%03d", (int(from[len(from)-1]-'0')+1)%10))
		}
		apply(fsm.Prepare{Items: []fsm.PrepareItem{{Partition: id, Epoch: p.Epoch, From: from, To: to, DrainTimeout: int64(time.Second)}}})
		p, _ = s.PartitionView(id)
		wf, _ := s.Worker(from)
		apply(fsm.DrainReport{Worker: from, Incarnation: wf.Incarnation, Items: []fsm.DrainItem{{Handoff: p.Handoff, Partition: id, Epoch: p.Epoch, ThroughSeq: p.Checkpoint + 5}}})
		apply(fsm.Commit{Items: []fsm.CommitItem{{Handoff: p.Handoff, Partition: id}}})
		wt, _ := s.Worker(to)
		apply(fsm.Activate{Worker: to, Incarnation: wt.Incarnation, Items: []fsm.ActivateItem{{Partition: id, Epoch: p.Epoch + 1}}})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handoffs/s")
	b.ReportMetric(4*float64(b.N)/b.Elapsed().Seconds(), "commands/s")
}

// BenchmarkApply_Checkpoint1000: one command checkpointing 1,000 partitions.
func BenchmarkApply_Checkpoint1000(b *testing.B) {
	s, idx := benchState(b, 10_000, 10)
	a, _ := s.Assignment("w000")
	parts := a.Partitions[:1000]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		items := make([]fsm.CheckpointItem, len(parts))
		for j, p := range parts {
			items[j] = fsm.CheckpointItem{Partition: p.Partition, Epoch: p.Epoch, Seq: fsm.StreamSeq(i + 1)}
		}
		idx++
		r := s.Apply(idx, 1, fsm.Command{Header: fsm.Header{RequestID: fmt.Sprint(idx)}, Body: fsm.Checkpoint{Worker: "w000", Incarnation: a.Incarnation, Items: items}})
		if r.Rejected() > 0 {
			b.Fatal(r.FirstError())
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
	b.ReportMetric(1000*float64(b.N)/b.Elapsed().Seconds(), "checkpoints/s")
}

// BenchmarkState100k reports the heap held per partition (built by applying
// commands, and read back from a snapshot), and the snapshot and restore
// times, at 100,000 partitions on 100 workers.
func BenchmarkState100k(b *testing.B) {
	const n = 100_000
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	s, _ := benchState(b, n, 100)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perPartition := float64(after.HeapAlloc-before.HeapAlloc) / n
	var buf bytes.Buffer
	b.ResetTimer()
	var snap, restore time.Duration
	for i := 0; i < b.N; i++ {
		buf.Reset()
		t0 := time.Now()
		if err := s.WriteSnapshot(&buf); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := fsm.ReadSnapshot(bytes.NewReader(buf.Bytes()), fsm.DefaultConfig()); err != nil {
			b.Fatal(err)
		}
		snap += t1.Sub(t0)
		restore += time.Since(t1)
	}
	b.StopTimer()
	// The same state as a restarted replica holds it, read from the snapshot.
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := fsm.ReadSnapshot(bytes.NewReader(buf.Bytes()), fsm.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(r)
	runtime.KeepAlive(s)
	b.ReportMetric(perPartition, "heap_bytes/partition")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "restored_heap_bytes/partition")
	b.ReportMetric(float64(buf.Len())/n, "snapshot_bytes/partition")
	b.ReportMetric(snap.Seconds()*1000/float64(b.N), "snapshot_ms")
	b.ReportMetric(restore.Seconds()*1000/float64(b.N), "restore_ms")
}
