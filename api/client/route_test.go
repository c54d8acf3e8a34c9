package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
)

// The rules of where a call goes (route.go) and what an attempt's end means
// (classifyAttempt, blockingWait), as tables. In every table n = 3 and "now"
// is a fixed instant; skips and doubts last an hour.

var now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// rs builds a routeState of 3 addresses: cur, leader and forgot (noLeader
// for none), and the addresses skipped and doubted (both) for an hour.
func rs(cur, leader, forgot int, frozen ...int) routeState {
	s := newRouteState(3)
	s.cur, s.leader, s.forgot = cur, leader, forgot
	return s.skipping(frozen...).doubting(frozen...)
}

// skipping returns s with addresses skipped for an hour.
func (s routeState) skipping(is ...int) routeState {
	s = s.clone()
	for _, i := range is {
		s.skip[i] = now.Add(time.Hour)
	}
	return s
}

// doubting returns s with addresses doubted as leader for an hour.
func (s routeState) doubting(is ...int) routeState {
	s = s.clone()
	for _, i := range is {
		s.doubt[i] = now.Add(time.Hour)
	}
	return s
}

// at lists the addresses for which f holds at now.
func (s routeState) at(f func(int, time.Time) bool) []int {
	var out []int
	for i := range s.n {
		if f(i, now) {
			out = append(out, i)
		}
	}
	return out
}

func (s routeState) String() string {
	return fmt.Sprintf("cur=%d leader=%d forgot=%d skip=%v doubt=%v", s.cur, s.leader, s.forgot, s.at(s.skipped), s.at(s.doubted))
}

func same(a, b routeState) bool {
	return a.cur == b.cur && a.leader == b.leader && a.forgot == b.forgot &&
		slices.Equal(a.at(a.skipped), b.at(b.skipped)) && slices.Equal(a.at(a.doubted), b.at(b.doubted))
}

const none = noLeader

func TestRoute_Pick(t *testing.T) {
	expired := rs(1, none, none)
	expired.skip[1] = now.Add(-time.Second)
	for _, tc := range []struct {
		name     string
		st       routeState
		toLeader bool
		prev     int
		want     int
	}{
		{"a first attempt with no leader known starts at the node that last answered", rs(1, none, none), true, none, 1},
		{"a leader-bound attempt goes to the leader", rs(0, 2, none), true, none, 2},
		{"one that needs no leader goes to the node that last answered", rs(0, 2, none), false, none, 0},
		{"a leader-bound retry goes to the leader again (it answered 503 and still names itself)", rs(0, 2, none), true, 2, 2},
		{"a retry goes to the address after the previous one", rs(0, none, none), true, 1, 2},
		{"a retry wraps around", rs(0, none, none), false, 2, 0},
		{"a skipped address is passed over", rs(1, none, none).skipping(1), false, none, 2},
		{"a retry passes over skipped addresses", rs(0, none, none).skipping(1, 2), true, 0, 0},
		{"with every address skipped, the next one all the same", rs(0, none, none).skipping(0, 1, 2), false, 0, 1},
		{"a skip that has run out no longer counts", expired, false, none, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.st.pick(tc.toLeader, tc.prev, now); got != tc.want {
				t.Fatalf("pick(toLeader=%t, prev=%d) on %s = %d, want %d", tc.toLeader, tc.prev, tc.st, got, tc.want)
			}
		})
	}
}

