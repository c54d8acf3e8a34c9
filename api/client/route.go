package client

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton/api"
)

// Where a call goes. Every response names the leader the answering node knows
// (api.HeaderLeader); the client sends writes and leader reads straight to it,
// so a follower does not have to forward them, and sends everything else to
// the node that last answered. An attempt that times out says that its node
// may be frozen (a SIGSTOP, a VM pause, a long GC): calls stop starting there
// for a while, it is forgotten as leader, and the call goes on at the next
// address. When a new leader is learned, the leader-bound attempts in flight
// elsewhere (a blocking query parked on a frozen ex-leader, a write stuck in a
// follower's forward to it) are cancelled and sent to it.

// noLeader marks an unknown leader (and "no address" in general).
const noLeader = -1

// routeState is what the client knows about its addresses. It is a value: the
// methods that change it return a new one, so that the rules can be tested as
// tables; router holds the live one.
type routeState struct {
	n int // len(addrs)
	// cur is the address that last answered: calls that need no leader start
	// there, so a client sticks to a node that works.
	cur int
	// leader is the address of the leader learned from the last answer that
	// named one, noLeader when unknown.
	leader int
	// forgot is a leader forgotten (it timed out, or a node said it knows no
	// leader) since a leader was last learned, noLeader if none: learning one
	// then means that the attempts sent meanwhile may be misdirected.
	forgot int
	// skip holds, per address, until when calls do not start there: it
	// timed out.
	skip []time.Time
	// doubt holds, per address, until when other nodes naming it as leader
	// are not believed: it timed out where no forward can explain it (asked
	// as the leader, or for something it serves itself), so it is frozen,
	// and followers keep naming a frozen leader until they elect another.
	// A follower that timed out on a leader-bound call may only have been
	// forwarding to a frozen leader; it may well be the next leader.
	doubt []time.Time
}

func newRouteState(n int) routeState {
	return routeState{n: n, leader: noLeader, forgot: noLeader, skip: make([]time.Time, n), doubt: make([]time.Time, n)}
}

// clone copies s so that changing the copy's slices leaves s alone.
func (s routeState) clone() routeState {
	s.skip = append([]time.Time(nil), s.skip...)
	s.doubt = append([]time.Time(nil), s.doubt...)
	return s
}

func (s routeState) skipped(i int, now time.Time) bool { return now.Before(s.skip[i]) }
func (s routeState) doubted(i int, now time.Time) bool { return now.Before(s.doubt[i]) }

// pick returns the address of an attempt. prev is the previous attempt's
// address (noLeader for a call's first attempt). A leader-bound attempt goes
// to the known leader; any other, or one with no leader known, to cur on a
// first attempt and to the address after prev on a retry, passing over
// skipped addresses unless every one is.
func (s routeState) pick(toLeader bool, prev int, now time.Time) int {
	if toLeader && s.leader != noLeader {
		return s.leader
	}
	start := s.cur
	if prev != noLeader {
		start = prev + 1
	}
	for k := 0; k < s.n; k++ {
		if i := (start + k) % s.n; !s.skipped(i, now) {
			return i
		}
	}
	return start % s.n
}

// answered records an answer from address i that named hint as the leader
// (noLeader: the node knows none, or names one the client has no address
// for). ok says whether the answer settles the call (a 2xx or a 4xx): only
// then does i become the place calls start, a node answering 503 (not ready,
// no leader) is not one to stick to. It returns the new state and whether
// leader-bound attempts in flight elsewhere than the new leader should be
// cancelled and sent to it.
func (s routeState) answered(i, hint int, ok bool, now time.Time) (routeState, bool) {
	s = s.clone()
	s.skip[i], s.doubt[i] = time.Time{}, time.Time{} // it answers: it is not frozen
	if ok {
		s.cur = i
	}
	switch {
	case hint == noLeader:
		if s.leader != noLeader {
			s.forgot, s.leader = s.leader, noLeader
		}
		return s, false
	case hint != i && s.doubted(hint, now):
		// A follower that has not noticed yet that the leader stopped.
		return s, false
	case hint == s.leader:
		return s, false
	}
	// Attempts sent while another leader was believed, or while the leader
	// was forgotten (to whatever node was next: perhaps a frozen one), may
	// be misdirected; a client that never knew a leader sent its first ones
	// to a node that forwards them, and leaves them be.
	redirect := s.leader != noLeader || s.forgot != noLeader
	s.leader, s.forgot = hint, noLeader
	return s, redirect
}

