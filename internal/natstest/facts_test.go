package natstest

// Each TestFact_* is a specification of a nats-server 2.15.2 / nats.go 1.55
// behaviour that Baton's partition handover depends on. If an upgrade
// changes a fact, its test fails and docs/jetstream-facts.md must be
// revisited before the handover code is trusted again.

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type retention struct {
	name string
	pol  jetstream.RetentionPolicy
}

// allRetentions lists the three retention policies Baton supports, so
// facts that must hold on all of them run once per policy.
func allRetentions() []retention {
	return []retention{
		{"Limits", jetstream.LimitsPolicy},
		{"Interest", jetstream.InterestPolicy},
		{"WorkQueue", jetstream.WorkQueuePolicy},
	}
}

// setup starts a private server and a stream "S" on subjects p.> .
func setup(t *testing.T, pol jetstream.RetentionPolicy) (*nats.Conn, jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	s := Start(t)
	nc, js := Connect(t, s.URL())
	return nc, js, CreateStream(t, js, "S", pol, "p.>")
}

// (a) The handover cannot rely on the new owner's consumer to pick up a
// subject's backlog: adding a filter subject only widens what is delivered
// from the cursor onwards.
func TestFact_AddingFilterSubjectDoesNotRewind(t *testing.T) {
	for _, r := range []retention{{"Limits", jetstream.LimitsPolicy}, {"WorkQueue", jetstream.WorkQueuePolicy}} {
		t.Run(r.name, func(t *testing.T) {
			_, js, st := setup(t, r.pol)
			c, _ := upsert(t, st, consumerConfig("w", longAckWait, "p.a"))
			b1 := pub(t, js, "p.b")
			a1 := pub(t, js, "p.a")
			b2 := pub(t, js, "p.b")
			a2 := pub(t, js, "p.a")
			msgs := fetchN(t, c, 2)
			wantSeqs(t, "p.a deliveries", seqs(t, msgs), []uint64{a1, a2})
			ackSync(t, msgs...)

			_, ci := upsert(t, st, consumerConfig("w", longAckWait, "p.a", "p.b"))
			if ci.Delivered.Stream != a2 || ci.NumPending != 0 {
				t.Fatalf("after adding p.b: %s; want cursor %d and nothing pending", cursor(ci), a2)
			}
			fetchNone(t, c)
			// The p.b messages behind the cursor are still stored: they are
			// orphaned, not lost, and can be read with a direct get.
			for _, seq := range []uint64{b1, b2} {
				if !inStream(t, st, seq) {
					t.Fatalf("p.b seq %d no longer stored", seq)
				}
			}

			b3 := pub(t, js, "p.b")
			msgs = fetchN(t, c, 1)
			wantSeqs(t, "p.b after the update", seqs(t, msgs), []uint64{b3})
			ackSync(t, msgs...)
			fetchNone(t, c)
		})
	}
}

// (a, sharper) The cursor a consumer reports is not always its real
// cursor. When a pull request finds nothing matching and the only message
// ahead is a non-matching one at the cursor, the server steps over it in
// memory without recording it (consumer.go getNextMsg: updateSkipped is only
// called when the jump is more than one), while ConsumerInfo.Delivered.Stream
// comes from the recorded state. A subject added afterwards is then not
// delivered even for a message above the reported Delivered.Stream.
// ResetConsumerToSequence(Delivered.Stream+1) makes the cursor exact again.
func TestFact_ReportedDeliveredCanLagTheRealCursor(t *testing.T) {
	_, js, st := setup(t, jetstream.LimitsPolicy)
	c, _ := upsert(t, st, consumerConfig("w", longAckWait, "p.a"))
	a1 := pub(t, js, "p.a")
	msgs := fetchN(t, c, 1)
	wantSeqs(t, "p.a", seqs(t, msgs), []uint64{a1})
	ackSync(t, msgs...)

	b1 := pub(t, js, "p.b")
	// A pull that finds nothing for the filter: the server looks ahead,
	// hits the end of the stream and steps its cursor over b1.
	b, err := c.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		t.Fatalf("unexpected delivery %s", m.Subject())
	}

	_, ci := upsert(t, st, consumerConfig("w", longAckWait, "p.a", "p.b"))
	if ci.Delivered.Stream != a1 || ci.NumPending != 0 {
		t.Fatalf("after adding p.b: %s; want reported cursor %d < p.b seq %d and nothing pending", cursor(ci), a1, b1)
	}
	fetchNone(t, c)

	resp, err := st.ResetConsumerToSequence(testCtx(t), "w", ci.Delivered.Stream+1)
	if err != nil {
		t.Fatal(err)
	}
	if resp.NumPending != 1 {
		t.Fatalf("after reset: %s", cursor(resp.ConsumerInfo))
	}
	msgs = fetchN(t, c, 1)
	wantSeqs(t, "p.b after reset", seqs(t, msgs), []uint64{b1})
	ackSync(t, msgs...)
}

