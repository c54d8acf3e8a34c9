package raftnode_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/faultnet"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

// divergenceRounds is how many rounds the production row of
// TestInvariant5_HeartbeatFromANewerLeaderCannotForkTheLog runs: every round
// plays the interleaving that forks the log with hashicorp's fast path (which
// the other row shows at its first round), so each one is a full try.
const divergenceRounds = 200

// TestInvariant5_HeartbeatFromANewerLeaderCannotForkTheLog replays, round
// after round, the interleaving of hashicorp/raft issue 695 that forked a
// replica's log after a leader froze (issue 9): the old leader L is cut off,
// another node N wins the next term, and N's heartbeat reaches L while L's
// leader loop sits idle in its select. Then a write reaches L's raft, and the
// network heals.
//
// With hashicorp's heartbeat fast path, the transport's goroutine handles
// the heartbeat: L's term becomes N's and its state Follower, but the leader
// loop does not notice, takes the write and appends it under N's term at
// the index of N's first entry (its no-op). Same index, same term: log
// matching never repairs it; L applies its write, the others N's no-op.
// With Baton's transport the heartbeat goes through L's main loop, which
// steps down first; the write is refused (raft.ErrNotLeader) and every log
// stays identical, entry by entry.
//
// Every node keeps raft's default timeouts (a 500 ms leader lease), so L
// never steps down on its own within a round; N is made to campaign at once
// by the TimeoutNow a leadership transfer sends, and N's heartbeat is the
// exact request N's raft sends, delivered past the fault rules that keep
// N's replication (which would go through L's main loop) away from L.
func TestInvariant5_HeartbeatFromANewerLeaderCannotForkTheLog(t *testing.T) {
	for _, tc := range []struct {
		name string
		// fastPath gives every node hashicorp's fast path back (the bug).
		fastPath bool
		rounds   int
	}{
		{name: "baton's transport: the old leader steps down first and every log stays identical", rounds: divergenceRounds},
		{name: "hashicorp's heartbeat fast path: the old leader writes under the new term and the logs fork", fastPath: true, rounds: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net := faultnet.New()
			wrap := func(id string, tr raft.Transport) raft.Transport {
				if tc.fastPath {
					tr = raftnode.HeartbeatFastPath(tr)
				}
				return net.Wrap(id, tr)
			}
			nodes := startNodes(t, 3, func(cfg *raftnode.Config) {
				cfg.NoSync = true
				cfg.CommitTimeout = 5 * time.Millisecond
			}, wrap)
			ids := make([]string, len(nodes))
			for i, n := range nodes {
				ids[i] = n.ID()
			}
			start := time.Now()
			var forks, tries int
			for round := 0; round < tc.rounds; round++ {
				r := forkRound(t, net, nodes, ids, round)
				tries++
				if tc.fastPath && r.refused {
					// L stepped down before the write (its lease ran out
					// on a stalled machine): the interleaving did not
					// happen; try again, a few times.
					if tries < 5 {
						round--
					}
					continue
				}
				if r.diff != "" {
					forks++
					if !tc.fastPath {
						t.Fatalf("round %d: the logs diverge: %s (write on the old leader: %v)", round, r.diff, r.applyErr)
					}
					t.Logf("round %d: the logs diverge as issue 695 says: %s", round, r.diff)
					continue
				}
				if tc.fastPath {
					t.Fatalf("round %d: the old leader wrote under the new term (%v) but the logs did not diverge", round, r.applyErr)
				}
				if !r.refused {
					t.Fatalf("round %d: the old leader's raft took a write after a newer term's heartbeat: %v, want %v", round, r.applyErr, raft.ErrNotLeader)
				}
			}
			if tc.fastPath {
				if forks == 0 {
					t.Fatalf("no fork in %d tries: the old leader always stepped down first", tries)
				}
				return
			}
			if diff := firstLogDifference(t, nodes, 0, waitConverged(t, nodes)); diff != "" {
				t.Fatalf("the logs diverge: %s", diff)
			}
			sameState(t, nodes)
			t.Logf("%d rounds in %s: every write on the old leader refused, %d log entries identical on %d nodes",
				tc.rounds, time.Since(start).Round(time.Millisecond), raftnode.LastIndex(nodes[0]), len(nodes))
		})
	}
}

// roundResult is what one forkRound saw.
type roundResult struct {
	// applyErr is what the old leader's raft answered the write.
	applyErr error
	// refused is true when that was raft.ErrNotLeader: nothing was written.
	refused bool
	// diff describes the first difference between the logs ("" if none).
	diff string
}

// forkRound plays the interleaving once. The current leader is L; the next
// node in order is N; the third, M, votes for N.
func forkRound(t *testing.T, net *faultnet.Network, nodes []*raftnode.Node, ids []string, round int) roundResult {
	t.Helper()
	from := waitConverged(t, nodes)
	var l *raftnode.Node
	testcluster.Eventually(t, "a leader", func() (err error) {
		l, err = leaderOf(nodes)
		return err
	})
	var n *raftnode.Node
	for i, x := range nodes {
		if x == l {
			n = nodes[(i+1)%len(nodes)]
		}
	}
	term := raftnode.CurrentTerm(l)

	net.Isolate(l.ID(), ids...)
	if err := raftnode.SendTimeoutNow(l, n); err != nil {
		t.Fatalf("round %d: TimeoutNow to %s: %v", round, n.ID(), err)
	}
	testcluster.Eventually(t, n.ID()+" leads", func() error {
		if !n.IsLeader() {
			return fmt.Errorf("%s is %s", n.ID(), stateOf(n))
		}
		return nil
	})
	newTerm := raftnode.CurrentTerm(n)
	if newTerm <= term {
		t.Fatalf("round %d: %s leads in term %d, %s led in %d", round, n.ID(), newTerm, l.ID(), term)
	}
	if _, err := raftnode.SendHeartbeat(n, l); err != nil {
		t.Fatalf("round %d: heartbeat %s → %s: %v", round, n.ID(), l.ID(), err)
	}
	testcluster.Eventually(t, l.ID()+" in the new term", func() error {
		if got := raftnode.CurrentTerm(l); got != newTerm {
			return fmt.Errorf("%s in term %d, want %d", l.ID(), got, newTerm)
		}
		return nil
	})
	data, err := fsm.EncodeCommand(fsm.Command{Header: fsm.Header{Time: 1, Actor: "test"},
		Body: fsm.Join{Worker: fsm.WorkerID(fmt.Sprintf("queued-on-%s-%d", l.ID(), round))}})
	if err != nil {
		t.Fatal(err)
	}
	_, applyErr := l.ApplyRaw(data)
	net.Heal()
	to := waitConverged(t, nodes)
	return roundResult{
		applyErr: applyErr,
		refused:  errors.Is(applyErr, raft.ErrNotLeader),
		diff:     firstLogDifference(t, nodes, from, to),
	}
}

func stateOf(n *raftnode.Node) string {
	if n.IsLeader() {
		return "leader"
	}
	id, _, _ := n.Leader()
	return "following " + id
}
