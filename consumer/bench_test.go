package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/natstest"
	"github.com/batonhq/baton/internal/testcluster"
)

// BenchmarkThroughput compares the applier with a raw jetstream pull consumer
// on the same stream in the same run: N messages published while the consumer
// is running, timed until all are handled (acked). Reports msgs/s for both and
// the ratio.
func BenchmarkThroughput(b *testing.B) {
	const n = 30_000
	for _, rt := range retentions {
		b.Run(rt.name, func(b *testing.B) {
			e := newEnv(b, rt.r, 16)
			ctx := context.Background()

			// Raw pull consumer (batch 100, explicit acks) on its own stream.
			natsStream := "RAW" + rt.name
			st, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: natsStream, Subjects: []string{"raw.>"}, Retention: rt.r, AllowDirect: true})
			if err != nil {
				b.Fatal(err)
			}
			cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1000})
			if err != nil {
				b.Fatal(err)
			}
			got := make(chan struct{}, n)
			it, err := cons.Messages(jetstream.PullMaxMessages(100), jetstream.PullExpiry(5*time.Second))
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				for {
					m, err := it.Next()
					if err != nil {
						return
					}
					if rt.r == jetstream.LimitsPolicy {
						_ = m.Ack()
					} else {
						_ = m.DoubleAck(ctx)
					}
					got <- struct{}{}
				}
			}()
			start := time.Now()
			publishN(b, e, "raw.%d.x", n)
			for i := 0; i < n; i++ {
				<-got
			}
			raw := float64(n) / time.Since(start).Seconds()
			it.Stop()

			// The applier, one worker owning all 16 partitions.
			e.startWorker("w1", WithHandlerConcurrency(16))
			e.waitSettled()
			start = time.Now()
			publishN(b, e, "orders.p%02d.x", n)
			testcluster.Eventually(b, "all handled", func() error {
				total := 0
				for _, p := range e.parts {
					total += len(e.rec.records(p))
				}
				if total < n {
					return fmt.Errorf("%d of %d", total, n)
				}
				return nil
			})
			applier := float64(n) / time.Since(start).Seconds()
			b.ReportMetric(raw, "raw_msgs/s")
			b.ReportMetric(applier, "applier_msgs/s")
			b.ReportMetric(applier/raw, "ratio")
		})
	}
}

// publishN publishes n messages round-robin over 16 partitions, asynchronously.
func publishN(b testing.TB, e *env, format string, n int) {
	b.Helper()
	publishAsync(b, e.js, n, func(i int) string { return fmt.Sprintf(format, i%16) }, []byte("x"))
}

// publishAsync publishes n messages, the i-th on subject(i), with at most 4,000
// acks outstanding.
func publishAsync(b testing.TB, js jetstream.JetStream, n int, subject func(int) string, data []byte) {
	b.Helper()
	ctx := context.Background()
	var futures []jetstream.PubAckFuture
	for i := 0; i < n; i++ {
		f, err := js.PublishAsync(subject(i), data)
		if err != nil {
			b.Fatal(err)
		}
		futures = append(futures, f)
		if len(futures) == 4000 {
			waitAcks(b, ctx, futures)
			futures = futures[:0]
		}
	}
	waitAcks(b, ctx, futures)
}

func waitAcks(b testing.TB, ctx context.Context, fs []jetstream.PubAckFuture) {
	for _, f := range fs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			b.Fatal(err)
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		}
	}
}