// (b) Dropping every filter subject widens the consumer to the whole
// stream, so an applier must never let a worker's filter list become empty
// (the last partition removed) without deleting or pausing the consumer.
func TestFact_EmptyFilterSubjectsIsUnfiltered(t *testing.T) {
	_, js, st := setup(t, jetstream.LimitsPolicy)
	a1 := pub(t, js, "p.a")
	b1 := pub(t, js, "p.b")
	c1 := pub(t, js, "p.c")

	all, ci := upsert(t, st, consumerConfig("all", longAckWait))
	if ci.Config.FilterSubject != "" || len(ci.Config.FilterSubjects) != 0 || ci.NumPending != 3 {
		t.Fatalf("created without filters: filter=%q filters=%v %s", ci.Config.FilterSubject, ci.Config.FilterSubjects, cursor(ci))
	}
	wantSeqs(t, "unfiltered", seqs(t, fetchN(t, all, 3)), []uint64{a1, b1, c1})

	w, _ := upsert(t, st, consumerConfig("w", longAckWait, "p.a"))
	msgs := fetchN(t, w, 1)
	wantSeqs(t, "filtered", seqs(t, msgs), []uint64{a1})
	ackSync(t, msgs...)
	_, ci = upsert(t, st, consumerConfig("w", longAckWait))
	if len(ci.Config.FilterSubjects) != 0 || ci.NumPending != 2 {
		t.Fatalf("after removing the last filter: filters=%v %s", ci.Config.FilterSubjects, cursor(ci))
	}
	wantSeqs(t, "unfiltered after update", seqs(t, fetchN(t, w, 2)), []uint64{b1, c1})
}

// (c) A worker that gives a partition away still owns whatever of it is in
// flight: removing the subject from the filter does not drop ack-pending
// entries, the server keeps redelivering them to the same consumer, and the
// ack is honoured.
func TestFact_RemovedSubjectStaysAckPendingAndIsRedelivered(t *testing.T) {
	for _, r := range []retention{{"Limits", jetstream.LimitsPolicy}, {"WorkQueue", jetstream.WorkQueuePolicy}} {
		t.Run(r.name, func(t *testing.T) {
			_, js, st := setup(t, r.pol)
			c, _ := upsert(t, st, consumerConfig("w", shortAckWait, "p.a", "p.b"))
			b1 := pub(t, js, "p.b")
			first := fetchN(t, c, 1)
			wantSeqs(t, "first delivery", seqs(t, first), []uint64{b1})

			_, ci := upsert(t, st, consumerConfig("w", shortAckWait, "p.a"))
			if ci.NumAckPending != 1 {
				t.Fatalf("after removing p.b: %s; want the p.b message still ack-pending", cursor(ci))
			}
			again := fetchN(t, c, 1)
			seq, delivered := meta(t, again[0])
			if seq != b1 || delivered < 2 {
				t.Fatalf("redelivery after removal: seq=%d delivered=%d, want seq %d delivered>=2", seq, delivered, b1)
			}
			ackSync(t, again...)
			eventually(t, "ack accepted", func() (bool, string) {
				ci := info(t, c)
				return ci.NumAckPending == 0 && ci.AckFloor.Stream == b1, cursor(ci)
			})
			stored := inStream(t, st, b1)
			if want := r.pol == jetstream.LimitsPolicy; stored != want {
				t.Fatalf("after ack, message stored=%v, want %v", stored, want)
			}
			fetchNone(t, c)
		})
	}
}

// (d) On a WorkQueue stream two consumers may never overlap, so a handover
// there is necessarily drop-then-add. This pins down the 10100 rejection
// and what becomes of the old owner's in-flight messages.
func TestFact_WorkQueueOverlapRejectedUntilDropped(t *testing.T) {
	_, js, st := setup(t, jetstream.WorkQueuePolicy)
	a, _ := upsert(t, st, consumerConfig("A", shortAckWait, "p.a", "p.b"))
	b, _ := upsert(t, st, consumerConfig("B", longAckWait, "p.c"))

	for _, cfg := range []jetstream.ConsumerConfig{
		consumerConfig("B", longAckWait, "p.c", "p.b"), // update of an existing consumer
		consumerConfig("C", longAckWait, "p.b"),        // creation of a new one
		consumerConfig("D", longAckWait, "p.*"),        // wildcard overlap counts too
	} {
		_, err := st.CreateOrUpdateConsumer(testCtx(t), cfg)
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.ErrorCode(10100) {
			t.Fatalf("%s with %v: err=%v, want APIError 10100", cfg.Durable, cfg.FilterSubjects, err)
		}
		t.Logf("%s %v rejected: code=%d err_code=%d %q", cfg.Durable, cfg.FilterSubjects, apiErr.Code, apiErr.ErrorCode, apiErr.Description)
	}

	// A has two p.b messages in flight; B's cursor is beyond them.
	b1 := pub(t, js, "p.b")
	b2 := pub(t, js, "p.b")
	inflight := fetchN(t, a, 2)
	wantSeqs(t, "A in flight", seqs(t, inflight), []uint64{b1, b2})
	c1 := pub(t, js, "p.c")
	msgs := fetchN(t, b, 1)
	wantSeqs(t, "B", seqs(t, msgs), []uint64{c1})
	ackSync(t, msgs...)

	upsert(t, st, consumerConfig("A", shortAckWait, "p.a"))
	_, ci := upsert(t, st, consumerConfig("B", longAckWait, "p.c", "p.b"))
	if ci.Delivered.Stream != c1 || ci.NumPending != 0 {
		t.Fatalf("B after adding p.b: %s", cursor(ci))
	}

	// A's in-flight p.b messages keep going to A only.
	redelivered := fetchN(t, a, 2)
	wantSeqs(t, "A redeliveries", seqs(t, redelivered), []uint64{b1, b2})
	fetchNone(t, b)

	// They do not hold B back: new p.b traffic flows to B meanwhile.
	b3 := pub(t, js, "p.b")
	msgs = fetchN(t, b, 1)
	wantSeqs(t, "B new p.b", seqs(t, msgs), []uint64{b3})
	ackSync(t, msgs...)

	// A's late acks are honoured and, with no consumer left interested,
	// remove the messages from the work queue.
	ackSync(t, redelivered...)
	for _, seq := range []uint64{b1, b2} {
		if inStream(t, st, seq) {
			t.Fatalf("seq %d still stored after A acked it", seq)
		}
	}
	fetchNone(t, b)
	if ci := info(t, a); ci.NumAckPending != 0 {
		t.Fatalf("A: %s", cursor(ci))
	}
}