// timedOut records an attempt to address i that got no answer in time. Calls
// stop starting at i for d from now, and it is forgotten if it was the
// leader. forwarded says that the attempt needed the leader and went to i
// without knowing i to be it, so that i may have been forwarding to a frozen
// leader rather than frozen itself: only otherwise is i doubted as a leader
// for d.
func (s routeState) timedOut(i int, forwarded bool, now time.Time, d time.Duration) routeState {
	s = s.clone()
	s.skip[i] = now.Add(d)
	if !forwarded || s.leader == i {
		s.doubt[i] = now.Add(d)
	}
	if s.leader == i {
		s.forgot, s.leader = i, noLeader
	}
	if s.cur == i {
		s.cur = s.pick(false, i, now)
	}
	return s
}

// unreachable records a transport failure on address i (connection refused
// or reset): it is not the leader to go to, and not the place to start.
func (s routeState) unreachable(i int) routeState {
	if s.leader == i {
		s.forgot, s.leader = i, noLeader
	}
	if s.cur == i {
		s.cur = (i + 1) % s.n
	}
	return s
}

// router is the live routeState of a client and its views, and the attempts
// in flight. A leaf type: mu guards st and flights, and is held briefly by
// every call's goroutine (to pick an address, to record an outcome, to add
// and remove its attempt).
type router struct {
	addrs []string // base URLs, without a trailing slash
	// suspectFor is how long an address that timed out is skipped (and, if
	// it was frozen, doubted as leader).
	suspectFor time.Duration

	mu      sync.Mutex
	st      routeState
	flights map[*flight]struct{}
}

// flight is one attempt in progress: what redirect needs to cancel it.
type flight struct {
	addr     int
	toLeader bool
	cancel   context.CancelCauseFunc
}

func newRouter(addrs []string, suspectFor time.Duration) *router {
	return &router{addrs: addrs, suspectFor: suspectFor, st: newRouteState(len(addrs)), flights: map[*flight]struct{}{}}
}

func (r *router) pick(toLeader bool, prev int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.pick(toLeader, prev, time.Now())
}

// start registers an attempt to address i; cancel ends it with a cause.
func (r *router) start(i int, toLeader bool, cancel context.CancelCauseFunc) *flight {
	f := &flight{addr: i, toLeader: toLeader, cancel: cancel}
	r.mu.Lock()
	r.flights[f] = struct{}{}
	r.mu.Unlock()
	return f
}

func (r *router) end(f *flight) {
	r.mu.Lock()
	delete(r.flights, f)
	r.mu.Unlock()
}

// answered records an answer from address i carrying header h; when it
// names a new leader, leader-bound attempts in flight to other addresses are
// cancelled with errRedirected.
func (r *router) answered(i int, h http.Header, ok bool) {
	hint := r.leaderIn(h)
	r.mu.Lock()
	defer r.mu.Unlock()
	var redirect bool
	r.st, redirect = r.st.answered(i, hint, ok, time.Now())
	if !redirect {
		return
	}
	for f := range r.flights {
		if f.toLeader && f.addr != r.st.leader {
			f.cancel(errRedirected)
		}
	}
}

// leaderNow returns the address of the leader the client believes in, or
// noLeader.
func (r *router) leaderNow() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.leader
}

// timedOut records an attempt to address i that got no answer in time;
// toLeader says whether it was a leader-bound attempt.
func (r *router) timedOut(i int, toLeader bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st = r.st.timedOut(i, toLeader && r.st.leader != i, time.Now(), r.suspectFor)
}

func (r *router) unreachable(i int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st = r.st.unreachable(i)
}

// leaderIn returns the address named by h's api.HeaderLeader, or noLeader if
// there is none or the client does not have it. Only the client's own
// addresses are used: a node may advertise a URL the client cannot reach
// (another network, another name), and the client's token is sent only to
// the addresses it was given.
func (r *router) leaderIn(h http.Header) int {
	v := h.Get(api.HeaderLeader)
	if v == "" {
		return noLeader
	}
	base, err := parseAddr(v)
	if err != nil {
		return noLeader
	}
	for i, a := range r.addrs {
		if strings.EqualFold(a, base) {
			return i
		}
	}
	return noLeader
}

// Why an attempt's context ended, as context.Cause reports it.
var (
	// errAttemptTimeout: the node did not answer within the attempt's bound.
	errAttemptTimeout = errors.New("client: attempt timed out")
	// errRedirected: a new leader was learned while a leader-bound attempt
	// was in flight elsewhere.
	errRedirected = errors.New("client: leader changed during the attempt")
)
