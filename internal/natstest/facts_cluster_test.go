package natstest

// Facts 20–24: what changes when the stream and the worker's consumer are
// replicated (R3) on a 3-node cluster and their leaders move. Each test runs
// its own cluster in parallel with the others: most of their time is spent
// waiting for elections.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// infoFrom fetches consumer info, waiting through an election.
func infoFrom(t testing.TB, c jetstream.Consumer) *jetstream.ConsumerInfo {
	t.Helper()
	var ci *jetstream.ConsumerInfo
	waitFor(t, "consumer info", func() error {
		var err error
		ci, err = c.Info(testCtx(t))
		return err
	})
	return ci
}

// msgGet asks the message-get API (answered by the stream leader only) for
// the first message on subject at or after seq: its sequence, 0 when the
// leader says there is none, or the error of the request.
func msgGet(nc *nats.Conn, stream, subject string, seq uint64, timeout time.Duration) (uint64, error) {
	r, err := nc.Request("$JS.API.STREAM.MSG.GET."+stream, fmt.Appendf(nil, `{"seq":%d,"next_by_subj":%q}`, seq, subject), timeout)
	if err != nil {
		return 0, err
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Seq uint64 `json:"seq"`
		} `json:"message"`
	}
	if err := json.Unmarshal(r.Data, &resp); err != nil {
		return 0, err
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return 0, nil
	case resp.Error != nil:
		return 0, resp.Error
	case resp.Message == nil:
		return 0, errors.New("empty message-get answer")
	}
	return resp.Message.Seq, nil
}

// directGet asks for the first message on subject at or after seq by direct
// get, answered by whichever member of the replicas' queue group the server
// picks: its sequence, 0 on a 404, or the request's error.
func directGet(nc *nats.Conn, stream, subject string, seq uint64, timeout time.Duration) (uint64, error) {
	r, err := nc.Request("$JS.API.DIRECT.GET."+stream, fmt.Appendf(nil, `{"seq":%d,"next_by_subj":%q}`, seq, subject), timeout)
	if err != nil {
		return 0, err
	}
	if st := r.Header.Get("Status"); st != "" {
		if st != "404" {
			return 0, fmt.Errorf("status %s %s", st, r.Header.Get("Description"))
		}
		return 0, nil
	}
	var s uint64
	if _, err := fmt.Sscan(r.Header.Get(jetstream.SequenceHeader), &s); err != nil {
		return 0, fmt.Errorf("sequence header %q: %w", r.Header.Get(jetstream.SequenceHeader), err)
	}
	return s, nil
}

// gone asks the stream leader whether seq is no longer stored: nil when it
// is gone, an error while it is stored or the leader does not answer.
func gone(nc *nats.Conn, stream string, seq uint64) error {
	r, err := nc.Request("$JS.API.STREAM.MSG.GET."+stream, fmt.Appendf(nil, `{"seq":%d}`, seq), time.Second)
	if err != nil {
		return err
	}
	var resp struct {
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(r.Data, &resp); err != nil {
		return err
	}
	if resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
		return nil
	}
	return fmt.Errorf("seq %d still stored (%v)", seq, resp.Error)
}

// fetchThrough pulls exactly n messages like fetchN, waiting through an
// election: a pull finds no responder while the consumer has no leader.
func fetchThrough(t testing.TB, c jetstream.Consumer, n int) []jetstream.Msg {
	t.Helper()
	var got []jetstream.Msg
	waitFor(t, fmt.Sprintf("%d messages", n), func() error {
		b, err := c.Fetch(n-len(got), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return err
		}
		for m := range b.Messages() {
			got = append(got, m)
		}
		if len(got) < n {
			return fmt.Errorf("%d of %d fetched (%v)", len(got), n, b.Error())
		}
		return nil
	})
	return got
}

// clusterStreams creates one R3 stream per retention, named after it, on
// subjects <name>.>.
func clusterStreams(t testing.TB, c *Cluster, js jetstream.JetStream) map[string]jetstream.Stream {
	t.Helper()
	out := map[string]jetstream.Stream{}
	for _, r := range allRetentions() {
		out[r.name] = c.CreateStream(t, js, r.name, r.pol, r.name+".>")
	}
	return out
}