// (d, hazard) A consumer created (rather than updated) after the old owner
// dropped the subject starts at the stream's first sequence, so it is handed
// the old owner's in-flight messages as well: both consumers hold the same
// message, which is a duplicate for the application.
func TestFact_WorkQueueNewConsumerIsHandedAnotherConsumersInFlight(t *testing.T) {
	_, js, st := setup(t, jetstream.WorkQueuePolicy)
	a, _ := upsert(t, st, consumerConfig("A", longAckWait, "p.b"))
	b1 := pub(t, js, "p.b")
	inflight := fetchN(t, a, 1)
	wantSeqs(t, "A", seqs(t, inflight), []uint64{b1})

	upsert(t, st, consumerConfig("A", longAckWait, "p.a"))
	c, _ := upsert(t, st, consumerConfig("C", longAckWait, "p.b"))
	dup := fetchN(t, c, 1)
	wantSeqs(t, "new consumer C", seqs(t, dup), []uint64{b1})
	if ci := info(t, a); ci.NumAckPending != 1 {
		t.Fatalf("A: %s; want its delivery still pending", cursor(ci))
	}

	// A's ack no longer removes the message because C now needs it; C's
	// ack does.
	ackSync(t, inflight...)
	if !inStream(t, st, b1) {
		t.Fatalf("removed on A's ack although C still had it pending")
	}
	ackSync(t, dup...)
	if inStream(t, st, b1) {
		t.Fatalf("still stored after both acks")
	}
}

// (e) On an Interest stream the filters are the retention: a subject no
// consumer covers is not stored, and narrowing the last covering filter
// deletes the stored messages at once, in-flight ones included. A
// drop-then-add handover there loses data; the new owner must be added
// first. The old owner's ack-pending entry for a deleted in-flight message
// is not dropped with it (the stream only notifies consumers whose filter
// still matches, stream.go storeUpdates); it lingers until the server next
// tries to redeliver it, finds it gone and terminates it.
func TestFact_InterestDropsMessagesNobodyCovers(t *testing.T) {
	_, js, st := setup(t, jetstream.InterestPolicy)
	a, _ := upsert(t, st, consumerConfig("A", shortAckWait, "p.a"))

	uncovered := pub(t, js, "p.b")
	if inStream(t, st, uncovered) {
		t.Fatalf("p.b seq %d stored although no filter covers it", uncovered)
	}
	a1 := pub(t, js, "p.a")
	if uncovered != 1 || a1 != 2 {
		t.Fatalf("sequences %d, %d: the uncovered publish should still consume a sequence", uncovered, a1)
	}

	upsert(t, st, consumerConfig("A", shortAckWait, "p.a", "p.b"))
	b1 := pub(t, js, "p.b")
	b2 := pub(t, js, "p.b")
	msgs := fetchN(t, a, 2)
	wantSeqs(t, "A", seqs(t, msgs), []uint64{a1, b1})
	ackSync(t, msgs[0]) // p.a done; p.b seq b1 stays in flight, b2 undelivered

	upsert(t, st, consumerConfig("A", shortAckWait, "p.a"))
	eventually(t, "p.b messages deleted", func() (bool, string) {
		s1, s2 := inStream(t, st, b1), inStream(t, st, b2)
		return !s1 && !s2, fmt.Sprintf("b1 stored=%v b2 stored=%v", s1, s2)
	})
	si, err := st.Info(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != 0 {
		t.Fatalf("stream still holds %d messages", si.State.Msgs)
	}
	if ci := info(t, a); ci.NumAckPending != 1 {
		t.Fatalf("A right after the deletion: %s; want the stale in-flight entry still counted", cursor(ci))
	}
	// No pull is waiting, so nothing has tried to redeliver b1 yet. A
	// no-wait pull makes the server try, find b1 gone and drop the entry.
	eventually(t, "stale entry dropped on redelivery attempt", func() (bool, string) {
		fetchNone(t, a)
		ci := info(t, a)
		return ci.NumAckPending == 0, cursor(ci)
	})
}

// (f) A new owner reads a partition's backlog without any consumer: the
// message-get API with next_by_subj returns the first message at or after a
// sequence on a subject, on every retention, and does not disturb
// consumers. Checked both through the direct-get path (AllowDirect) and the
// API path ($JS.API.STREAM.MSG.GET).
func TestFact_GetMsgNextBySubjectOnEveryRetention(t *testing.T) {
	for _, r := range allRetentions() {
		for _, direct := range []bool{true, false} {
			name := r.name + "/api"
			if direct {
				name = r.name + "/direct"
			}
			t.Run(name, func(t *testing.T) {
				s := Start(t)
				nc, js := Connect(t, s.URL())
				ctx := testCtx(t)
				st, err := js.CreateStream(ctx, jetstream.StreamConfig{
					Name: "S", Subjects: []string{"p.>"}, Retention: r.pol,
					Storage: jetstream.FileStorage, AllowDirect: direct,
				})
				if err != nil {
					t.Fatal(err)
				}
				// A consumer that filters the very subject being read, so
				// the Interest stream stores it and the WorkQueue case shows
				// reads do not conflict with the queue's single consumer.
				c, _ := upsert(t, st, consumerConfig("w", longAckWait, "p.a", "p.b"))
				a1 := pub(t, js, "p.a")
				b1 := pub(t, js, "p.b")
				a2 := pub(t, js, "p.a")
				b2 := pub(t, js, "p.b")
				inflight := fetchN(t, c, 2) // a1, b1 pending at the consumer
				// NumPending is maintained asynchronously after a publish;
				// settle it so the comparison below only sees the reads.
				var before *jetstream.ConsumerInfo
				eventually(t, "consumer accounting settled", func() (bool, string) {
					before = info(t, c)
					return before.NumPending == 2 && before.NumAckPending == 2, cursor(before)
				})

				// Watch the API subjects to prove which path nats.go took.
				spy, err := nc.SubscribeSync("$JS.API.>")
				if err != nil {
					t.Fatal(err)
				}
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}

				next := func(from uint64, subj string) (uint64, error) {
					m, err := st.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subj))
					if err != nil {
						return 0, err
					}
					if m.Subject != subj && subj != "p.*" {
						t.Fatalf("next from %d on %s returned subject %s", from, subj, m.Subject)
					}
					return m.Sequence, nil
				}
				for _, tc := range []struct {
					from uint64
					subj string
					want uint64
				}{
					{1, "p.b", b1}, {b1, "p.b", b1}, {b1 + 1, "p.b", b2}, {a1, "p.a", a1}, {a1 + 1, "p.a", a2},
					{b1 + 1, "p.*", a2},
				} {
					got, err := next(tc.from, tc.subj)
					if err != nil || got != tc.want {
						t.Fatalf("next %s from %d: seq=%d err=%v, want %d", tc.subj, tc.from, got, err, tc.want)
					}
				}
				if _, err := next(b2+1, "p.b"); !errors.Is(err, jetstream.ErrMsgNotFound) {
					t.Fatalf("next past the end: err=%v, want ErrMsgNotFound", err)
				}

				req, err := spy.NextMsg(deadline)
				if err != nil {
					t.Fatal(err)
				}
				wantSubj := "$JS.API.STREAM.MSG.GET.S"
				if direct {
					wantSubj = "$JS.API.DIRECT.GET.S"
				}
				if req.Subject != wantSubj {
					t.Fatalf("request went to %s, want %s (payload %s)", req.Subject, wantSubj, req.Data)
				}
				t.Logf("request %s %s", req.Subject, req.Data)
				if err := spy.Unsubscribe(); err != nil {
					t.Fatal(err)
				}

				after := info(t, c)
				if after.Delivered.Stream != before.Delivered.Stream || after.Delivered.Consumer != before.Delivered.Consumer ||
					after.NumAckPending != before.NumAckPending || after.NumPending != before.NumPending {
					t.Fatalf("reads disturbed the consumer: before %s, after %s", cursor(before), cursor(after))
				}

				// DeleteMsg removes exactly one message; next-by-subject
				// then skips it.
				if err := st.DeleteMsg(ctx, b2); err != nil {
					t.Fatalf("delete %d: %v", b2, err)
				}
				if _, err := next(b1+1, "p.b"); !errors.Is(err, jetstream.ErrMsgNotFound) {
					t.Fatalf("next after delete: err=%v, want ErrMsgNotFound", err)
				}
				if !inStream(t, st, a2) {
					t.Fatalf("delete of %d removed %d too", b2, a2)
				}
				ackSync(t, inflight...)
			})
		}
	}
}

