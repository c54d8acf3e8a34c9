package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// TestLeader_LearnedAndCalledDirectly: the first call goes where the client
// starts (a follower, which forwards it); its answer names the leader, and
// from then on writes, heartbeats and leader reads (default and linearizable,
// blocking queries too) go straight to the leader: no follower forwards
// anything. When the leader dies, the client finds the new one the same way.
func TestLeader_LearnedAndCalledDirectly(t *testing.T) {
	fwd := newForwardCount(t)
	c := testcluster.NewWithAPI(t, 3, server.Config{Forward: &http.Client{Transport: fwd}})
	leader, fol := c.Leader(t), c.Followers(t)[0]
	rec := newRecorder(t)
	cl := newClient(t, urlsFrom(c, indexOfNode(c, fol)), client.WithHTTPClient(rec.client()))
	ctx := ctxT(t)
	fwd.take()

	reg, err := cl.Register(ctx, api.RegisterRequest{Worker: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	if s := rec.take(); len(s) != 1 || !strings.HasPrefix(s[0].url, fol.URL) {
		t.Fatalf("register sent %+v, want once to the follower %s", s, fol.URL)
	}
	if n := fwd.take(); n != 1 {
		t.Fatalf("the follower forwarded %d requests, want the register", n)
	}

	calls := func(t *testing.T) {
		t.Helper()
		mustOK(t, "cordon")(cl.Cordon(ctx, "w1", true))
		if _, err := cl.Heartbeat(ctx, "w1", reg.Incarnation); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Workers(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.At(client.ConsistencyLinearizable).Worker(ctx, "w1"); err != nil {
			t.Fatal(err)
		}
		_, idx, err := cl.Assignment(ctx, "w1")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := cl.WatchAssignment(ctx, "w1", idx, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	calls(t)
	for _, s := range rec.take() {
		if !strings.HasPrefix(s.url, leader.URL) {
			t.Errorf("%s %s: want it sent to the leader %s", s.method, s.url, leader.URL)
		}
	}
	if n := fwd.take(); n != 0 {
		t.Fatalf("followers forwarded %d requests once the leader was known, want none", n)
	}

	c.Kill(t, indexOfNode(c, leader))
	newLeader := c.Leader(t)
	// The first call after the kill finds the new leader (the old one
	// refuses connections; a follower answers and names it).
	mustOK(t, "cordon after the kill")(cl.Cordon(ctx, "w1", false))
	rec.take()
	fwd.take()
	calls(t)
	for _, s := range rec.take() {
		if !strings.HasPrefix(s.url, newLeader.URL) {
			t.Errorf("%s %s after the kill: want it sent to the new leader %s", s.method, s.url, newLeader.URL)
		}
	}
	if n := fwd.take(); n != 0 {
		t.Fatalf("followers forwarded %d requests once the new leader was known, want none", n)
	}
}

// TestAttempt_HangingNodeGivenUp: the client's first address accepts
// connections and never answers (a frozen node). An attempt there that gets no
// answer within the attempt timeout is given up once the node's /healthz does
// not answer within the attempt timeout either, not at the call's deadline;
// the call goes on at the next address and succeeds, a write keeping its
// request id. Later calls do not start at the hanging node, and a call whose
// deadline is nearer than the attempt timeout, cut short there, makes the
// next call start elsewhere.
func TestAttempt_HangingNodeGivenUp(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	hang := hangingNode(t)
	const attempt = 200 * time.Millisecond
	rec := newRecorder(t)
	addrs := append([]string{hang}, c.URLs()...)
	cl := newClient(t, addrs, client.WithHTTPClient(rec.client()), client.WithAttemptTimeout(attempt))
	ctx := ctxT(t) // much longer than an attempt

	reg, err := cl.Register(ctx, api.RegisterRequest{Worker: "w1"})
	if err != nil {
		t.Fatalf("register past a hanging node: %v", err)
	}
	var calls, probes []sent
	for _, s := range rec.take() {
		if strings.HasSuffix(s.url, api.PathHealth) {
			probes = append(probes, s)
		} else {
			calls = append(calls, s)
		}
	}
	if len(calls) < 2 || !strings.HasPrefix(calls[0].url, hang) || strings.HasPrefix(calls[1].url, hang) {
		t.Fatalf("register sent %+v, want a first attempt at the hanging node %s, then another node", calls, hang)
	}
	if len(probes) != 1 || !strings.HasPrefix(probes[0].url, hang) || probes[0].budget > attempt {
		t.Fatalf("probes %+v, want one of the hanging node, bounded by the attempt timeout %s", probes, attempt)
	}
	for _, s := range calls {
		if s.requestID == "" || s.requestID != calls[0].requestID {
			t.Fatalf("attempts carried request ids %+v, want one id", calls)
		}
	}

	if _, err := cl.Heartbeat(ctx, "w1", reg.Incarnation); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.At(client.ConsistencyStale).Workers(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range rec.take() {
		if strings.HasPrefix(s.url, hang) {
			t.Fatalf("%s %s: sent to the hanging node it had just given up", s.method, s.url)
		}
	}

	// A call with a short deadline, cut short at the hanging node: the next
	// call starts elsewhere.
	fresh := newClient(t, addrs, client.WithHTTPClient(rec.client()))
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = fresh.Heartbeat(short, "w1", reg.Incarnation)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("heartbeat at the hanging node with a short deadline: %v, want the deadline", err)
	}
	rec.take()
	if _, err := fresh.Heartbeat(ctx, "w1", reg.Incarnation); err != nil {
		t.Fatal(err)
	}
	if s := rec.take(); len(s) == 0 || strings.HasPrefix(s[0].url, hang) {
		t.Fatalf("the next heartbeat went %+v, want it to start past the hanging node", s)
	}
}

// TestFrozenLeader_WatchRedirected: the leader freezes (its API holds every
// request and answer; raft cuts it off) while a worker's blocking query is
// parked on it. The worker's heartbeats, each with a short deadline, give the
// frozen node up, reach the new leader and learn it; that moves the parked
// query to the new leader, so the assignment change made there reaches the
// worker while the old leader is still frozen, long before the query's own
// wait would have ended.
func TestFrozenLeader_WatchRedirected(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	fz, urls := freezers(t, c)
	cl := newClient(t, urls, client.WithAttemptTimeout(300*time.Millisecond))
	ctx := ctxT(t)
	mustOK(t, "declare")(cl.Declare(ctx, specs("p", 1)))
	reg, err := cl.Register(ctx, api.RegisterRequest{Worker: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	_, idx, err := cl.Assignment(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}

	// A watch whose wait far outlasts the test: only a redirection can
	// bring its answer in time.
	got := watchInBackground(t, cl, idx)
	old := c.Leader(t)
	oi := indexOfNode(c, old)
	assignmentPath := "/v1/workers/w1/assignment"
	testcluster.Eventually(t, "the watch parked on the leader", func() error {
		if fz[oi].pending(assignmentPath) == 0 {
			return errors.New("not yet")
		}
		return nil
	})

	fz[oi].freeze()
	var ids []string
	for _, n := range c.Nodes {
		ids = append(ids, n.ID)
	}
	c.Net.Isolate(old.ID, ids...)
	testcluster.Eventually(t, "a new leader", func() error {
		if l := c.Leader(t); l == old {
			return fmt.Errorf("%s still leads", old.ID)
		}
		return nil
	})
	// The worker heartbeats as consumer does: short calls, one after the
	// other, until one is confirmed.
	testcluster.Eventually(t, "a heartbeat confirmed by the new leader", func() error {
		hctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := cl.Heartbeat(hctx, "w1", reg.Incarnation)
		return err
	})

	claim(t, c, fsm.ClaimItem{Partition: "p0", Worker: "w1"})
	wantP0Claimed(t, ctx, got, "the watch parked on the frozen leader was not moved to the new one")
	if fz[oi].pending(assignmentPath) != 0 {
		t.Fatal("the frozen proxy still holds the first watch")
	}
}

// TestFollowAudit_SilentNodeGivenUp: an audit follow leaves a node that does
// not answer within the attempt timeout, and one that answers and then goes
// silent (no event, no keep-alive), and resumes on the next address: every
// event is delivered, once.
func TestFollowAudit_SilentNodeGivenUp(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	writer := newClient(t, c.URLs())
	ctx := ctxT(t)
	mustOK(t, "declare")(writer.Declare(ctx, specs("p", 3)))
	if _, err := writer.Register(ctx, api.RegisterRequest{Worker: "w9"}); err != nil {
		t.Fatal(err)
	}
	want := allEvents(t, c)

	// silent answers like a node, then says nothing more.
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, ": following the audit log\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(silent.Close)
	for _, tc := range []struct {
		name  string
		first string
	}{
		{"a node that never answers", hangingNode(t)},
		{"a node that answers, then goes silent", silent.URL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(t)
			cl := newClient(t, append([]string{tc.first}, c.URLs()...), client.WithHTTPClient(rec.client()),
				client.WithAttemptTimeout(200*time.Millisecond), client.WithFollowKeepAlive(100*time.Millisecond))
			var got []fsm.Event
			for ev, err := range cl.FollowAudit(ctx, client.AuditQuery{}, "") {
				if err != nil {
					t.Fatalf("follow after %d events: %v", len(got), err)
				}
				got = append(got, ev.Event)
				if len(got) == len(want) {
					break
				}
			}
			for i := range want {
				if got[i].Index != want[i].Index || got[i].Seq != want[i].Seq || got[i].Type() != want[i].Type() {
					t.Fatalf("event %d: %d.%d %s, want %d.%d %s", i, got[i].Index, got[i].Seq, got[i].Type(),
						want[i].Index, want[i].Seq, want[i].Type())
				}
			}
			if s := rec.take(); len(s) < 2 || !strings.HasPrefix(s[0].url, tc.first) {
				t.Fatalf("connections %+v, want the first at %s", s, tc.first)
			}
		})
	}
}

// TestAttempt_SlowLiveNodeIsWaitedFor: a node that takes longer than the
// attempt timeout to answer a write (a large batch under fsync load) but
// answers its /healthz is waited for: the client neither gives the attempt up
// nor sends the write elsewhere, where it would be forwarded back and add
// work to the slow leader on every retry.
func TestAttempt_SlowLiveNodeIsWaitedFor(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	const attempt = 100 * time.Millisecond
	rec := newRecorder(t)
	var slowed atomic.Bool
	rec.before = func(r *http.Request) error {
		if strings.HasSuffix(r.URL.Path, api.PathRegister) && slowed.CompareAndSwap(false, true) {
			// The node takes five attempt timeouts to answer.
			select {
			case <-time.After(5 * attempt):
			case <-r.Context().Done():
				return r.Context().Err()
			}
		}
		return nil
	}
	cl := newClient(t, c.URLs(), client.WithHTTPClient(rec.client()), client.WithAttemptTimeout(attempt))
	if _, err := cl.Register(ctxT(t), api.RegisterRequest{Worker: "w1"}); err != nil {
		t.Fatal(err)
	}
	var regs, probes int
	for _, s := range rec.take() {
		switch {
		case strings.HasSuffix(s.url, api.PathRegister):
			regs++
		case strings.HasSuffix(s.url, api.PathHealth):
			probes++
		}
	}
	if regs != 1 || probes == 0 {
		t.Fatalf("%d register attempts and %d probes, want 1 attempt, kept after probing", regs, probes)
	}
}

// TestFrozenFollower_WatchMoved: a follower freezes (its API holds every
// request and answer) while a worker's blocking query is parked on it; the
// leader does not change, so nothing names a new leader to move the query
// to. The client checks the node every attempt timeout while the query
// waits, finds it frozen and moves the query, so the assignment change
// reaches the worker long before the query's own wait ends. (Parked on a
// frozen follower for its whole wait, a worker would miss the prepare of a
// handoff, and keep processing past the drain deadline after which the
// controller force-commits the partition elsewhere: the chaos suite saw it.)
func TestFrozenFollower_WatchMoved(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	fz, urls := freezers(t, c)
	leader := indexOfNode(c, c.Leader(t))
	fi := (leader + 1) % len(urls)
	admin := newClient(t, urls)
	ctx := ctxT(t)
	mustOK(t, "declare")(admin.Declare(ctx, specs("p", 1)))
	if _, err := admin.Register(ctx, api.RegisterRequest{Worker: "w1"}); err != nil {
		t.Fatal(err)
	}
	// The worker's client reads stale, from the first node that answers:
	// the follower. (A leader-bound read is held the same way by a frozen
	// follower it was sent to while the client knew no leader.)
	cl := newClient(t, append(urls[fi:], urls[:fi]...), client.WithAttemptTimeout(300*time.Millisecond),
		client.WithConsistency(client.ConsistencyStale))
	var idx fsm.RaftIndex
	testcluster.Eventually(t, "the follower knows w1", func() error {
		var err error
		_, idx, err = cl.Assignment(ctx, "w1")
		return err
	})
	got := watchInBackground(t, cl, idx)
	assignmentPath := "/v1/workers/w1/assignment"
	testcluster.Eventually(t, "the watch parked on the follower", func() error {
		if fz[fi].pending(assignmentPath) == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	fz[fi].freeze()
	claim(t, c, fsm.ClaimItem{Partition: "p0", Worker: "w1"})
	wantP0Claimed(t, ctx, got, "the watch parked on the frozen follower was not moved")
}

// watchOutcome is what a background WatchAssignment returned.
type watchOutcome struct {
	a   fsm.Assignment
	err error
}

// watchInBackground watches w1's assignment after idx with a wait that far
// outlasts the test: only a move to another node can bring its answer in
// time.
func watchInBackground(t *testing.T, cl *client.Client, idx fsm.RaftIndex) <-chan watchOutcome {
	t.Helper()
	got := make(chan watchOutcome, 1)
	wctx, stop := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(stop)
	go func() {
		a, _, err := cl.WatchAssignment(wctx, "w1", idx, 5*time.Minute)
		got <- watchOutcome{a, err}
	}()
	return got
}

// wantP0Claimed requires the watch to return w1's assignment with p0 before
// ctx ends, and fails with missed otherwise.
func wantP0Claimed(t *testing.T, ctx context.Context, got <-chan watchOutcome, missed string) {
	t.Helper()
	select {
	case w := <-got:
		if w.err != nil {
			t.Fatalf("watch: %v", w.err)
		}
		if len(w.a.Partitions) != 1 || w.a.Partitions[0].Partition != "p0" {
			t.Fatalf("watch returned %+v, want p0 claimed", w.a)
		}
	case <-ctx.Done():
		t.Fatal(missed)
	}
}