// (20) A consumer leader change keeps the worker's consumer as it was: its
// filter, cursor, ack floor and ack-pending set are replicated, a message
// delivered by the old leader is acked through the new one, and what was in
// flight is redelivered by the new leader to the same durable after AckWait.
// The applier can keep its deliveries across a consumer leader change.
func TestFact_ClusterConsumerLeaderChangeKeepsState(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3)
	nc, js := Connect(t, c.URL())
	streams := clusterStreams(t, c, js)
	for _, r := range allRetentions() {
		t.Run(r.name, func(t *testing.T) {
			st, a, b := streams[r.name], r.name+".a", r.name+".b"
			cons, _ := upsert(t, st, consumerConfig("w", 2*time.Second, a, b))
			a1, b1, a2 := pub(t, js, a), pub(t, js, b), pub(t, js, a)
			got := fetchN(t, cons, 3)
			wantSeqs(t, "before the change", seqs(t, got), []uint64{a1, b1, a2})
			ackSync(t, got[0])
			before := info(t, cons)

			old := c.ConsumerLeader(t, r.name, "w")
			c.MoveConsumerLeader(t, nc, r.name, "w", c.Others(old)[0])
			after := infoFrom(t, cons)
			if fmt.Sprint(after.Config.FilterSubjects) != fmt.Sprint(before.Config.FilterSubjects) ||
				after.Delivered.Stream != a2 || after.AckFloor.Stream != a1 || after.NumAckPending != 2 {
				t.Fatalf("after the leader change: filters %v %s; before: filters %v %s",
					after.Config.FilterSubjects, cursor(after), before.Config.FilterSubjects, cursor(before))
			}
			// Acked through the new leader: b1, delivered by the old one.
			ackSync(t, got[1])
			if r.pol != jetstream.LimitsPolicy {
				// The stream drops it when it applies the replicated ack,
				// which may come just after the DoubleAck's answer.
				eventually(t, "b1 removed after its ack through the new leader", func() (bool, string) {
					return !inStream(t, st, b1), "still stored"
				})
			}
			// a2 was in flight: redelivered after AckWait, by the new leader.
			again := fetchN(t, cons, 1)
			if s, d := meta(t, again[0]); s != a2 || d != 2 {
				t.Fatalf("redelivery: seq %d delivered %d times, want %d twice", s, d, a2)
			}
			ackSync(t, again...)
			a3 := pub(t, js, a)
			wantSeqs(t, "after the change", seqs(t, fetchN(t, cons, 1)), []uint64{a3})
		})
	}
}

// (21) A filter update is a change of the consumer's assignment, committed
// by the meta group and applied by every replica: once the update call has
// returned, the filter survives the loss of the consumer leader that applied
// it, and the new leader follows it from the same cursor (no rewind, fact 1;
// a removed subject's in-flight message stays ack-pending and is redelivered,
// fact 6). An update sent while the consumer has no leader (its leader
// killed, no election yet) is not answered, and may or may not have been
// applied (both seen): only reading the consumer back once it has a leader
// tells.
func TestFact_ClusterFilterUpdateSurvivesConsumerLeaderLoss(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3)
	nc, js := Connect(t, c.URL())
	st := c.CreateStream(t, js, "S", jetstream.LimitsPolicy, "p.>")
	cons, _ := upsert(t, st, consumerConfig("w", 2*time.Second, "p.a", "p.b"))
	b1 := pub(t, js, "p.b")
	inflight := fetchN(t, cons, 1)
	wantSeqs(t, "p.b in flight", seqs(t, inflight), []uint64{b1})
	pub(t, js, "p.c") // passed over by the next pull: behind the cursor
	a1 := pub(t, js, "p.a")
	passed := fetchN(t, cons, 1)
	wantSeqs(t, "p.a past p.c", seqs(t, passed), []uint64{a1})
	ackSync(t, passed...)
	_, ci := upsert(t, st, consumerConfig("w", 2*time.Second, "p.a", "p.c"))
	if fmt.Sprint(ci.Config.FilterSubjects) != "[p.a p.c]" {
		t.Fatalf("update answered with filters %v", ci.Config.FilterSubjects)
	}

	// The leadership moves away from the leader that applied the update
	// (the loss of a leader in a crash follows below, and in fact 24).
	old := c.ConsumerLeader(t, "S", "w")
	c.MoveConsumerLeader(t, nc, "S", "w", c.Others(old)[0])
	after := infoFrom(t, cons)
	if fmt.Sprint(after.Config.FilterSubjects) != "[p.a p.c]" || after.NumAckPending != 1 {
		t.Fatalf("after the consumer leader was killed: filters %v %s", after.Config.FilterSubjects, cursor(after))
	}
	c2 := pub(t, js, "p.c")
	got := fetchThrough(t, cons, 2)
	if s0, _ := meta(t, got[0]); s0 == b1 {
		got[0], got[1] = got[1], got[0]
	}
	if s, _ := meta(t, got[0]); s != c2 {
		t.Fatalf("new leader delivered %v, want p.c #%d and the redelivered p.b #%d", describe(t, got), c2, b1)
	}
	if s, d := meta(t, got[1]); s != b1 || d < 2 {
		t.Fatalf("new leader delivered %v, want p.b #%d redelivered", describe(t, got), b1)
	}
	ackSync(t, got...)
	fetchNone(t, cons)

	// An update while the consumer's leader is gone (killed, no election
	// yet): the answer, whatever it is, matches what the consumer holds
	// once it has a leader again.
	old = c.ConsumerLeader(t, "S", "w")
	c.Kill(t, old)
	uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err := st.UpdateConsumer(uctx, consumerConfig("w", 2*time.Second, "p.a"))
	cancel()
	final := infoFrom(t, cons)
	t.Logf("update while the consumer leader was gone: err=%v; filters after the election %v", err, final.Config.FilterSubjects)
	if err == nil && fmt.Sprint(final.Config.FilterSubjects) != "[p.a]" {
		t.Fatalf("update answered nil but the consumer's filters are %v", final.Config.FilterSubjects)
	}
}