// (f) Deleting a message that a consumer holds in flight takes it out of the
// consumer's ack-pending set: it is never redelivered, and a late ack of it
// is accepted without error. A new owner can therefore DeleteMsg what it
// processed from the backlog even if the old owner still had it pending.
func TestFact_DeleteMsgDropsAckPendingEntry(t *testing.T) {
	for _, r := range allRetentions() {
		t.Run(r.name, func(t *testing.T) {
			_, js, st := setup(t, r.pol)
			c, _ := upsert(t, st, consumerConfig("w", shortAckWait, "p.a"))
			a1 := pub(t, js, "p.a")
			a2 := pub(t, js, "p.a")
			inflight := fetchN(t, c, 1)
			wantSeqs(t, "in flight", seqs(t, inflight), []uint64{a1})

			if err := st.DeleteMsg(testCtx(t), a1); err != nil {
				t.Fatal(err)
			}
			eventually(t, "pending entry dropped", func() (bool, string) {
				ci := info(t, c)
				return ci.NumAckPending == 0, cursor(ci)
			})
			// Well past AckWait, the next delivery is a2, never a1 again.
			msgs := fetchN(t, c, 1)
			wantSeqs(t, "next delivery", seqs(t, msgs), []uint64{a2})
			ackSync(t, msgs...)

			err := inflight[0].DoubleAck(testCtx(t))
			t.Logf("late ack of deleted message: err=%v", err)
			if err != nil {
				t.Fatalf("late ack of a deleted message: %v", err)
			}
			ci := info(t, c)
			if ci.NumAckPending != 0 || ci.AckFloor.Stream != a2 || ci.NumRedelivered != 0 {
				t.Fatalf("after late ack: %s", cursor(ci))
			}
			fetchNone(t, c)
		})
	}
}

