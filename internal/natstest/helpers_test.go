package natstest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// deadline bounds every condition wait; it is far above anything a
	// healthy server needs so a slow -race run on two cores never flakes,
	// and it is never part of a pass/fail verdict.
	deadline = 15 * time.Second

	// shortAckWait makes ack-wait redelivery observable within a test.
	shortAckWait = 200 * time.Millisecond

	// longAckWait keeps the server from redelivering anything during a
	// test that is not about redelivery, however slow the machine is.
	longAckWait = 5 * time.Minute
)

// testCtx returns a context bounded by deadline and cancelled at cleanup.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// pub publishes one message and returns its stream sequence.
func pub(t testing.TB, js jetstream.JetStream, subj string) uint64 {
	t.Helper()
	// A clustered stream may not answer a publish right after it was
	// created or got a new leader ("no response from stream"): publish
	// again under the same message id, which the stream deduplicates.
	id := fmt.Sprintf("%s/%s/%d", t.Name(), subj, time.Now().UnixNano())
	deadline := time.Now().Add(10 * time.Second)
	for {
		ack, err := js.Publish(testCtx(t), subj, []byte(subj), jetstream.WithMsgID(id))
		if err == nil {
			return ack.Sequence
		}
		if !errors.Is(err, jetstream.ErrNoStreamResponse) || time.Now().After(deadline) {
			t.Fatalf("publish %s: %v", subj, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// consumerConfig is the shape of a Baton worker consumer: one durable,
// explicit-ack pull consumer whose filter is the set of owned subjects.
func consumerConfig(name string, ackWait time.Duration, filters ...string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        name,
		AckPolicy:      jetstream.AckExplicitPolicy,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckWait:        ackWait,
		FilterSubjects: filters,
	}
}

// upsert creates or updates the durable consumer and returns its handle and
// the info the server returned with the update.
func upsert(t testing.TB, st jetstream.Stream, cfg jetstream.ConsumerConfig) (jetstream.Consumer, *jetstream.ConsumerInfo) {
	t.Helper()
	c, err := st.CreateOrUpdateConsumer(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("create/update consumer %s filters=%v: %v", cfg.Durable, cfg.FilterSubjects, err)
	}
	return c, c.CachedInfo()
}

// info fetches fresh consumer info from the server.
func info(t testing.TB, c jetstream.Consumer) *jetstream.ConsumerInfo {
	t.Helper()
	ci, err := c.Info(testCtx(t))
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return ci
}

// fetchN pulls exactly n messages, failing if they do not arrive before the
// deadline. It only ever asks for the remainder, so it never over-reads.
func fetchN(t testing.TB, c jetstream.Consumer, n int) []jetstream.Msg {
	t.Helper()
	var got []jetstream.Msg
	end := time.Now().Add(deadline)
	for len(got) < n && time.Now().Before(end) {
		b, err := c.Fetch(n-len(got), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		for m := range b.Messages() {
			got = append(got, m)
		}
		if err := b.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			t.Fatalf("fetch batch: %v", err)
		}
	}
	if len(got) != n {
		t.Fatalf("fetched %d messages %v within %v, want %d", len(got), describe(t, got), deadline, n)
	}
	return got
}

// fetchNone asserts the server has nothing deliverable for the consumer
// right now. FetchNoWait is answered by the server immediately (404) when
// its own num-pending and redelivery queue are empty, so this is a verdict
// from server state, not a timeout.
func fetchNone(t testing.TB, c jetstream.Consumer) {
	t.Helper()
	b, err := c.FetchNoWait(100)
	if err != nil {
		t.Fatalf("fetch no wait: %v", err)
	}
	var got []jetstream.Msg
	for m := range b.Messages() {
		got = append(got, m)
	}
	if len(got) != 0 {
		t.Fatalf("expected no deliverable messages, got %v", describe(t, got))
	}
}

// meta returns a delivered message's stream sequence and delivery count.
func meta(t testing.TB, m jetstream.Msg) (seq, delivered uint64) {
	t.Helper()
	md, err := m.Metadata()
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	return md.Sequence.Stream, md.NumDelivered
}

// seqs returns the stream sequences of msgs, in delivery order.
func seqs(t testing.TB, msgs []jetstream.Msg) []uint64 {
	t.Helper()
	out := make([]uint64, 0, len(msgs))
	for _, m := range msgs {
		s, _ := meta(t, m)
		out = append(out, s)
	}
	return out
}

func describe(t testing.TB, msgs []jetstream.Msg) []string {
	t.Helper()
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		s, d := meta(t, m)
		out = append(out, m.Subject()+"#"+strconv.FormatUint(s, 10)+"x"+strconv.FormatUint(d, 10))
	}
	return out
}

// ackSync acks and waits for the server to confirm, so later assertions
// on consumer or stream state do not race the ack.
func ackSync(t testing.TB, msgs ...jetstream.Msg) {
	t.Helper()
	for _, m := range msgs {
		// Right after a consumer leader moved, the ack may find no
		// responder yet: nothing was acked, and a DoubleAck is safe to
		// send again (fact 24).
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := m.DoubleAck(testCtx(t))
			if err == nil {
				break
			}
			if !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
				t.Fatalf("double ack %s: %v", m.Subject(), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// inStream reports whether the stream still stores seq.
func inStream(t testing.TB, st jetstream.Stream, seq uint64) bool {
	t.Helper()
	_, err := st.GetMsg(testCtx(t), seq)
	switch {
	case err == nil:
		return true
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false
	default:
		t.Fatalf("get msg %d: %v", seq, err)
		return false
	}
}

// eventually polls cond until it holds or the deadline passes. Polling a
// server-side condition is the synchronisation; the interval only sets how
// quickly we notice.
func eventually(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(deadline)
	var last string
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(end) {
			t.Fatalf("%s: not true within %v; last state: %s", what, deadline, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantSeqs fails unless got equals want, in order.
func wantSeqs(t testing.TB, what string, got, want []uint64) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got seqs %v, want %v", what, got, want)
	}
}

func cursor(ci *jetstream.ConsumerInfo) string {
	return fmt.Sprintf("delivered.stream=%d ackfloor.stream=%d num_pending=%d num_ack_pending=%d num_redelivered=%d num_waiting=%d",
		ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting)
}