// (22) A stream leader change in the middle of a catch-up read: while the
// stream has no leader (its leader was killed, no election yet) the
// message-get API is not answered (no responders or a time-out), never with
// "no message"; the new leader answers with every message whose publish was
// acknowledged before the kill, in the same sequences, and says "none" only
// past the last of them. A just-elected leader answers only once it has
// applied its log (nats-server signals leadership after its first entry of
// the term is applied: raft.go switchToLeader), so "none" from it is not a
// stale answer.
func TestFact_ClusterStreamLeaderChangeDuringCatchupRead(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3)
	nc, js := Connect(t, c.URL())
	streams := clusterStreams(t, c, js)
	// All three leaders on one node, killed once.
	l := c.Node(0)
	want := map[string][]uint64{}
	first := map[string]uint64{}
	for _, r := range allRetentions() {
		c.MoveStreamLeader(t, nc, r.name, l)
		// A consumer of the whole stream keeps Interest storing (on a
		// WorkQueue it does not hinder the read, fact 11).
		upsert(t, streams[r.name], consumerConfig("w", longAckWait, r.name+".>"))
		subj := r.name + ".a"
		for range 5 {
			want[r.name] = append(want[r.name], pub(t, js, subj))
		}
		s, err := msgGet(nc, r.name, subj, 1, deadline)
		if err != nil || s != want[r.name][0] {
			t.Fatalf("%s: first read: %d %v, want %d", r.name, s, err, want[r.name][0])
		}
		first[r.name] = s
	}
	c.Kill(t, l)
	for _, r := range allRetentions() {
		subj := r.name + ".a"
		// Until an election, asking is answered by an error, not by "none".
		leaderless := 0
		got := []uint64{first[r.name]}
		waitFor(t, r.name+": the read resumes on a new leader", func() error {
			s, err := msgGet(nc, r.name, subj, got[0]+1, 500*time.Millisecond)
			if err != nil {
				leaderless++
				return err
			}
			if s == 0 {
				t.Fatalf("%s: the new leader answered none after %d; acknowledged %v", r.name, got[0], want[r.name])
			}
			got = append(got, s)
			return nil
		})
		for {
			s, err := msgGet(nc, r.name, subj, got[len(got)-1]+1, deadline)
			if err != nil {
				t.Fatal(err)
			}
			if s == 0 {
				break
			}
			got = append(got, s)
		}
		wantSeqs(t, r.name+": read across the leader change", got, want[r.name])
		t.Logf("%s: %d requests unanswered while leaderless; new leader %s", r.name, leaderless, c.StreamLeader(t, r.name))
	}
}

