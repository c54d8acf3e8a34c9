package natstest

// Pull-consumer measurements behind the pull settings recommended in
// docs/jetstream-facts.md. They are benchmarks, not tests, so figures never
// decide pass/fail. Run them without -race, one iteration each:
//
//	go test -run '^$' -bench 'Pull' -benchtime=1x ./internal/natstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	benchMessages = 50_000
	benchPayload  = 128
)

// BenchmarkPullThroughput drains a pre-filled Limits stream through a
// fresh durable explicit-ack consumer per iteration, acking every message,
// with each nats.go pull style and batch size. Messages and Consume use a 5s
// pull expiry (2.5s idle heartbeat) so that the batch-1 stall measured by
// BenchmarkPullSteadyGap costs 5s instead of the 30s it costs with the
// default expiry, which keeps every run well under a minute; hb_misses
// counts those stalls.
func BenchmarkPullThroughput(b *testing.B) {
	s := Start(b)
	_, js := Connect(b, s.URL())
	st := CreateStream(b, js, "BENCH", jetstream.LimitsPolicy, "bench.>")
	prefill(b, js, "bench.x", benchMessages)

	styles := []struct {
		name  string
		drain func(b *testing.B, c jetstream.Consumer, batch, n int, hbMisses *atomic.Int64)
	}{
		{"Messages", drainMessages},
		{"Consume", drainConsume},
		{"Fetch", drainFetch},
	}
	var id atomic.Int64
	for _, style := range styles {
		for _, batch := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", style.name, batch), func(b *testing.B) {
				var hbMisses atomic.Int64
				for range b.N {
					b.StopTimer()
					name := "c" + strconv.FormatInt(id.Add(1), 10)
					c, _ := upsert(b, st, consumerConfig(name, time.Minute))
					b.StartTimer()
					style.drain(b, c, batch, benchMessages, &hbMisses)
					b.StopTimer()
					if err := st.DeleteConsumer(testCtx(b), name); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(benchMessages*b.N)/b.Elapsed().Seconds(), "msgs/s")
				b.ReportMetric(float64(hbMisses.Load()), "hb_misses")
			})
		}
	}
}

func prefill(b *testing.B, js jetstream.JetStream, subj string, n int) {
	b.Helper()
	payload := make([]byte, benchPayload)
	for i := range n {
		if _, err := js.PublishAsync(subj, payload); err != nil {
			b.Fatalf("publish %d: %v", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("prefill did not complete")
	}
}

func drainMessages(b *testing.B, c jetstream.Consumer, batch, n int, hbMisses *atomic.Int64) {
	it, err := c.Messages(jetstream.PullMaxMessages(batch), jetstream.PullExpiry(steadyExpiry))
	if err != nil {
		b.Fatal(err)
	}
	defer it.Stop()
	for i := 0; i < n; {
		m, err := it.Next()
		if errors.Is(err, jetstream.ErrNoHeartbeat) {
			hbMisses.Add(1)
			continue
		}
		if err != nil {
			b.Fatalf("next after %d: %v", i, err)
		}
		_ = m.Ack()
		i++
	}
}

func drainConsume(b *testing.B, c jetstream.Consumer, batch, n int, hbMisses *atomic.Int64) {
	var got atomic.Int64
	done := make(chan struct{})
	cc, err := c.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if got.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(batch), jetstream.PullExpiry(steadyExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				hbMisses.Add(1)
			}
		}))
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		cc.Stop()
		<-cc.Closed()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("consumed %d of %d", got.Load(), n)
	}
}

func drainFetch(b *testing.B, c jetstream.Consumer, batch, n int, _ *atomic.Int64) {
	for i := 0; i < n; {
		mb, err := c.Fetch(min(batch, n-i), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		for m := range mb.Messages() {
			_ = m.Ack()
			i++
		}
		if err := mb.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			b.Fatalf("fetch after %d: %v", i, err)
		}
	}
}

const (
	steadyRate     = 1000 // messages per second
	steadyDuration = 20 * time.Second
	// steadyExpiry gives a 2.5s idle heartbeat (nats.go uses expiry/2),
	// the setting under which the earlier library saw 5s stalls; with the
	// 30s default a stall would outlast the whole run.
	steadyExpiry = 5 * time.Second
)

// BenchmarkPullSteadyGap publishes at a steady ~1000 msg/s for 20s to a
// worker-shaped consumer and records the longest silence between two
// consecutive deliveries, for Messages() and Consume() with PullMaxMessages
// 1, 10 and 100, and for a plain Fetch loop with the same batch sizes. A
// stall shows up as a max gap far above the 1ms publish interval and as
// missed-heartbeat errors.
func BenchmarkPullSteadyGap(b *testing.B) {
	for _, style := range []string{"Messages", "Consume", "Fetch"} {
		for _, batch := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("%s/max=%d", style, batch), func(b *testing.B) {
				if b.N > 1 {
					b.Skip("one 20s run is the measurement; use -benchtime=1x")
				}
				steadyRun(b, style, batch)
			})
		}
	}
}

