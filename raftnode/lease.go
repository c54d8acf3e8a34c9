package raftnode

import (
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// maxClockRate bounds how much faster or slower than real time any node's
// monotonic clock may run, as a fraction: the lease tolerates one node's
// clock running this much fast while another's runs this much slow. Real
// clocks are off by under 1e-4 and NTP slews a clock by at most 500 ppm; 10%
// leaves room for anything short of a broken clock. See DESIGN.md, "Leader
// lease".
const maxClockRate = 0.1

// leaseDuration is how long after sending an AppendEntries that a voter
// accepted the leader may count on that voter not to help elect another
// leader. The voter received the request after it was sent, and refuses its
// vote to any other candidate until its own clock has measured a full
// heartbeatTimeout since (hashicorp/raft's runFollower forgets the leader only
// then, and requestVote refuses every candidate while a leader is known). With
// every clock within maxClockRate (ρ) of real time, the leader's d lasts at
// most d/(1−ρ) of real time and the voter's heartbeatTimeout at least
// heartbeatTimeout/(1+ρ); d = heartbeatTimeout·(1−ρ)/(1+ρ), about 0.82 of it,
// keeps the first below the second.
func leaseDuration(heartbeatTimeout time.Duration) time.Duration {
	return time.Duration(float64(heartbeatTimeout) * (1 - maxClockRate) / (1 + maxClockRate))
}

// lease records, for the latest term this node has led, when each voter last
// accepted one of its AppendEntries, dated by when the request was sent, and
// answers whether a quorum's acceptances still rule out another leader. It
// keeps no clock: every time comes from the caller (the transport dates the
// requests, readers pass the moment they answer), so tests drive it with
// explicit times.
//
// A leaf type: mu guards every field. raft's replication goroutines record
// acceptances (through tap); readers ask.
type lease struct {
	d time.Duration

	mu   sync.Mutex
	term uint64
	sent map[raft.ServerID]time.Time
	// revoked: no lease in this term or any before (a leadership transfer
	// lets the target win an election at once, whatever the voters heard).
	revoked uint64
}

func newLease(d time.Duration) *lease {
	return &lease{d: d, sent: make(map[raft.ServerID]time.Time)}
}

// accepted records that peer accepted an AppendEntries of term sent at sent.
// Acceptances of an older term than the latest recorded are ignored; a newer
// term forgets the older one's.
func (l *lease) accepted(peer raft.ServerID, term uint64, sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case term < l.term:
		return
	case term > l.term:
		l.term = term
		clear(l.sent)
	}
	if prev, ok := l.sent[peer]; !ok || sent.After(prev) {
		l.sent[peer] = sent
	}
}

// revoke ends the lease of term and every term before it for good.
func (l *lease) revoke(term uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revoked = max(l.revoked, term)
}

// confirmedAt returns the time t such that a quorum of voters accepted, in
// term, an AppendEntries sent at or after t; self (the leader) counts as
// accepting at any time. always is true when self alone is a quorum; ok is
// false when no quorum has accepted anything of term (or term is revoked).
func (l *lease) confirmedAt(term uint64, self raft.ServerID, voters []raft.ServerID) (t time.Time, always, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if term <= l.revoked {
		return time.Time{}, false, false
	}
	need := len(voters)/2 + 1
	var times []time.Time
	for _, v := range voters {
		if v == self {
			need--
			continue
		}
		if s, ok := l.sent[v]; ok && l.term == term {
			times = append(times, s)
		}
	}
	if need <= 0 {
		return time.Time{}, true, true
	}
	if len(times) < need {
		return time.Time{}, false, false
	}
	// The need-th latest acceptance: need voters accepted at or after it.
	slices.SortFunc(times, func(a, b time.Time) int { return b.Compare(a) })
	return times[need-1], false, true
}

// holds reports whether the lease of term holds at now: no other leader can
// have been elected yet.
func (l *lease) holds(term uint64, self raft.ServerID, voters []raft.ServerID, now time.Time) bool {
	t, always, ok := l.confirmedAt(term, self, voters)
	return ok && (always || now.Before(t.Add(l.d)))
}

// confirmedSince reports whether a quorum accepted, in term, AppendEntries
// sent at or after since: leadership was confirmed by messages sent after
// that moment.
func (l *lease) confirmedSince(term uint64, self raft.ServerID, voters []raft.ServerID, since time.Time) bool {
	t, always, ok := l.confirmedAt(term, self, voters)
	return ok && (always || !t.Before(since))
}

// sitOutLease waits, on a node that starts with raft state, until
// heartbeatTimeout has passed since it started, before it runs raft. Its
// previous incarnation may have accepted an AppendEntries just before it
// stopped, and the leader counts on every voter that did to refuse other
// candidates for its lease; a restarted hashicorp/raft node knows no leader
// and would grant its vote at once. heartbeatTimeout by this node's clock
// outlasts the lease by the leader's, as it does for a follower that never
// stopped (see leaseDuration).
func sitOutLease(started time.Time, heartbeatTimeout time.Duration) {
	time.Sleep(time.Until(started.Add(heartbeatTimeout)))
}
