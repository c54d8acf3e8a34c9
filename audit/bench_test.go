package audit

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/batonhq/baton/fsm"
)

// streamEvents produces a stream of which the log retains at least n events
// (checkpoint compaction drops the rest), fast (straight fsm.State.Apply, no
// per-command checks): 20 workers and 2,000 partitions moving around by
// graceful handoffs (prepare, drain, commit, activate), and a checkpoint batch
// of one worker's partitions after every 100 handoffs.
func streamEvents(tb testing.TB, n int) []fsm.Event {
	tb.Helper()
	s, err := fsm.New(fsm.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	var out []fsm.Event
	checkpoints, checkpointed := 0, map[fsm.PartitionID]bool{}
	idx, now := fsm.RaftIndex(0), int64(1e18)
	apply := func(body fsm.Body) {
		idx++
		now += 1e6
		res := s.Apply(idx, 1, fsm.Command{Header: fsm.Header{Actor: "controller", Cause: "bench", Time: now}, Body: body})
		if err := res.FirstError(); err != nil {
			tb.Fatalf("%T at %d: %v", body, idx, err)
		}
		out = append(out, res.Events...)
		for _, ev := range res.Events {
			if cp, ok := ev.Body.(fsm.Checkpointed); ok {
				checkpoints++
				checkpointed[cp.Partition] = true
			}
		}
	}
	const workers, partitions = 20, 2000
	wid := func(i int) fsm.WorkerID { return fsm.WorkerID(fmt.Sprintf("w%02d", i%workers)) }
	pid := func(i int) fsm.PartitionID { return fsm.PartitionID(fmt.Sprintf("p%05d", i)) }
	for i := range workers {
		apply(fsm.Join{Worker: wid(i)})
	}
	var specs []fsm.PartitionSpec
	var claims []fsm.ClaimItem
	for i := range partitions {
		specs = append(specs, fsm.PartitionSpec{ID: pid(i), Subjects: []string{fmt.Sprintf("orders.%d.>", i)}})
		claims = append(claims, fsm.ClaimItem{Partition: pid(i), Worker: wid(i)})
	}
	apply(fsm.Declare{Partitions: specs})
	apply(fsm.Claim{Items: claims})
	activate := func(id fsm.PartitionID) {
		p, _ := s.PartitionView(id)
		w, _ := s.Worker(p.Owner)
		apply(fsm.Activate{Worker: p.Owner, Incarnation: w.Incarnation,
			Items: []fsm.ActivateItem{{Partition: id, Epoch: p.Epoch}}})
	}
	for i := range partitions {
		activate(pid(i))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for cycle := 0; len(out)-checkpoints+len(checkpointed) < n; cycle++ {
		id := pid(cycle % partitions)
		p, _ := s.PartitionView(id)
		to := wid(int(p.Owner[1]-'0')*10 + int(p.Owner[2]-'0') + 1 + r.IntN(workers-1))
		apply(fsm.Prepare{Items: []fsm.PrepareItem{{Partition: id, Epoch: p.Epoch, From: p.Owner, To: to, Reason: "rebalance"}}})
		w, _ := s.Worker(p.Owner)
		p, _ = s.PartitionView(id)
		apply(fsm.DrainReport{Worker: p.Owner, Incarnation: w.Incarnation, Items: []fsm.DrainItem{{Handoff: p.Handoff,
			Partition: id, Epoch: p.Epoch, ThroughSeq: p.Checkpoint + 5}}})
		apply(fsm.Commit{Items: []fsm.CommitItem{{Handoff: p.Handoff, Partition: id}}})
		activate(id)
		if cycle%100 == 0 {
			as, _ := s.Assignment(to)
			var items []fsm.CheckpointItem
			for _, ap := range as.Partitions {
				if ap.Phase == fsm.PhaseActive {
					items = append(items, fsm.CheckpointItem{Partition: ap.Partition, Epoch: ap.Epoch, Seq: ap.Checkpoint + 1})
				}
			}
			w, _ := s.Worker(to)
			apply(fsm.Checkpoint{Worker: to, Incarnation: w.Incarnation, Items: items})
		}
	}
	return out
}

// chunks splits events into append batches of about size events (whole
// entries), like raftnode's ApplyBatch.
func chunks(events []fsm.Event, size int) [][]fsm.Event {
	var out [][]fsm.Event
	var cur []fsm.Event
	for _, g := range groups(events) {
		cur = append(cur, g...)
		if len(cur) >= size {
			out, cur = append(out, cur), nil
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// BenchmarkAppend appends 200,000 events to a fresh log, in batches of 64
// events (raft's default MaxAppendEntries) and of 1,024, without and with
// retention trimming.
func BenchmarkAppend(b *testing.B) {
	events := streamEvents(b, 200_000)
	for _, batch := range []int{64, 1024} {
		bs := chunks(events, batch)
		for _, maxEvents := range []int{1_000_000, 50_000} {
			b.Run(fmt.Sprintf("batch=%d/max=%d", batch, maxEvents), func(b *testing.B) {
				n := 0
				var elapsed time.Duration
				for b.Loop() {
					l := openLog(b, testConfig(maxEvents))
					start := time.Now()
					appendAll(b, l, bs)
					elapsed += time.Since(start)
					n += len(events)
				}
				b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
				b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "ms/200k")
			})
		}
	}
}

// bigLog returns a log holding about n events.
func bigLog(b *testing.B, n int) (*Log, []fsm.Event) {
	b.Helper()
	events := streamEvents(b, n)
	l := openLog(b, testConfig(2*n))
	start := time.Now()
	appendAll(b, l, chunks(events, 1024))
	b.Logf("appended %d events in %s; bounds %+v", len(events), time.Since(start), l.Bounds())
	return l, events
}

// BenchmarkQueryPartition queries one random partition's newest 100 events
// over a log of 1,000,000 events.
func BenchmarkQueryPartition(b *testing.B) {
	l, _ := bigLog(b, 1_000_000)
	ctx := ctxT(b)
	r := rand.New(rand.NewPCG(3, 4))
	returned := 0
	start := time.Now()
	for b.Loop() {
		p, err := l.Query(ctx, Query{Partition: fsm.PartitionID(fmt.Sprintf("p%05d", r.IntN(2000))), Desc: true})
		if err != nil {
			b.Fatal(err)
		}
		returned += len(p.Events)
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(returned)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(elapsed.Microseconds())/1000/float64(b.N), "ms/query")
}

// BenchmarkSnapshotRestore writes a snapshot of a 300,000-event log and
// restores it into a fresh log.
func BenchmarkSnapshotRestore(b *testing.B) {
	l, events := bigLog(b, 300_000)
	var write, restore time.Duration
	size := 0
	for b.Loop() {
		start := time.Now()
		s, err := l.Snapshot(events[len(events)-1].Index)
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := s.WriteTo(&buf); err != nil {
			b.Fatal(err)
		}
		s.Release()
		write += time.Since(start)
		size = buf.Len()
		fresh := openLog(b, l.cfg)
		start = time.Now()
		if err := fresh.Restore(&buf); err != nil {
			b.Fatal(err)
		}
		restore += time.Since(start)
	}
	n := float64(l.Bounds().Count * b.N)
	b.ReportMetric(float64(write.Milliseconds())/float64(b.N), "ms-write")
	b.ReportMetric(float64(restore.Milliseconds())/float64(b.N), "ms-restore")
	b.ReportMetric(n/write.Seconds(), "events/s-write")
	b.ReportMetric(n/restore.Seconds(), "events/s-restore")
	b.ReportMetric(float64(size)/float64(l.Bounds().Count), "bytes/event")
}