// (23) Direct gets on a replicated stream are answered by the replica of
// the client's own server, from what that replica has applied: a replica cut
// off from the others answers "not found" for every message published since
// (stale, as a lagging mirror does, fact 19), while the message-get API asked
// through it is not answered at all (its stream leader is out of reach). Once
// healed, the replica catches up and answers again.
func TestFact_ClusterDirectGetsAnsweredByACutOffReplica(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3)
	_, js0 := Connect(t, c.URL())
	c.CreateStream(t, js0, "S", jetstream.LimitsPolicy, "p.>")
	leader := c.StreamLeader(t, "S")
	lc, ljs := Connect(t, leader.URL())
	f := c.Others(leader)[0]
	fc, _ := Connect(t, f.URL())
	a1 := pub(t, ljs, "p.a")
	waitFor(t, "the replica has a1", func() error {
		if s, err := directGet(fc, "S", "p.a", 1, time.Second); err != nil || s != a1 {
			return fmt.Errorf("direct get through %s: %d %v, want %d", f, s, err, a1)
		}
		return nil
	})

	c.Isolate(t, f)
	a2 := pub(t, ljs, "p.a") // the leader and the other replica are a quorum
	// Through f, a direct get goes to any member of the queue group: f's
	// own replica answers at once, the others only over routes that are now
	// cut (no answer). Ask until f's replica has answered a few times.
	stale, silent := 0, 0
	waitFor(t, "the cut-off replica answers a direct get", func() error {
		s, err := directGet(fc, "S", "p.a", a1+1, 100*time.Millisecond)
		switch {
		case err != nil:
			silent++
		case s != 0:
			t.Fatalf("the cut-off replica answered %d for a message it cannot have", s)
		default:
			stale++
		}
		if stale == 0 {
			return fmt.Errorf("%d stale answers, %d unanswered", stale, silent)
		}
		return nil
	})
	t.Logf("through the cut-off replica: %d direct gets answered \"not found\", %d unanswered", stale, silent)
	for range 5 {
		if s, err := msgGet(fc, "S", "p.a", a1+1, 300*time.Millisecond); err == nil {
			t.Fatalf("the message-get API through the cut-off replica answered %d", s)
		}
	}
	waitFor(t, "direct get through the leader", func() error {
		if s, err := directGet(lc, "S", "p.a", a1+1, 300*time.Millisecond); err != nil || s != a2 {
			return fmt.Errorf("direct get through the leader: %d %v, want %d", s, err, a2)
		}
		return nil
	})
	c.Heal(t, f)
	c.WaitCurrent(t)
	waitFor(t, "the healed replica answers", func() error {
		if s, err := directGet(fc, "S", "p.a", a1+1, time.Second); err != nil || s != a2 {
			return fmt.Errorf("direct get through the healed replica: %d %v, want %d", s, err, a2)
		}
		return nil
	})
}

// (24) A DoubleAck is answered by the consumer leader only once the ack is
// committed by the consumer's raft group. A leader cut off from its peers
// never answers: the call times out, the ack is lost, the majority's new
// leader redelivers the message after AckWait, and the same delivery acked
// again through the new leader is accepted. A nil DoubleAck survives the
// loss of the leader that answered it (the new leader neither redelivers the
// message nor keeps it on a WorkQueue). A failed DoubleAck is an unknown
// outcome, and retrying it is safe.
func TestFact_ClusterDoubleAckAnsweredOnlyOnceCommitted(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3)
	n1, n2, n3 := c.Node(0), c.Node(1), c.Node(2)
	// The test's own client stays on n3, which is never cut off.
	nc, js := Connect(t, n3.URL())
	st := c.CreateStream(t, js, "S", jetstream.WorkQueuePolicy, "p.>")
	cons, _ := upsert(t, st, consumerConfig("w", 2*time.Second, "p.a"))
	a1, a2 := pub(t, js, "p.a"), pub(t, js, "p.a")
	got := fetchN(t, cons, 2)
	wantSeqs(t, "deliveries", seqs(t, got), []uint64{a1, a2})

	// a1 acked through n2, leading the consumer but cut off from its peers.
	c.MoveConsumerLeader(t, nc, "S", "w", n2)
	lc, _ := Connect(t, n2.URL())
	c.Isolate(t, n2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err := lc.RequestWithContext(ctx, got[0].Reply(), []byte("+ACK"))
	cancel()
	if err == nil {
		t.Fatalf("a consumer leader without a quorum answered an ack")
	}
	t.Logf("ack through the cut-off leader: %v", err)
	// Both are redelivered by the majority's new leader (a2 was never
	// acked at all).
	redelivered := fetchThrough(t, cons, 2)
	if s, d := meta(t, redelivered[0]); s != a1 || d < 2 {
		t.Fatalf("after the unanswered ack: %v, want a1 #%d redelivered", describe(t, redelivered), a1)
	}
	// The first delivery's ack, retried through the new leader, counts.
	waitFor(t, "the retried ack accepted", func() error { return got[0].DoubleAck(testCtx(t)) })
	ci := infoFrom(t, cons)
	if ci.NumAckPending != 1 || ci.AckFloor.Stream != a1 {
		t.Fatalf("after the retried ack: %s", cursor(ci))
	}
	waitFor(t, "a1 removed after the retried ack", func() error { return gone(nc, "S", a1) })
	c.Heal(t, n2)
	c.WaitCurrent(t)

	// a2 acked through n1, which is then killed.
	c.MoveConsumerLeader(t, nc, "S", "w", n1)
	ackSync(t, got[1])
	c.Kill(t, n1)
	ci = infoFrom(t, cons)
	if ci.AckFloor.Stream != a2 || ci.NumAckPending != 0 {
		t.Fatalf("after the leader that acked a2 was killed: %s", cursor(ci))
	}
	waitFor(t, "a2 removed after a nil DoubleAck and a leader change", func() error { return gone(nc, "S", a2) })
	fetchNone(t, cons)
}