// BenchmarkHandoffs moves partitions between two workers one handoff after
// another under continuous publishing, then reports the handoff latency (from
// the prepare to the new owner's activation, and to its first handled message
// of the partition) as p50/p99, and the lost, duplicated and reordered message
// counts over the whole run. -benchtime=Nx sets the number of handoffs
// (make bench runs 1000).
func BenchmarkHandoffs(b *testing.B) {
	e := newEnv(b, jetstream.LimitsPolicy, 8)
	e.startWorker("w1")
	e.startWorker("w2")
	e.waitSettled()
	ctx := context.Background()
	// Operator moves only: the controller must not rebalance in between.
	if _, err := e.client.SetRebalance(ctx, true); err != nil {
		b.Fatal(err)
	}
	// ~2000 msg/s over 8 partitions: a partition sees a message every ~4 ms.
	stop := e.publisher(ctx, 500*time.Microsecond)
	type handoff struct {
		part     fsm.PartitionID
		epoch    fsm.Epoch
		prepared time.Time
		to       fsm.WorkerID
	}
	var hs []handoff
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := e.parts[i%len(e.parts)]
		p, err := e.client.Partition(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		to := fsm.WorkerID("w1")
		if p.Owner == "w1" {
			to = "w2"
		}
		res, err := e.client.Move(ctx, id, api.MoveRequest{To: to})
		if err != nil {
			b.Fatal(err)
		}
		hs = append(hs, handoff{part: id, epoch: p.Epoch + 1, prepared: time.Unix(0, res.Events[0].Time), to: to})
		testcluster.Eventually(b, "handoff done", func() error {
			q, err := e.client.Partition(ctx, id)
			if err != nil {
				return err
			}
			if q.Owner != to || q.Phase != fsm.PhaseActive {
				return fmt.Errorf("%s is %s on %s", id, q.Phase, q.Owner)
			}
			return nil
		})
	}
	b.StopTimer()
	stop()
	e.waitHandled()

	// Latencies from the audit log (activation) and the recorder (first message).
	evs := e.checkAudit()
	activated := map[fsm.PartitionID]map[fsm.Epoch]time.Time{}
	phase := map[string][]time.Duration{}
	var prepT, drainT map[fsm.HandoffID]int64 = map[fsm.HandoffID]int64{}, map[fsm.HandoffID]int64{}
	commitT := map[fsm.PartitionID]int64{}
	for _, ev := range evs {
		switch x := ev.Body.(type) {
		case fsm.Prepared:
			prepT[x.Handoff] = ev.Time
		case fsm.Drained:
			drainT[x.Handoff] = ev.Time
			phase["prepare_drain"] = append(phase["prepare_drain"], time.Duration(ev.Time-prepT[x.Handoff]))
		case fsm.Committed:
			commitT[x.Partition] = ev.Time
			phase["drain_commit"] = append(phase["drain_commit"], time.Duration(ev.Time-drainT[x.Handoff]))
		case fsm.Activated:
			if t, ok := commitT[x.Partition]; ok {
				phase["commit_activate"] = append(phase["commit_activate"], time.Duration(ev.Time-t))
			}
		}
		if a, ok := ev.Body.(fsm.Activated); ok {
			if activated[a.Partition] == nil {
				activated[a.Partition] = map[fsm.Epoch]time.Time{}
			}
			activated[a.Partition][a.Epoch] = time.Unix(0, ev.Time)
		}
	}
	var toActive, toFirst []time.Duration
	for _, h := range hs {
		if t, ok := activated[h.part][h.epoch]; ok {
			toActive = append(toActive, t.Sub(h.prepared))
		}
		for _, r := range e.rec.records(h.part) {
			if r.epoch == h.epoch {
				toFirst = append(toFirst, e.rec.firstAt(h.part, h.epoch).Sub(h.prepared))
				break
			}
		}
	}
	lost, dup, reordered := 0, 0, 0
	for p, want := range e.publishedCopy() {
		got := e.rec.seqs(p)
		seen := map[fsm.StreamSeq]int{}
		for i, s := range got {
			seen[s]++
			if i > 0 && s < got[i-1] {
				reordered++
			}
		}
		for _, s := range want {
			switch seen[s] {
			case 0:
				lost++
			case 1:
			default:
				dup += seen[s] - 1
			}
		}
	}
	b.ReportMetric(float64(len(hs)), "handoffs")
	b.ReportMetric(pct(toActive, 50).Seconds()*1000, "prepare_to_active_p50_ms")
	b.ReportMetric(pct(toActive, 99).Seconds()*1000, "prepare_to_active_p99_ms")
	b.ReportMetric(pct(toFirst, 50).Seconds()*1000, "prepare_to_first_msg_p50_ms")
	b.ReportMetric(pct(toFirst, 99).Seconds()*1000, "prepare_to_first_msg_p99_ms")
	for _, name := range []string{"prepare_drain", "drain_commit", "commit_activate"} {
		b.ReportMetric(pct(phase[name], 50).Seconds()*1000, name+"_p50_ms")
		b.ReportMetric(pct(phase[name], 99).Seconds()*1000, name+"_p99_ms")
	}
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(float64(dup), "duplicated")
	b.ReportMetric(float64(reordered), "reordered")
	if lost+dup+reordered > 0 {
		b.Errorf("lost=%d duplicated=%d reordered=%d over %d handoffs", lost, dup, reordered, len(hs))
	}
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// BenchmarkCatchupRead reads one partition's backlog (20,000 messages, every
// fourth message of the stream) the way a catch-up does, three ways in the
// same run: batched direct gets confirmed by the leader (the applier's read
// when the stream allows direct gets), the leader's message-get API alone (its
// read otherwise), and nats.go's GetMsg per message (the applier's read
// before batching). Reports msgs/s for each and the ratios to GetMsg.
func BenchmarkCatchupRead(b *testing.B) {
	const total, subjects = 80_000, 4
	s := natstest.Start(b)
	_, js := natstest.Connect(b, s.URL())
	st := natstest.CreateStream(b, js, "BACKLOG", jetstream.LimitsPolicy, "bl.>")
	publishAsync(b, js, total, func(i int) string { return fmt.Sprintf("bl.%d", i%subjects) },
		[]byte("payload-of-some-sixty-four-bytes-payload-of-some-sixty-four-byte"))
	ctx := context.Background()
	const want = total / subjects

	readAll := func(next func(seq uint64) ([]*jetstream.RawStreamMsg, error)) float64 {
		start := time.Now()
		n, seq := 0, uint64(1)
		for {
			msgs, err := next(seq)
			if err != nil {
				b.Fatal(err)
			}
			if len(msgs) == 0 {
				break
			}
			n += len(msgs)
			seq = msgs[len(msgs)-1].Sequence + 1
		}
		if n != want {
			b.Fatalf("read %d messages, want %d", n, want)
		}
		return float64(n) / time.Since(start).Seconds()
	}
	batched := newStreamReader(js, "BACKLOG", true, defaultOptions().catchupWindow, nil)
	leader := newStreamReader(js, "BACKLOG", false, defaultOptions().catchupWindow, nil)
	var rb, rl, rg float64
	for range b.N {
		rb = readAll(func(seq uint64) ([]*jetstream.RawStreamMsg, error) { return batched.next(ctx, "bl.1", seq) })
		rl = readAll(func(seq uint64) ([]*jetstream.RawStreamMsg, error) { return leader.next(ctx, "bl.1", seq) })
		rg = readAll(func(seq uint64) ([]*jetstream.RawStreamMsg, error) {
			m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject("bl.1"))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			return []*jetstream.RawStreamMsg{m}, nil
		})
	}
	b.ReportMetric(rb, "batched_msgs/s")
	b.ReportMetric(rl, "leader_msgs/s")
	b.ReportMetric(rg, "getmsg_msgs/s")
	b.ReportMetric(rb/rg, "batched/getmsg")
	b.ReportMetric(rl/rg, "leader/getmsg")
}