func TestRoute_Answered(t *testing.T) {
	for _, tc := range []struct {
		name         string
		st           routeState
		from, hint   int
		ok           bool
		want         routeState
		wantRedirect bool
	}{
		{"the first leader named is learned, nothing to redirect",
			rs(0, none, none), 0, 2, true, rs(0, 2, none), false},
		{"another leader named: learned, and attempts sent to the old one are redirected",
			rs(0, 1, none), 0, 2, true, rs(0, 2, none), true},
		{"the same leader named again changes nothing",
			rs(0, 2, none), 1, 2, true, rs(1, 2, none), false},
		{"a leader named after the last one was forgotten: attempts still sent its way are redirected",
			rs(0, none, 1), 0, 2, true, rs(0, 2, none), true},
		{"the forgotten leader named again is learned back, and attempts sent elsewhere meanwhile go to it",
			rs(0, none, 1), 0, 1, true, rs(0, 1, none), true},
		{"a node that names no leader makes the client forget its leader",
			rs(0, 2, none), 0, none, false, rs(0, none, 2), false},
		{"a follower naming a leader that froze is not believed (it has not noticed yet)",
			rs(0, none, 1, 1), 0, 1, true, rs(0, none, 1, 1), false},
		{"a follower naming a node that was only skipped is believed (it may have been forwarding to the frozen leader, and be the next one)",
			rs(0, none, 1).skipping(2), 0, 2, true, rs(0, 2, none).skipping(2), true},
		{"a frozen leader that answers is no longer skipped or doubted, and may name itself again",
			rs(0, none, 1, 1), 1, 1, true, rs(1, 1, none), true},
		{"an answer that settles the call moves the start there",
			rs(0, 2, none), 1, 2, true, rs(1, 2, none), false},
		{"a 503 does not (the node is not ready, or knows no leader), but its hint counts",
			rs(0, none, none), 1, 2, false, rs(0, 2, none), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.st.clone()
			got, redirect := tc.st.answered(tc.from, tc.hint, tc.ok, now)
			if !same(got, tc.want) || redirect != tc.wantRedirect {
				t.Fatalf("answered(from=%d, hint=%d, ok=%t) on %s = %s, redirect %t; want %s, redirect %t",
					tc.from, tc.hint, tc.ok, tc.st, got, redirect, tc.want, tc.wantRedirect)
			}
			if !same(tc.st, before) {
				t.Fatalf("answered changed its receiver: %s, was %s", tc.st, before)
			}
		})
	}
}

func TestRoute_TimedOutAndUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name        string
		st          routeState
		i           int
		forwarded   bool // a leader-bound attempt to a node not known to lead
		unreachable bool // a transport failure rather than a time-out
		want        routeState
	}{
		{"the leader times out: forgotten, skipped, doubted, and calls start elsewhere",
			rs(1, 1, none), 1, false, false, rs(2, none, 1, 1)},
		{"a follower times out on a call it serves itself: skipped and doubted, the leader stays",
			rs(0, 1, none), 0, false, false, rs(1, 1, none, 0)},
		{"a follower times out on a call it forwards: skipped but not doubted (its leader may be the frozen one)",
			rs(0, none, 2), 0, true, false, rs(1, none, 2).skipping(0)},
		{"calls start at the next address that is not skipped",
			rs(0, none, none).skipping(1), 0, true, false, rs(2, none, none).skipping(0, 1)},
		{"a node other than the start times out: the start stays",
			rs(2, none, none), 0, false, false, rs(2, none, none, 0)},
		{"the leader refuses connections: forgotten, calls start at the next address, not skipped",
			rs(1, 1, none), 1, false, true, rs(2, none, 1)},
		{"a follower refuses connections: the leader stays",
			rs(0, 1, none), 2, false, true, rs(0, 1, none)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.st.clone()
			var got routeState
			if tc.unreachable {
				got = tc.st.unreachable(tc.i)
			} else {
				got = tc.st.timedOut(tc.i, tc.forwarded, now, time.Hour)
			}
			if !same(got, tc.want) {
				t.Fatalf("address %d failed on %s: %s, want %s", tc.i, tc.st, got, tc.want)
			}
			if !same(tc.st, before) {
				t.Fatalf("the receiver changed: %s, was %s", tc.st, before)
			}
		})
	}
}

func TestClassifyAttempt(t *testing.T) {
	transport := fmt.Errorf("%w: dial tcp: connection refused", ErrUnreachable)
	cut := fmt.Errorf("%w: %w", ErrUnreachable, context.Canceled)
	for _, tc := range []struct {
		name           string
		err            error
		cause, callErr error
		want           outcome
	}{
		{"a 2xx", nil, nil, nil, outDone},
		{"a 2xx just before a context ended", nil, errAttemptTimeout, nil, outDone},
		{"a 4xx is every node's answer", &api.Error{Code: api.CodeNotFound, Status: 404}, nil, nil, outFinal},
		{"a 503 may differ elsewhere", &api.Error{Code: api.CodeNoLeader, Status: 503}, nil, nil, outRetry},
		{"a 500 internal: the outcome is unknown, another node may answer", &api.Error{Code: api.CodeInternal, Status: 500}, nil, nil, outRetry},
		{"a proxy's 418 decodes as internal but is a 4xx", &api.Error{Code: api.CodeInternal, Status: 418}, nil, nil, outFinal},
		{"an answer counts even if the attempt's time ran out just after", &api.Error{Code: api.CodeNotReady, Status: 503}, errAttemptTimeout, nil, outRetry},
		{"a body that is not Baton's", fmt.Errorf("%w: not JSON", ErrBadResponse), nil, nil, outFinal},
		{"a refused connection", transport, nil, nil, outUnreachable},
		{"no answer within the attempt timeout", cut, errAttemptTimeout, nil, outTimedOut},
		{"no answer before the call's deadline: the node did not answer in the time it had", cut, context.DeadlineExceeded, context.DeadlineExceeded, outTimedOut},
		{"a new leader was named meanwhile", cut, errRedirected, nil, outRedirected},
		{"the caller cancelled", cut, context.Canceled, context.Canceled, outEnded},
		{"redirected, but the caller cancelled too", cut, errRedirected, context.Canceled, outEnded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := classifyAttempt(tc.err, tc.cause, tc.callErr); got != tc.want {
				t.Fatalf("classifyAttempt(%v, cause %v, call %v) = %s, want %s", tc.err, tc.cause, tc.callErr, got, tc.want)
			}
		})
	}
}

