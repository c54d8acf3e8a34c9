package raftnode

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/fsm"
)

// BenchmarkDigest100k is what one digest mark costs at 100,000 partitions on
// 100 workers (the fsm's BenchmarkState100k state, with its audit log): the
// time the FSM goroutine spends fingerprinting the state and the audit log's
// head, during which no entry is applied (readers go on).
func BenchmarkDigest100k(b *testing.B) {
	const n, workers = 100_000, 100
	m := newTestMachine(b)
	m.now = func() time.Time { return time.Unix(0, 0) }
	var bodies []fsm.Body
	for i := 0; i < workers; i++ {
		bodies = append(bodies, fsm.Join{Worker: fsm.WorkerID(fmt.Sprintf("w%03d", i))})
	}
	for lo := 0; lo < n; lo += 10_000 {
		var specs []fsm.PartitionSpec
		var claims []fsm.ClaimItem
		for i := lo; i < min(lo+10_000, n); i++ {
			id := fsm.PartitionID(fmt.Sprintf("orders-%06d", i))
			specs = append(specs, fsm.PartitionSpec{ID: id, Subjects: []string{fmt.Sprintf("orders.%06d.>", i)}})
			claims = append(claims, fsm.ClaimItem{Partition: id, Worker: fsm.WorkerID(fmt.Sprintf("w%03d", i%workers))})
		}
		bodies = append(bodies, fsm.Declare{Partitions: specs}, fsm.Claim{Items: claims})
	}
	for _, l := range entries(b, 1, bodies...) {
		m.ApplyBatch([]*raft.Log{l})
	}
	idx := m.state.AppliedIndex()
	var snap, digest time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := m.Snapshot(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := m.digest(idx); err != nil {
			b.Fatal(err)
		}
		snap += t1.Sub(t0)
		digest += time.Since(t1)
	}
	b.ReportMetric(digest.Seconds()*1000/float64(b.N), "digest_ms")
	b.ReportMetric(snap.Seconds()*1000/float64(b.N), "snapshot_ms")
}