// BenchmarkPause measures what a graceful handoff costs the partitions that
// move, as their handlers see it: 16 partitions, ~2,000 msg/s, 200 µs of work
// per message; a third worker joins two, then one of the first two leaves
// gracefully. A moved partition's pause is the time from the old owner's last
// handler entry to the new owner's first, minus the producer's own gap between
// those two messages (their stream timestamps): what the handoff added. The
// baseline, from the same run, is the same difference between consecutive
// messages of one owner (steady_*). Each iteration is one full run; every run
// must be exact.
func BenchmarkPause(b *testing.B) {
	var pauses, steady, join, leave []time.Duration
	// The leave's moves by phase, from the audit log (one clock: every
	// node and worker runs in this process): prepare→drain, drain→commit,
	// commit→the new owner's first handler entry.
	leavePhase := map[string][]time.Duration{}
	dups := 0
	for i := 0; i < b.N; i++ {
		e := newEnv(b, jetstream.LimitsPolicy, 16)
		start := func(w fsm.WorkerID) { e.startWorkerWith(w, e.client, e.rec.working(w, 200*time.Microsecond)) }
		start("w1")
		start("w2")
		e.waitSettled()
		stop := e.publisher(context.Background(), 500*time.Microsecond)
		start("w3") // joins: partitions move to it
		e.waitSettled()
		e.stopWorker("w2") // leaves gracefully: its partitions move
		e.waitSettled()
		stop()
		e.waitHandled()
		e.checkExactlyOnce()
		type key struct {
			p fsm.PartitionID
			e fsm.Epoch
		}
		prepT, drainT := map[fsm.HandoffID]int64{}, map[fsm.HandoffID]int64{}
		commitOf := map[key][2]int64{} // commit time, handoff
		for _, ev := range e.checkAudit() {
			switch x := ev.Body.(type) {
			case fsm.Prepared:
				prepT[x.Handoff] = ev.Time
			case fsm.Drained:
				drainT[x.Handoff] = ev.Time
			case fsm.Committed:
				commitOf[key{x.Partition, x.Epoch}] = [2]int64{ev.Time, int64(x.Handoff)}
			}
		}
		for _, p := range e.parts {
			recs := e.rec.records(p)
			for j := 1; j < len(recs); j++ {
				r, prev := recs[j], recs[j-1]
				if prev.epoch == r.epoch || prev.worker != "w2" {
					continue
				}
				c, ok := commitOf[key{p, r.epoch}]
				h := fsm.HandoffID(c[1])
				if !ok || prepT[h] == 0 || drainT[h] == 0 {
					continue
				}
				leavePhase["prepare_drain"] = append(leavePhase["prepare_drain"], time.Duration(drainT[h]-prepT[h]))
				leavePhase["drain_commit"] = append(leavePhase["drain_commit"], time.Duration(c[0]-drainT[h]))
				leavePhase["commit_first"] = append(leavePhase["commit_first"], r.at.Sub(time.Unix(0, c[0])))
			}
		}
		for _, p := range e.parts {
			recs := e.rec.records(p)
			seen := map[fsm.StreamSeq]bool{}
			for j, r := range recs {
				if seen[r.seq] {
					dups++
				}
				seen[r.seq] = true
				if j == 0 {
					continue
				}
				prev := recs[j-1]
				d := r.at.Sub(prev.at) - r.stored.Sub(prev.stored)
				switch {
				case prev.epoch == r.epoch:
					steady = append(steady, d) // the baseline: no handoff between them
				case prev.worker == "w2":
					pauses, leave = append(pauses, d), append(leave, d)
				default:
					pauses, join = append(pauses, d), append(join, d)
				}
			}
		}
	}
	b.ReportMetric(float64(len(pauses)), "moves")
	b.ReportMetric(pct(pauses, 50).Seconds()*1000, "pause_p50_ms")
	b.ReportMetric(pct(pauses, 99).Seconds()*1000, "pause_p99_ms")
	b.ReportMetric(slices.Max(append(pauses, 0)).Seconds()*1000, "pause_max_ms")
	b.ReportMetric(pct(join, 50).Seconds()*1000, "pause_join_p50_ms")
	b.ReportMetric(pct(join, 99).Seconds()*1000, "pause_join_p99_ms")
	b.ReportMetric(pct(leave, 50).Seconds()*1000, "pause_leave_p50_ms")
	b.ReportMetric(pct(leave, 99).Seconds()*1000, "pause_leave_p99_ms")
	for _, ph := range []string{"prepare_drain", "drain_commit", "commit_first"} {
		b.ReportMetric(pct(leavePhase[ph], 50).Seconds()*1000, "leave_"+ph+"_p50_ms")
		b.ReportMetric(pct(leavePhase[ph], 99).Seconds()*1000, "leave_"+ph+"_p99_ms")
	}
	b.ReportMetric(pct(steady, 50).Seconds()*1000, "steady_p50_ms")
	b.ReportMetric(pct(steady, 99).Seconds()*1000, "steady_p99_ms")
	b.ReportMetric(float64(dups), "duplicates")
	if dups > 0 {
		b.Errorf("%d duplicates in graceful handoffs", dups)
	}
}
