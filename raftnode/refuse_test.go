package raftnode_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

// TestInvariant7_BadEntryIsRefusedOnEveryNode: an entry that reaches the log
// without the command check (here a registration with a 70,000-byte worker
// id, the entry that once made every node panic on apply and on every
// restart) is refused on every node the same way: one EntryRejected event in
// every audit log, identical states, the refusal counted, and the cluster
// goes on committing, also after a node restarts and replays it.
func TestInvariant7_BadEntryIsRefusedOnEveryNode(t *testing.T) {
	c := testcluster.New(t, 3)
	c.MustApply(t, join("w1"))
	bad, err := fsm.EncodeCommand(fsm.Command{Header: fsm.Header{Time: 1},
		Body: fsm.Join{Worker: fsm.WorkerID(strings.Repeat("w", 70_000))}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Leader(t).Raft().ApplyRaw(bad)
	if err != nil {
		t.Fatal(err)
	}
	res, ok := resp.(fsm.Result)
	if !ok || !errors.Is(res.Err, fsm.ErrInvalidArgument) {
		t.Fatalf("raw bad entry: %#v, want an invalid_argument rejection", resp)
	}
	after := c.MustApply(t, join("w2"))
	c.WaitApplied(t, after.Index)
	c.EnsureSame(t)
	for _, n := range c.Nodes {
		evs := mustEvents(t, n.Raft())
		var refused []fsm.Event
		for _, ev := range evs {
			if ev.Type() == fsm.EvEntryRejected {
				refused = append(refused, ev)
			}
		}
		if len(refused) != 1 || refused[0].Index != res.Index {
			t.Fatalf("%s: %d EntryRejected events, want 1 at %d", n.ID, len(refused), res.Index)
		}
		if got := testutil.ToFloat64(raftnode.RefusedCounter(n.Raft())); got != 1 {
			t.Fatalf("%s counted %v refused entries, want 1", n.ID, got)
		}
	}
	// Restart a follower: it replays the entry from its log and refuses it
	// again instead of stopping.
	i := indexOf(c, c.Followers(t)[0])
	c.Kill(t, i)
	c.Restart(t, i)
	again := c.MustApply(t, join("w3"))
	c.WaitApplied(t, again.Index)
	c.EnsureSame(t)
}

// TestApply_ChecksBeforeProposing: a command that fails the check is refused
// with the check's rejection and never reaches the log.
func TestApply_ChecksBeforeProposing(t *testing.T) {
	c := testcluster.New(t, 3)
	leader := c.Leader(t).Raft()
	first := c.MustApply(t, join("w1"))
	for _, body := range []fsm.Body{
		fsm.Join{Worker: fsm.WorkerID(strings.Repeat("w", 129))},
		fsm.Join{Worker: "w2", Labels: []fsm.Label{{Key: "zone", Value: "\x1b[2J"}}},
		fsm.Checkpoint{Worker: "w1", Incarnation: 1, Items: []fsm.CheckpointItem{{Partition: fsm.PartitionID(strings.Repeat("p", 70_000))}}},
		fsm.Prepare{Items: []fsm.PrepareItem{{Partition: "p1", Epoch: 1, From: "w1", To: "w2", DrainTimeout: -1}}},
	} {
		t.Run(fmt.Sprintf("%T", body), func(t *testing.T) {
			_, err := leader.Propose(context.Background(), fsm.Command{Header: fsm.Header{Actor: "test"}, Body: body})
			if !errors.Is(err, fsm.ErrInvalidArgument) {
				t.Fatalf("got %v, want invalid_argument", err)
			}
		})
	}
	next := c.MustApply(t, join("w2"))
	if next.Index != first.Index+1 {
		t.Fatalf("refused commands took log entries: %d after %d", next.Index, first.Index)
	}
	var refusedTotal float64
	for _, n := range c.Nodes {
		refusedTotal += testutil.ToFloat64(raftnode.RefusedCounter(n.Raft()))
	}
	if refusedTotal != 0 {
		t.Fatalf("%v entries refused on apply; the check should have kept them out", refusedTotal)
	}
}
