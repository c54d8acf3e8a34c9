package audit

import (
	"fmt"
	"testing"
	"time"

	"github.com/batonhq/baton/fsm"
)

// checkpointRounds returns the events that set up parts partitions owned
// (active) by workers workers, and then rounds checkpoint entries: each one
// worker's Checkpoint command over all of its partitions (parts/workers
// events in one raft entry), the workers taking turns, as the controller
// benchmark's simulated workers checkpoint every partition about once a
// second.
func checkpointRounds(tb testing.TB, workers, parts, rounds int) (setup []fsm.Event, ckpts [][]fsm.Event) {
	tb.Helper()
	s, err := fsm.New(fsm.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	idx, now := fsm.RaftIndex(0), int64(1e18)
	apply := func(body fsm.Body) []fsm.Event {
		idx++
		now += 1e6
		res := s.Apply(idx, 1, fsm.Command{Header: fsm.Header{Actor: "controller", Cause: "bench", Time: now}, Body: body})
		if err := res.FirstError(); err != nil {
			tb.Fatalf("%T at %d: %v", body, idx, err)
		}
		return res.Events
	}
	wid := func(i int) fsm.WorkerID { return fsm.WorkerID(fmt.Sprintf("worker-%02d", i)) }
	pid := func(i int) fsm.PartitionID { return fsm.PartitionID(fmt.Sprintf("orders-%05d", i)) }
	for i := range workers {
		setup = append(setup, apply(fsm.Join{Worker: wid(i)})...)
	}
	var specs []fsm.PartitionSpec
	claims := make([][]fsm.ClaimItem, workers)
	for i := range parts {
		specs = append(specs, fsm.PartitionSpec{ID: pid(i), Subjects: []string{fmt.Sprintf("orders.%d.>", i)}})
		claims[i%workers] = append(claims[i%workers], fsm.ClaimItem{Partition: pid(i), Worker: wid(i % workers)})
	}
	setup = append(setup, apply(fsm.Declare{Partitions: specs})...)
	for w := range workers {
		setup = append(setup, apply(fsm.Claim{Items: claims[w]})...)
		as, _ := s.Assignment(wid(w))
		var items []fsm.ActivateItem
		for _, ap := range as.Partitions {
			items = append(items, fsm.ActivateItem{Partition: ap.Partition, Epoch: ap.Epoch})
		}
		wk, _ := s.Worker(wid(w))
		setup = append(setup, apply(fsm.Activate{Worker: wid(w), Incarnation: wk.Incarnation, Items: items})...)
	}
	for r := range rounds {
		w := wid(r % workers)
		as, _ := s.Assignment(w)
		items := make([]fsm.CheckpointItem, 0, len(as.Partitions))
		for _, ap := range as.Partitions {
			items = append(items, fsm.CheckpointItem{Partition: ap.Partition, Epoch: ap.Epoch, Seq: ap.Checkpoint + 10})
		}
		wk, _ := s.Worker(w)
		ckpts = append(ckpts, apply(fsm.Checkpoint{Worker: w, Incarnation: wk.Incarnation, Items: items}))
	}
	return setup, ckpts
}

// BenchmarkAppendCheckpoints appends checkpoint rounds of 1,000 partitions
// over 10,000 partitions on 10 workers, one raft entry per Append (as
// raftnode appends when entries arrive one at a time): 50 timed rounds
// (five checkpoints of every partition) after 10 untimed ones, so every
// timed checkpoint replaces its partition's previous one.
func BenchmarkAppendCheckpoints(b *testing.B) {
	const workers, parts, warm, timed = 10, 10_000, 10, 50
	setup, rounds := checkpointRounds(b, workers, parts, warm+timed)
	n := 0
	var elapsed time.Duration
	for b.Loop() {
		b.StopTimer()
		l := openLog(b, DefaultConfig())
		appendAll(b, l, groups(setup))
		appendAll(b, l, rounds[:warm])
		b.StartTimer()
		start := time.Now()
		appendAll(b, l, rounds[warm:])
		elapsed += time.Since(start)
		for _, r := range rounds[warm:] {
			n += len(r)
		}
		b.StopTimer()
		if got := l.Bounds().Count; got != len(setup)+parts {
			b.Fatalf("%d events retained, want %d", got, len(setup)+parts)
		}
		l.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "checkpoints/s")
	b.ReportMetric(float64(elapsed.Microseconds())/1000/float64(b.N*timed), "ms/round")
}
