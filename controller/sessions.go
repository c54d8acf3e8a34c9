package controller

import (
	"slices"
	"sync"
	"time"

	"github.com/batonhq/baton/fsm"
)

// sessions is the leader's table of worker leases. Heartbeats are not raft
// writes: they renew a deadline here, in memory. Only an expiry is replicated
// (as fsm.Expire). A leaf type with its own mutex, so that heartbeats are
// answered at once even while the controller's loop waits on a proposal.
type sessions struct {
	ttl time.Duration
	// mu guards m; heartbeat handlers and the controller loop use it.
	mu sync.Mutex
	m  map[fsm.WorkerID]*session
}

type session struct {
	inc      fsm.Incarnation
	deadline time.Time
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, m: make(map[fsm.WorkerID]*session)}
}

// registered starts a full lease for a new incarnation.
func (s *sessions) registered(w fsm.WorkerID, inc fsm.Incarnation, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.m[w]; cur != nil && cur.inc > inc {
		return // a late registration reply for an older incarnation
	}
	s.m[w] = &session{inc: inc, deadline: now.Add(s.ttl)}
}

// heartbeat renews w's lease; ok is false if the table holds no lease for inc.
func (s *sessions) heartbeat(w fsm.WorkerID, inc fsm.Incarnation, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.m[w]
	if cur == nil || cur.inc != inc {
		return false
	}
	cur.deadline = now.Add(s.ttl)
	return true
}

// reset grants every lease a full TTL from now: a new leader cannot know when
// workers last heartbeated to the old one.
func (s *sessions) reset(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cur := range s.m {
		cur.deadline = now.Add(s.ttl)
	}
}

// sync makes the table match the state's live workers: a worker the table lacks
// (or holds under an older incarnation) gets a full lease; one that is gone or
// forgotten is dropped.
func (s *sessions) sync(workers []fsm.Worker, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := make(map[fsm.WorkerID]bool, len(workers))
	for _, w := range workers {
		if w.State == fsm.WorkerGone {
			continue
		}
		live[w.ID] = true
		if cur := s.m[w.ID]; cur == nil || cur.inc < w.Incarnation {
			s.m[w.ID] = &session{inc: w.Incarnation, deadline: now.Add(s.ttl)}
		}
	}
	for id := range s.m {
		if !live[id] {
			delete(s.m, id)
		}
	}
}

// expiredSession is a lease past its deadline.
type expiredSession struct {
	Worker      fsm.WorkerID
	Incarnation fsm.Incarnation
}

// expired lists leases past their deadline, sorted by worker.
func (s *sessions) expired(now time.Time) []expiredSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []expiredSession
	for id, cur := range s.m {
		if now.After(cur.deadline) {
			out = append(out, expiredSession{Worker: id, Incarnation: cur.inc})
		}
	}
	slices.SortFunc(out, func(a, b expiredSession) int {
		switch {
		case a.Worker < b.Worker:
			return -1
		case a.Worker > b.Worker:
			return 1
		}
		return 0
	})
	return out
}

// drop forgets a lease (after its expiry was proposed).
func (s *sessions) drop(w fsm.WorkerID, inc fsm.Incarnation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.m[w]; cur != nil && cur.inc == inc {
		delete(s.m, w)
	}
}