// (26) On a WorkQueue stream, a consumer's ack floor passes over the
// messages of subjects it does not cover; once a subject is added to its
// filter, the server takes the subject's messages at or below that floor for
// acked by it and removes them the next time it checks the consumer's
// interest state: when the consumer gets a new leader (and when the stream
// does, and every two minutes on the stream leader). A new owner covering a
// partition whose backlog lies behind its consumer's ack floor loses the
// part of it that its catch-up has not read yet. Resetting the consumer to
// the stream's start while it is paused, before adding the subject, puts the
// floor below every stored message: the backlog then survives the check and
// the consumer delivers it itself (fact 15).
func TestFact_ClusterWorkQueueAddedSubjectBelowAckFloorRemoved(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3)
	nc, js := Connect(t, c.URL())
	st := c.CreateStream(t, js, "S", jetstream.WorkQueuePolicy, "p.>")
	cons, _ := upsert(t, st, consumerConfig("w", 2*time.Second, "p.a"))
	// b1 and c1 are nobody's; the consumer's floor passes them.
	a1, b1, c1, a2 := pub(t, js, "p.a"), pub(t, js, "p.b"), pub(t, js, "p.c"), pub(t, js, "p.a")
	got := fetchThrough(t, cons, 2)
	wantSeqs(t, "p.a", seqs(t, got), []uint64{a1, a2})
	ackSync(t, got...)
	if ci := infoFrom(t, cons); ci.AckFloor.Stream != a2 {
		t.Fatalf("ack floor %s, want %d", cursor(ci), a2)
	}

	// Adding p.b: b1 is below the floor, and a new consumer leader
	// removes it.
	upsert(t, st, consumerConfig("w", 2*time.Second, "p.a", "p.b"))
	if !inStream(t, st, b1) {
		t.Fatalf("b1 removed by the filter update alone")
	}
	c.MoveConsumerLeader(t, nc, "S", "w", c.Others(c.ConsumerLeader(t, "S", "w"))[0])
	eventually(t, "b1 removed once the consumer has a new leader", func() (bool, string) {
		return !inStream(t, st, b1), "b1 still stored"
	})

	// Adding p.c the other way: paused, reset to the start, then the
	// update, then resumed. Two leader changes later c1 is still there and
	// delivered.
	if _, err := st.PauseConsumer(testCtx(t), "w", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ResetConsumerToSequence(testCtx(t), "w", 1); err != nil {
		t.Fatal(err)
	}
	cons, _ = upsert(t, st, consumerConfig("w", 2*time.Second, "p.a", "p.b", "p.c"))
	for range 2 {
		c.MoveConsumerLeader(t, nc, "S", "w", c.Others(c.ConsumerLeader(t, "S", "w"))[0])
	}
	if _, err := st.ResumeConsumer(testCtx(t), "w"); err != nil {
		t.Fatal(err)
	}
	if !inStream(t, st, c1) {
		t.Fatalf("c1 removed although the consumer was reset before p.c was added")
	}
	again := fetchThrough(t, cons, 1)
	wantSeqs(t, "after the reset and two leader changes", seqs(t, again), []uint64{c1})
	ackSync(t, again...)
}