// (g) nats.go 1.55 exposes the server's consumer reset
// ($JS.API.CONSUMER.RESET.<stream>.<consumer>) as ResetConsumerToSequence:
// it moves the cursor to seq, empties ack-pending and redelivery state, and
// re-delivers messages at or after seq even when they had been acked.
// Acks of deliveries made before the reset are ignored afterwards.
func TestFact_ResetConsumerToSequence(t *testing.T) {
	_, js, st := setup(t, jetstream.LimitsPolicy)
	c, _ := upsert(t, st, consumerConfig("w", longAckWait, "p.a"))
	var all []uint64
	for range 5 {
		all = append(all, pub(t, js, "p.a"))
	}
	msgs := fetchN(t, c, 5)
	ackSync(t, msgs[:3]...)
	ci := info(t, c)
	if ci.Delivered.Stream != 5 || ci.AckFloor.Stream != 3 || ci.NumAckPending != 2 {
		t.Fatalf("before reset: %s", cursor(ci))
	}

	resp, err := st.ResetConsumerToSequence(testCtx(t), "w", 2)
	if err != nil {
		t.Fatalf("reset: %v", err)
	}
	t.Logf("reset response: reset_seq=%d %s", resp.ResetSeq, cursor(resp.ConsumerInfo))
	if resp.ResetSeq != 2 || resp.Delivered.Stream != 1 || resp.AckFloor.Stream != 1 ||
		resp.NumAckPending != 0 || resp.NumPending != 4 {
		t.Fatalf("reset response: reset_seq=%d %s", resp.ResetSeq, cursor(resp.ConsumerInfo))
	}

	again := fetchN(t, c, 4)
	wantSeqs(t, "after reset", seqs(t, again), all[1:])
	for _, m := range again {
		if _, d := meta(t, m); d != 1 {
			t.Fatalf("delivery count after reset = %d, want 1 (reset clears redelivery state)", d)
		}
	}
	// Acks are keyed by stream sequence: an ack left over from a delivery
	// made before the reset acks the new delivery of the same message.
	ackSync(t, msgs[3])
	if ci := info(t, c); ci.NumAckPending != 3 {
		t.Fatalf("stale ack of seq %d: %s; want it to ack the new delivery", all[3], cursor(ci))
	}
	ackSync(t, again...)
	fetchNone(t, c)

	// ResetConsumer (no sequence) goes back to ack floor + 1, a no-op here.
	r0, err := js.ResetConsumer(testCtx(t), "S", "w")
	if err != nil || r0.ResetSeq != 6 {
		t.Fatalf("reset to ack floor: resp=%+v err=%v", r0, err)
	}

	// A consumer that does not start at DeliverAll cannot be reset to an
	// arbitrary sequence.
	if _, err := st.CreateOrUpdateConsumer(testCtx(t), jetstream.ConsumerConfig{
		Durable: "new", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ResetConsumerToSequence(testCtx(t), "new", 1); !errors.Is(err, jetstream.ErrConsumerInvalidReset) {
		t.Fatalf("reset of DeliverNew consumer: err=%v, want ErrConsumerInvalidReset", err)
	}
}

// (g, WorkQueue) On a work queue acked messages are gone, so resetting a
// quiesced consumer (nothing ack-pending) re-delivers exactly the messages
// of its filter still stored at or after seq: with a just-added subject,
// that is that subject's orphaned backlog and nothing of the consumer's
// other, already acked subjects.
func TestFact_ResetOnWorkQueueDeliversOnlyRemainingBacklog(t *testing.T) {
	_, js, st := setup(t, jetstream.WorkQueuePolicy)
	b, _ := upsert(t, st, consumerConfig("B", longAckWait, "p.c"))
	x1 := pub(t, js, "p.b") // nobody covers p.b: orphaned backlog
	c1 := pub(t, js, "p.c")
	x2 := pub(t, js, "p.b")
	c2 := pub(t, js, "p.c")
	msgs := fetchN(t, b, 2)
	wantSeqs(t, "B", seqs(t, msgs), []uint64{c1, c2})
	ackSync(t, msgs...)

	_, ci := upsert(t, st, consumerConfig("B", longAckWait, "p.c", "p.b"))
	if ci.NumPending != 0 || ci.NumAckPending != 0 {
		t.Fatalf("after adding p.b: %s", cursor(ci))
	}
	resp, err := st.ResetConsumerToSequence(testCtx(t), "B", x1)
	if err != nil {
		t.Fatal(err)
	}
	if resp.NumPending != 2 {
		t.Fatalf("after reset: %s", cursor(resp.ConsumerInfo))
	}
	backlog := fetchN(t, b, 2)
	wantSeqs(t, "backlog", seqs(t, backlog), []uint64{x1, x2})
	ackSync(t, backlog...)
	fetchNone(t, b)
	si, err := st.Info(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != 0 {
		t.Fatalf("work queue still holds %d messages", si.State.Msgs)
	}
}

// (h) Term is an ack as far as retention goes: on WorkQueue and Interest
// the terminated message is removed, on Limits it stays. Nak hands the
// message straight back to the same consumer without waiting for AckWait.
func TestFact_TermRemovesAndNakRedelivers(t *testing.T) {
	for _, r := range allRetentions() {
		t.Run(r.name, func(t *testing.T) {
			_, js, st := setup(t, r.pol)
			c, _ := upsert(t, st, consumerConfig("w", longAckWait, "p.a"))
			a1 := pub(t, js, "p.a")
			a2 := pub(t, js, "p.a")
			msgs := fetchN(t, c, 2)
			wantSeqs(t, "first deliveries", seqs(t, msgs), []uint64{a1, a2})

			if err := msgs[0].Term(); err != nil {
				t.Fatal(err)
			}
			eventually(t, "term processed", func() (bool, string) {
				ci := info(t, c)
				return ci.NumAckPending == 1 && ci.AckFloor.Stream == a1, cursor(ci)
			})
			stored := inStream(t, st, a1)
			if want := r.pol == jetstream.LimitsPolicy; stored != want {
				t.Fatalf("terminated message stored=%v, want %v", stored, want)
			}

			if err := msgs[1].Nak(); err != nil {
				t.Fatal(err)
			}
			// longAckWait rules out an ack-wait redelivery: only the Nak
			// can bring a2 back within the deadline.
			again := fetchN(t, c, 1)
			seq, d := meta(t, again[0])
			if seq != a2 || d != 2 {
				t.Fatalf("after nak: seq=%d delivered=%d, want %d delivered 2", seq, d, a2)
			}
			ackSync(t, again...)
			fetchNone(t, c)
		})
	}
}

// (i) Baton changes FilterSubjects under a worker that is blocked in a
// long pull. The update must not break the pull loop: the outstanding pull
// request survives, newly added subjects arrive on it and removed ones stop.
func TestFact_FilterUpdateDuringOutstandingPull(t *testing.T) {
	_, js, st := setup(t, jetstream.LimitsPolicy)
	c, _ := upsert(t, st, consumerConfig("w", longAckWait, "p.a"))
	it, err := c.Messages(jetstream.PullMaxMessages(10), jetstream.PullExpiry(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	got := make(chan jetstream.Msg, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			_ = m.Ack()
			got <- m
		}
	}()
	recv := func(what string) jetstream.Msg {
		t.Helper()
		select {
		case m := <-got:
			return m
		case <-time.After(deadline):
			t.Fatalf("%s: nothing received within %v", what, deadline)
			return nil
		}
	}
	eventually(t, "pull request parked", func() (bool, string) {
		ci := info(t, c)
		return ci.NumWaiting > 0, cursor(ci)
	})

	upsert(t, st, consumerConfig("w", longAckWait, "p.a", "p.b"))
	if ci := info(t, c); ci.NumWaiting == 0 {
		t.Fatalf("update dropped the waiting pull: %s", cursor(ci))
	}
	b1 := pub(t, js, "p.b")
	if s, _ := meta(t, recv("added subject")); s != b1 {
		t.Fatalf("got seq %d, want %d", s, b1)
	}

	upsert(t, st, consumerConfig("w", longAckWait, "p.b"))
	pub(t, js, "p.a") // no longer in the filter
	b2 := pub(t, js, "p.b")
	if s, _ := meta(t, recv("after removal")); s != b2 {
		t.Fatalf("got seq %d, want %d (the removed subject must not be delivered)", s, b2)
	}
	it.Stop()
	<-done
}

// (i) Re-applying an unchanged config is a no-op: no cursor move, no
// redelivery, in-flight messages stay in flight. An applier can therefore
// converge by blindly re-sending the desired config. CreateConsumer (create
// action) with the identical config also succeeds, but with a different
// one fails with ErrConsumerExists.
func TestFact_CreateOrUpdateWithSameConfigIsNoOp(t *testing.T) {
	_, js, st := setup(t, jetstream.WorkQueuePolicy)
	cfg := consumerConfig("w", longAckWait, "p.a", "p.b")
	c, _ := upsert(t, st, cfg)
	pub(t, js, "p.a")
	pub(t, js, "p.b")
	pub(t, js, "p.a")
	inflight := fetchN(t, c, 2)
	// NumPending is maintained asynchronously after a publish; settle it.
	var before *jetstream.ConsumerInfo
	eventually(t, "consumer accounting settled", func() (bool, string) {
		before = info(t, c)
		return before.NumPending == 1 && before.NumAckPending == 2, cursor(before)
	})

	_, after := upsert(t, st, cfg)
	if after.Delivered.Stream != before.Delivered.Stream || after.AckFloor.Stream != before.AckFloor.Stream ||
		after.NumAckPending != 2 || after.NumPending != 1 || after.NumRedelivered != 0 {
		t.Fatalf("re-apply changed state: before %s, after %s", cursor(before), cursor(after))
	}
	if _, err := st.CreateConsumer(testCtx(t), cfg); err != nil {
		t.Fatalf("create with identical config: %v", err)
	}
	changed := consumerConfig("w", longAckWait, "p.a")
	if _, err := st.CreateConsumer(testCtx(t), changed); !errors.Is(err, jetstream.ErrConsumerExists) {
		t.Fatalf("create with a different config: err=%v, want ErrConsumerExists", err)
	}
	ackSync(t, inflight...)
	msgs := fetchN(t, c, 1)
	if _, d := meta(t, msgs[0]); d != 1 {
		t.Fatalf("third message delivered %d times", d)
	}
	ackSync(t, msgs...)
}

// (i, surprise) The WorkQueue overlap check is done on the subjects in the
// request, so updating an existing consumer to an empty filter is accepted
// even though another consumer exists, and leaves an unfiltered consumer
// overlapping everyone else on the queue (creating one is refused with
// 10099). The applier must never send an empty filter on a WorkQueue.
func TestFact_WorkQueueUpdateToEmptyFilterIsNotOverlapChecked(t *testing.T) {
	_, js, st := setup(t, jetstream.WorkQueuePolicy)
	upsert(t, st, consumerConfig("A", longAckWait, "p.a"))
	b, _ := upsert(t, st, consumerConfig("B", longAckWait, "p.b"))

	_, err := st.CreateOrUpdateConsumer(testCtx(t), consumerConfig("C", longAckWait))
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.ErrorCode(10099) {
		t.Fatalf("create unfiltered next to others: err=%v, want APIError 10099", err)
	}

	_, ci := upsert(t, st, consumerConfig("B", longAckWait))
	if len(ci.Config.FilterSubjects) != 0 {
		t.Fatalf("update to empty filter: filters=%v", ci.Config.FilterSubjects)
	}
	a1 := pub(t, js, "p.a")
	msgs := fetchN(t, b, 1)
	wantSeqs(t, "B now receives A's subject", seqs(t, msgs), []uint64{a1})
	ackSync(t, msgs...)
}

// (i) A pause survives config updates: the consumer create/update API
// keeps the existing PauseUntil and ignores the one in the request
// (jetstream_api.go jsConsumerCreateRequest), so pausing and resuming go
// through PauseConsumer/ResumeConsumer, and a filter update cannot
// accidentally resume a paused worker. While paused nothing is delivered
// and the cursor does not move.
func TestFact_PauseSurvivesUpdateAndFreezesCursor(t *testing.T) {
	_, js, st := setup(t, jetstream.LimitsPolicy)
	c, _ := upsert(t, st, consumerConfig("w", longAckWait, "p.a"))
	if _, err := st.PauseConsumer(testCtx(t), "w", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	a1 := pub(t, js, "p.a")

	_, ci := upsert(t, st, consumerConfig("w", longAckWait, "p.a", "p.b"))
	if !ci.Paused || ci.Config.PauseUntil == nil {
		t.Fatalf("update without PauseUntil resumed the consumer: paused=%v until=%v", ci.Paused, ci.Config.PauseUntil)
	}
	cfg := consumerConfig("w", longAckWait, "p.a", "p.b")
	past := time.Now().Add(-time.Minute)
	cfg.PauseUntil = &past
	if _, ci = upsert(t, st, cfg); !ci.Paused {
		t.Fatalf("update with a past PauseUntil resumed the consumer")
	}
	b, err := c.Fetch(1, jetstream.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		t.Fatalf("paused consumer delivered %s", m.Subject())
	}
	if ci := info(t, c); ci.Delivered.Stream != 0 || ci.NumPending != 1 {
		t.Fatalf("paused consumer: %s", cursor(ci))
	}

	if _, err := st.ResumeConsumer(testCtx(t), "w"); err != nil {
		t.Fatal(err)
	}
	msgs := fetchN(t, c, 1)
	wantSeqs(t, "after resume", seqs(t, msgs), []uint64{a1})
	ackSync(t, msgs...)
}

// (i) ResumeConsumer does not wake pull requests that were parked while
// the consumer was paused: resuming clears PauseUntil without signalling
// the delivery loop (consumer.go updatePauseState only arms a timer for a
// future deadline), so a waiting pull stays idle until something else
// wakes the consumer - a new matching message, a new pull request or the
// pull's idle heartbeat - and, as here, can expire empty although messages
// are pending. A worker should start a fresh pull after resuming.
func TestFact_ResumeDoesNotWakeParkedPulls(t *testing.T) {
	_, js, st := setup(t, jetstream.LimitsPolicy)
	c, _ := upsert(t, st, consumerConfig("w", longAckWait, "p.a"))
	if _, err := st.PauseConsumer(testCtx(t), "w", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	a1 := pub(t, js, "p.a")

	// A pull with no idle heartbeat (requests up to 10s get none), parked
	// while paused.
	parked, err := c.Fetch(1, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "pull parked", func() (bool, string) {
		ci := info(t, c)
		return ci.NumWaiting == 1, cursor(ci)
	})
	if _, err := st.ResumeConsumer(testCtx(t), "w"); err != nil {
		t.Fatal(err)
	}
	for m := range parked.Messages() {
		s, _ := meta(t, m)
		t.Fatalf("resume woke the parked pull (seq %d): the workaround in the handover can go", s)
	}
	if ci := info(t, c); ci.NumPending != 1 || ci.Paused {
		t.Fatalf("after the parked pull expired: %s paused=%v", cursor(ci), ci.Paused)
	}
	msgs := fetchN(t, c, 1) // a fresh pull request wakes the consumer
	wantSeqs(t, "fresh pull", seqs(t, msgs), []uint64{a1})
	ackSync(t, msgs...)
}

// (i) The exact handover, end to end, under live traffic, on every
// retention. The new owner B is paused, drains its in-flight messages and
// stops pulling, gets the subject added, and is reset to an explicit
// sequence S: that makes its cursor exact (Delivered.Stream alone can lag,
// see TestFact_ReportedDeliveredCanLagTheRealCursor) and, because nothing
// is ack-pending, the reset re-delivers nothing B already handled. Messages
// of the subject below S belong to the old side, those at or above S arrive
// through B after resume (with a fresh pull, see
// TestFact_ResumeDoesNotWakeParkedPulls). On Limits and Interest the old
// owner A covers the subject until it has handled everything below S (on
// Interest dropping it earlier deletes that backlog). On WorkQueue overlap
// is forbidden, so A lets go first, and S is the stream's first sequence:
// acked messages are gone, so the reset delivers exactly the orphaned
// backlog, in order.
func TestFact_PausedResetGivesExactHandoverBoundary(t *testing.T) {
	for _, r := range allRetentions() {
		t.Run(r.name, func(t *testing.T) {
			_, js, st := setup(t, r.pol)
			ctx := testCtx(t)
			oldOwnerDrains := r.pol != jetstream.WorkQueuePolicy
			var a jetstream.Consumer
			if oldOwnerDrains {
				a, _ = upsert(t, st, consumerConfig("A", longAckWait, "p.b"))
			}
			b, _ := upsert(t, st, consumerConfig("B", longAckWait, "p.c"))

			// B's worker: a Messages() loop that acks everything and reports
			// the p.b sequences it processed.
			got := make(chan uint64, 64)
			startWorker := func() (stop func()) {
				it, err := b.Messages(jetstream.PullMaxMessages(10))
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan struct{})
				go func() {
					defer close(done)
					for {
						m, err := it.Next()
						if err != nil {
							return
						}
						md, _ := m.Metadata()
						if m.Subject() == "p.b" {
							got <- md.Sequence.Stream
						}
						_ = m.Ack()
					}
				}()
				return func() { it.Stop(); <-done }
			}
			stopWorker := startWorker()
			defer func() { stopWorker() }()

			// Traffic on both subjects runs while B is switched over.
			var published []uint64
			publishSome := func(n int) {
				for range n {
					published = append(published, pub(t, js, "p.b"))
					pub(t, js, "p.c")
				}
			}
			publishSome(5)

			if _, err := st.PauseConsumer(ctx, "B", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			publishSome(2)
			eventually(t, "B drained its in-flight messages", func() (bool, string) {
				ci := info(t, b)
				return ci.NumAckPending == 0, cursor(ci)
			})
			stopWorker()
			stopWorker = func() {}

			_, ci := upsert(t, st, consumerConfig("B", longAckWait, "p.c", "p.b"))
			start := ci.Delivered.Stream + 1
			if !oldOwnerDrains {
				si, err := st.Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				start = si.State.FirstSeq
			}
			resp, err := st.ResetConsumerToSequence(ctx, "B", start)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ResetSeq != start || !resp.Paused {
				t.Fatalf("reset: reset_seq=%d paused=%v, want %d and still paused", resp.ResetSeq, resp.Paused, start)
			}
			publishSome(3)

			var old []uint64 // handled on the old side of the boundary
			if oldOwnerDrains {
				for _, m := range fetchN(t, a, len(published)) {
					if s, _ := meta(t, m); s < start {
						old = append(old, s)
					}
					ackSync(t, m) // at or above S: acked unprocessed, B owns it
				}
				upsert(t, st, consumerConfig("A", longAckWait, "p.a"))
			}

			if _, err := st.ResumeConsumer(ctx, "B"); err != nil {
				t.Fatal(err)
			}
			stopWorker = startWorker()
			var live []uint64
			for len(old)+len(live) < len(published) {
				select {
				case s := <-got:
					live = append(live, s)
				case <-time.After(deadline):
					t.Fatalf("old %v + live %v incomplete, published %v, boundary %d", old, live, published, start)
				}
			}
			wantSeqs(t, "old side then live", append(old, live...), published)
			t.Logf("boundary %d: old side %v, live %v", start, old, live)
			eventually(t, "B caught up", func() (bool, string) {
				ci := info(t, b)
				return ci.NumPending == 0 && ci.NumAckPending == 0, cursor(ci)
			})
			if r.pol != jetstream.LimitsPolicy {
				eventually(t, "stream emptied", func() (bool, string) {
					si, err := st.Info(ctx)
					if err != nil {
						t.Fatal(err)
					}
					return si.State.Msgs == 0, fmt.Sprintf("%d messages left", si.State.Msgs)
				})
			}
			select {
			case s := <-got:
				t.Fatalf("p.b seq %d delivered twice", s)
			default:
			}
		})
	}
}

// (m) Direct gets are answered by whichever member of the "_sys_" queue group
// the server picks: every replica of the stream and every mirror created with
// MirrorDirect (once it has copied a message). A responder that lags answers
// "not found" for what it has not copied; the message-get API is answered by
// the stream leader only. A batched direct get with next_by_subj streams the
// subject's messages in order and ends with a 204 EOB status.
func TestFact_DirectGetsMayBeAnsweredByALaggingMirror(t *testing.T) {
	nc, js, _ := setup(t, jetstream.LimitsPolicy)
	ctx := testCtx(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "LAG", Mirror: &jetstream.StreamSource{Name: "S", FilterSubject: "p.sync"},
		MirrorDirect: true, Storage: jetstream.MemoryStorage,
	}); err != nil {
		t.Fatal(err)
	}
	pub(t, js, "p.sync")
	a1, a2, a3 := pub(t, js, "p.a"), pub(t, js, "p.a"), pub(t, js, "p.a")
	direct := func(body string) []*nats.Msg {
		t.Helper()
		inbox := nc.NewInbox()
		sub, err := nc.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		if err := nc.PublishRequest("$JS.API.DIRECT.GET.S", inbox, []byte(body)); err != nil {
			t.Fatal(err)
		}
		var out []*nats.Msg
		for {
			m, err := sub.NextMsg(deadline)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
			if m.Header.Get("Status") != "" {
				return out
			}
		}
	}

	// Ask until each responder has answered once: the origin streams the
	// batch, the mirror has none of it.
	answered := map[string][]*nats.Msg{}
	eventually(t, "both the stream and its mirror answered a direct get", func() (bool, string) {
		r := direct(fmt.Sprintf(`{"seq":%d,"next_by_subj":"p.a","batch":10}`, a1))
		who := r[0].Header.Get(jetstream.StreamHeader)
		if who == "" {
			who = "404:" + r[0].Header.Get("Status")
		}
		answered[who] = r
		return len(answered) == 2, fmt.Sprint(len(answered), " responders")
	})
	origin, ok := answered["S"]
	if !ok || len(origin) != 4 {
		t.Fatalf("the stream's answer: %v", answered)
	}
	for i, want := range []uint64{a1, a2, a3} {
		if got := origin[i].Header.Get(jetstream.SequenceHeader); got != fmt.Sprint(want) {
			t.Fatalf("batch message %d has sequence %s, want %d", i, got, want)
		}
		if origin[i].Header.Get("Nats-Num-Pending") == "" {
			t.Fatalf("batch message %d has no Nats-Num-Pending header", i)
		}
	}
	if eob := origin[3]; eob.Header.Get("Status") != "204" || len(eob.Data) != 0 {
		t.Fatalf("the batch ends with %v, want a 204 EOB status", eob.Header)
	}
	if _, ok := answered["404:404"]; !ok {
		t.Fatalf("the lagging mirror's answer: %v, want a 404 status", answered)
	}

	// The message-get API never goes to the mirror.
	for range 20 {
		var resp struct {
			Message *struct {
				Seq uint64 `json:"seq"`
			} `json:"message"`
		}
		r, err := nc.Request("$JS.API.STREAM.MSG.GET.S", fmt.Appendf(nil, `{"seq":%d,"next_by_subj":"p.a"}`, a1), deadline)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(r.Data, &resp); err != nil || resp.Message == nil || resp.Message.Seq != a1 {
			t.Fatalf("message get answered %s", r.Data)
		}
	}
}