func TestBlockingWait(t *testing.T) {
	for _, tc := range []struct {
		name             string
		wait, left, want time.Duration
	}{
		{"a wait that ends well before the deadline is kept", 30 * time.Second, time.Minute, 30 * time.Second},
		{"a wait that would end too near the deadline is cut to 3/4 of what is left", 30 * time.Second, 20 * time.Second, 15 * time.Second},
		{"exactly 3/4 of what is left is kept", 30 * time.Second, 40 * time.Second, 30 * time.Second},
		{"nothing left: the shortest wait the server takes", 30 * time.Second, 0, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := blockingWait(tc.wait, tc.left); got != tc.want {
				t.Fatalf("blockingWait(%s, %s) = %s, want %s", tc.wait, tc.left, got, tc.want)
			}
		})
	}
}

// TestRouter_LeaderIn: a hint is used only when it is one of the client's own
// addresses (compared as New normalizes them); anything else is no leader.
func TestRouter_LeaderIn(t *testing.T) {
	r := newRouter([]string{"http://10.0.0.1:7070", "https://node-b.example:7443"}, time.Second)
	for _, tc := range []struct {
		hint string
		want int
	}{
		{"http://10.0.0.1:7070", 0},
		{"http://10.0.0.1:7070/", 0},
		{"HTTPS://Node-B.example:7443", 1},
		{"", none},
		{"http://10.0.0.9:7070", none},
		{"https://10.0.0.1:7070", none},
		{"not a url", none},
	} {
		t.Run(tc.hint, func(t *testing.T) {
			h := http.Header{}
			if tc.hint != "" {
				h.Set(api.HeaderLeader, tc.hint)
			}
			if got := r.leaderIn(h); got != tc.want {
				t.Fatalf("leaderIn(%q) = %d, want %d", tc.hint, got, tc.want)
			}
		})
	}
}

// TestRouter_RedirectCancelsOnlyMisdirectedLeaderAttempts: when a new leader
// is named, the leader-bound attempts in flight elsewhere are cancelled with
// errRedirected; attempts already at the new leader, and attempts that need
// no leader, carry on.
func TestRouter_RedirectCancelsOnlyMisdirectedLeaderAttempts(t *testing.T) {
	r := newRouter([]string{"http://a:1", "http://b:1", "http://c:1"}, time.Second)
	named := func(i int) http.Header {
		h := http.Header{}
		h.Set(api.HeaderLeader, r.addrs[i])
		return h
	}
	r.answered(0, named(0), true)
	type attempt struct {
		name     string
		addr     int
		toLeader bool
		redirect bool
	}
	attempts := []attempt{
		{"a watch parked on the old leader", 0, true, true},
		{"a write forwarded by a follower", 1, true, true},
		{"a write already at the new leader", 2, true, false},
		{"a stale read on the old leader", 0, false, false},
	}
	ctxs := make([]context.Context, len(attempts))
	for i, a := range attempts {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		ctxs[i] = ctx
		defer r.end(r.start(a.addr, a.toLeader, cancel))
	}
	r.answered(1, named(2), true)
	for i, a := range attempts {
		cancelled := errors.Is(context.Cause(ctxs[i]), errRedirected)
		if cancelled != a.redirect {
			t.Errorf("%s: redirected %t, want %t", a.name, cancelled, a.redirect)
		}
	}
}