func steadyRun(b *testing.B, style string, batch int) {
	s := Start(b)
	_, js := Connect(b, s.URL())
	pubNC, _ := Connect(b, s.URL())
	st := CreateStream(b, js, "STEADY", jetstream.LimitsPolicy, "steady.>")
	c, _ := upsert(b, st, consumerConfig("w", time.Minute, "steady.x"))

	rec := &gapRecorder{}
	var hbMisses atomic.Int64
	stop := startReceiver(b, c, style, batch, rec, &hbMisses)

	pubGap, sent := publishSteady(b, pubNC, "steady.x")

	// Wait for the tail so it is not counted as lost.
	ctx, cancel := context.WithTimeout(context.Background(), 3*steadyExpiry)
	defer cancel()
	for rec.count() < sent && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	stop()

	gaps := rec.result()
	b.ReportMetric(float64(gaps.max.Microseconds())/1000, "max_gap_ms")
	b.ReportMetric(float64(gaps.p999.Microseconds())/1000, "p99.9_gap_ms")
	b.ReportMetric(float64(gaps.over1s), "gaps>1s")
	b.ReportMetric(float64(hbMisses.Load()), "hb_misses")
	b.ReportMetric(float64(pubGap.Microseconds())/1000, "pub_max_gap_ms")
	b.ReportMetric(float64(sent), "sent")
	b.ReportMetric(float64(gaps.n), "received")
}

// publishSteady publishes one message per millisecond tick for
// steadyDuration with core NATS publishes (JetStream stores them; the
// publisher does not wait for acks), returning its own longest gap so that
// publisher hiccups are not blamed on the consumer.
func publishSteady(b *testing.B, nc *nats.Conn, subj string) (maxGap time.Duration, sent int) {
	b.Helper()
	payload := make([]byte, benchPayload)
	tick := time.NewTicker(time.Second / steadyRate)
	defer tick.Stop()
	end := time.Now().Add(steadyDuration)
	last := time.Now()
	for now := range tick.C {
		if now.After(end) {
			break
		}
		if err := nc.Publish(subj, payload); err != nil {
			b.Fatalf("publish: %v", err)
		}
		sent++
		t := time.Now()
		maxGap = max(maxGap, t.Sub(last))
		last = t
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	return maxGap, sent
}

func startReceiver(b *testing.B, c jetstream.Consumer, style string, batch int, rec *gapRecorder, hbMisses *atomic.Int64) (stop func()) {
	b.Helper()
	opts := []jetstream.PullMessagesOpt{jetstream.PullMaxMessages(batch), jetstream.PullExpiry(steadyExpiry)}
	switch style {
	case "Messages":
		it, err := c.Messages(opts...)
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				m, err := it.Next()
				if errors.Is(err, jetstream.ErrNoHeartbeat) {
					hbMisses.Add(1)
					continue
				}
				if err != nil {
					return
				}
				rec.mark()
				_ = m.Ack()
			}
		}()
		return func() { it.Stop(); <-done }
	case "Consume":
		cc, err := c.Consume(func(m jetstream.Msg) {
			rec.mark()
			_ = m.Ack()
		}, jetstream.PullMaxMessages(batch), jetstream.PullExpiry(steadyExpiry),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if errors.Is(err, jetstream.ErrNoHeartbeat) {
					hbMisses.Add(1)
				}
			}))
		if err != nil {
			b.Fatal(err)
		}
		return func() {
			cc.Stop()
			<-cc.Closed()
		}
	case "Fetch":
		// One pull request at a time, each delivering as messages arrive;
		// no client-side re-pull logic to race.
		quit := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-quit:
					return
				default:
				}
				mb, err := c.Fetch(batch, jetstream.FetchMaxWait(time.Second))
				if err != nil {
					return
				}
				for m := range mb.Messages() {
					rec.mark()
					_ = m.Ack()
				}
			}
		}()
		return func() { close(quit); <-done }
	}
	b.Fatalf("unknown style %q", style)
	return nil
}

// gapRecorder keeps the time between consecutive deliveries.
type gapRecorder struct {
	mu   sync.Mutex
	last time.Time
	gaps []time.Duration
	n    int
}

func (r *gapRecorder) mark() {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n > 0 {
		r.gaps = append(r.gaps, now.Sub(r.last))
	}
	r.last = now
	r.n++
}

func (r *gapRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

type gapStats struct {
	n      int
	max    time.Duration
	p999   time.Duration
	over1s int
}

func (r *gapRecorder) result() gapStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := slices.Clone(r.gaps)
	slices.Sort(g)
	st := gapStats{n: r.n}
	if len(g) == 0 {
		return st
	}
	st.max = g[len(g)-1]
	st.p999 = g[len(g)*999/1000]
	for _, d := range g {
		if d > time.Second {
			st.over1s++
		}
	}
	return st
}
