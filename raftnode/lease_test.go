package raftnode

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// clock is a test clock: the lease never reads time itself, so a test moves
// this one and passes its readings in.
type clock struct{ t time.Time }

func (c *clock) now() time.Time                { return c.t }
func (c *clock) advance(d time.Duration)       { c.t = c.t.Add(d) }
func (c *clock) ago(d time.Duration) time.Time { return c.t.Add(-d) }

func ids(s ...string) []raft.ServerID {
	out := make([]raft.ServerID, len(s))
	for i, v := range s {
		out[i] = raft.ServerID(v)
	}
	return out
}

// TestLease_Holds is the lease's rule as a table: a leader holds a lease at
// time now iff a quorum of voters (itself included) accepted AppendEntries of
// its term sent after now − d.
func TestLease_Holds(t *testing.T) {
	const d = 800 * time.Millisecond
	type acc struct {
		peer string
		term uint64
		ago  time.Duration // sent this long before now
	}
	tests := []struct {
		name    string
		voters  []raft.ServerID
		accepts []acc
		revoked uint64
		want    bool
	}{
		{name: "a lone voter always holds it", voters: ids("n1"), want: true},
		{name: "no acceptance, no lease", voters: ids("n1", "n2", "n3")},
		{name: "one fresh acceptance of three voters", voters: ids("n1", "n2", "n3"),
			accepts: []acc{{"n2", 5, 100 * time.Millisecond}}, want: true},
		{name: "an acceptance just inside d", voters: ids("n1", "n2", "n3"),
			accepts: []acc{{"n2", 5, d - time.Nanosecond}}, want: true},
		{name: "an acceptance exactly d old has expired", voters: ids("n1", "n2", "n3"),
			accepts: []acc{{"n2", 5, d}}},
		{name: "the freshest of two peers counts with three voters", voters: ids("n1", "n2", "n3"),
			accepts: []acc{{"n2", 5, 2 * d}, {"n3", 5, 100 * time.Millisecond}}, want: true},
		{name: "five voters need two peers: the second freshest has expired", voters: ids("n1", "n2", "n3", "n4", "n5"),
			accepts: []acc{{"n2", 5, 10 * time.Millisecond}, {"n3", 5, d + time.Millisecond}}},
		{name: "five voters need two peers: both fresh", voters: ids("n1", "n2", "n3", "n4", "n5"),
			accepts: []acc{{"n2", 5, 10 * time.Millisecond}, {"n3", 5, 20 * time.Millisecond}, {"n4", 5, 3 * d}}, want: true},
		{name: "acceptances of another term do not count", voters: ids("n1", "n2", "n3"),
			accepts: []acc{{"n2", 4, 10 * time.Millisecond}, {"n3", 6, 10 * time.Millisecond}}},
		{name: "a newer term forgets the older one's acceptances", voters: ids("n1", "n2", "n3"),
			accepts: []acc{{"n2", 5, 10 * time.Millisecond}, {"n3", 6, 10 * time.Millisecond}}},
		{name: "a peer that is not a voter does not count", voters: ids("n1", "n2", "n3"),
			accepts: []acc{{"n9", 5, 10 * time.Millisecond}}},
		{name: "a leader outside the configuration needs a quorum of others", voters: ids("n2", "n3", "n4"),
			accepts: []acc{{"n2", 5, 10 * time.Millisecond}}},
		{name: "revoked for the term", voters: ids("n1", "n2", "n3"), revoked: 5,
			accepts: []acc{{"n2", 5, 10 * time.Millisecond}}},
		{name: "revoked for an earlier term only", voters: ids("n1", "n2", "n3"), revoked: 4,
			accepts: []acc{{"n2", 5, 10 * time.Millisecond}}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1000, 0)}
			l := newLease(d)
			for _, a := range tt.accepts {
				l.accepted(raft.ServerID(a.peer), a.term, clk.ago(a.ago))
			}
			if tt.revoked > 0 {
				l.revoke(tt.revoked)
			}
			if got := l.holds(5, "n1", tt.voters, clk.now()); got != tt.want {
				t.Fatalf("holds = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLease_FrozenLeaderFindsItExpired plays a leader that freezes with a
// heartbeat in flight: the follower's answer arrives after the thaw, but the
// lease dates it by the send, so it cannot extend the lease past the freeze.
func TestLease_FrozenLeaderFindsItExpired(t *testing.T) {
	const d = 800 * time.Millisecond
	voters := ids("n1", "n2", "n3")
	clk := &clock{t: time.Unix(1000, 0)}
	l := newLease(d)

	l.accepted("n2", 7, clk.now())
	clk.advance(100 * time.Millisecond)
	inFlight := clk.now() // a heartbeat leaves; the process freezes
	if !l.holds(7, "n1", voters, clk.now()) {
		t.Fatal("lease must hold 100ms after an acceptance")
	}
	clk.advance(5 * time.Second) // frozen; the others elect a new leader
	l.accepted("n2", 7, inFlight)
	if l.holds(7, "n1", voters, clk.now()) {
		t.Fatal("a thawed leader holds a lease from before its freeze")
	}
	// Only an acceptance of a request sent after the thaw brings it back (in
	// real life the voter answers that one with its newer term instead).
	l.accepted("n2", 7, clk.now())
	if !l.holds(7, "n1", voters, clk.now()) {
		t.Fatal("a fresh acceptance must renew the lease")
	}
	// Acceptances arriving out of order never move it back.
	l.accepted("n2", 7, inFlight)
	if !l.holds(7, "n1", voters, clk.now()) {
		t.Fatal("a late answer to an old request shortened the lease")
	}
}

// TestLease_ConfirmedSince is what a linearizable read asks after raft's
// VerifyLeader: did a quorum accept messages sent since the read began?
func TestLease_ConfirmedSince(t *testing.T) {
	voters := ids("n1", "n2", "n3")
	clk := &clock{t: time.Unix(1000, 0)}
	l := newLease(time.Second)
	before := clk.now()
	clk.advance(time.Millisecond)
	start := clk.now()
	l.accepted("n2", 3, before) // the answer to a heartbeat sent before the read
	if l.confirmedSince(3, "n1", voters, start) {
		t.Fatal("an answer to a request sent before the read confirmed it")
	}
	l.accepted("n3", 3, start)
	if !l.confirmedSince(3, "n1", voters, start) {
		t.Fatal("an answer to a request sent at the read's start must confirm it")
	}
	if !l.confirmedSince(1, "n1", ids("n1"), start) {
		t.Fatal("a lone voter confirms itself")
	}
}

// TestLeaseDuration checks the bound of DESIGN.md: the lease, stretched by a
// slow leader clock, ends before a follower whose clock runs fast can have
// measured its heartbeat timeout.
func TestLeaseDuration(t *testing.T) {
	for _, hb := range []time.Duration{5 * time.Millisecond, 200 * time.Millisecond, time.Second, 10 * time.Second} {
		d := leaseDuration(hb)
		leaderReal := float64(d) / (1 - maxClockRate)
		followerReal := float64(hb) / (1 + maxClockRate)
		if d <= 0 || leaderReal > followerReal {
			t.Errorf("heartbeat timeout %s: lease %s lasts up to %.0fns of real time, a follower may vote after %.0fns",
				hb, d, leaderReal, followerReal)
		}
	}
}
