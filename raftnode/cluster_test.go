package raftnode_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

func join(w string) fsm.Command {
	return fsm.Command{Header: fsm.Header{Actor: "test"}, Body: fsm.Join{Worker: fsm.WorkerID(w)}}
}

func declare(n int, prefix string) fsm.Command {
	var specs []fsm.PartitionSpec
	for i := 0; i < n; i++ {
		specs = append(specs, fsm.PartitionSpec{
			ID: fsm.PartitionID(fmt.Sprintf("%s%d", prefix, i)), Subjects: []string{fmt.Sprintf("%s.%d.>", prefix, i)},
		})
	}
	return fsm.Command{Header: fsm.Header{Actor: "test"}, Body: fsm.Declare{Partitions: specs}}
}

func TestCluster_ReplicatesToEveryNode(t *testing.T) {
	c := testcluster.New(t, 3)
	c.MustApply(t, join("w1"))
	res := c.MustApply(t, declare(10, "p"))
	c.WaitApplied(t, res.Index)
	c.EnsureSame(t)
	for _, n := range c.Nodes {
		var parts int
		if err := n.Raft().Read(context.Background(), raftnode.Stale, func(s *fsm.State) { parts = s.Summary().Partitions }); err != nil {
			t.Fatal(err)
		}
		if parts != 10 {
			t.Fatalf("%s has %d partitions", n.ID, parts)
		}
	}
}

func TestApply_OnFollowerNamesTheLeader(t *testing.T) {
	c := testcluster.New(t, 3)
	leader := c.Leader(t)
	f := c.Followers(t)[0].Raft()
	testcluster.Eventually(t, "follower knows the leader's API address", func() error {
		_, err := f.Apply(context.Background(), join("w1"))
		var nl *raftnode.NotLeaderError
		if !errors.As(err, &nl) {
			return fmt.Errorf("got %v, want NotLeaderError", err)
		}
		if nl.LeaderID != leader.ID || nl.LeaderAPI != leader.Cfg.APIAddr {
			return fmt.Errorf("leader %q at %q, want %s at %s", nl.LeaderID, nl.LeaderAPI, leader.ID, leader.Cfg.APIAddr)
		}
		return nil
	})
	if err := f.Read(context.Background(), raftnode.Default, func(*fsm.State) {}); !errors.Is(err, raftnode.ErrNotLeader) {
		t.Fatalf("default read on follower: %v", err)
	}
	if err := f.Read(context.Background(), raftnode.Linearizable, func(*fsm.State) {}); !errors.Is(err, raftnode.ErrNotLeader) {
		t.Fatalf("linearizable read on follower: %v", err)
	}
	if err := f.Read(context.Background(), raftnode.Stale, func(*fsm.State) {}); err != nil {
		t.Fatalf("stale read on follower: %v", err)
	}
}

// TestLeaderKilled: the leader dies abruptly; a new one serves writes; the old
// one restarts on its data dir and catches up to identical state and audit log.
func TestLeaderKilled_NewLeaderServesAndOldCatchesUp(t *testing.T) {
	c := testcluster.New(t, 3)
	c.MustApply(t, join("w1"))
	c.MustApply(t, declare(5, "a"))
	old := c.Leader(t)
	oldIdx := indexOf(c, old)
	c.Kill(t, oldIdx)
	next := c.Leader(t)
	if next == old {
		t.Fatal("killed node still leader")
	}
	// Every survivor counts the change (baton_raftnode_leader_changes_total).
	for _, n := range c.Followers(t) {
		testcluster.Eventually(t, n.ID+" counts the leader change", func() error {
			if got := testutil.ToFloat64(raftnode.LeaderChanges(n.Raft())); got < 1 {
				return fmt.Errorf("%v leader changes", got)
			}
			return nil
		})
	}
	testcluster.Eventually(t, "the new leader counts the change", func() error {
		if got := testutil.ToFloat64(raftnode.LeaderChanges(next.Raft())); got < 1 {
			return fmt.Errorf("%v leader changes", got)
		}
		return nil
	})
	c.MustApply(t, join("w2"))
	res := c.MustApply(t, declare(5, "b"))
	c.Restart(t, oldIdx)
	c.WaitApplied(t, res.Index)
	c.EnsureSame(t)
	var workers int
	if err := old.Raft().Read(context.Background(), raftnode.Stale, func(s *fsm.State) { workers = len(s.Workers()) }); err != nil {
		t.Fatal(err)
	}
	if workers != 2 {
		t.Fatalf("restarted node sees %d workers, want 2", workers)
	}
}

// TestLaggingNode_CatchesUpThroughSnapshot: a follower cut off while the leader
// writes past its snapshot threshold and trims its log must catch up by
// installing the snapshot, which carries the state and the audit log.
func TestLaggingNode_CatchesUpThroughSnapshot(t *testing.T) {
	c := testcluster.New(t, 3, func(cfg *raftnode.Config) {
		cfg.SnapshotThreshold = 20
		cfg.TrailingLogs = 5
		cfg.SnapshotInterval = 50 * time.Millisecond
	})
	c.MustApply(t, join("w1"))
	lag := c.Followers(t)[0]
	ids := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		ids[i] = n.ID
	}
	c.Net.Isolate(lag.ID, ids...)
	var last fsm.Result
	for i := 0; i < 60; i++ {
		last = c.MustApply(t, declare(2, fmt.Sprintf("s%d-", i)))
	}
	// Wait until the leader has snapshotted and trimmed the entries the lagging
	// node would need.
	lagStatus, err := lag.Raft().Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	leader := c.Leader(t).Raft()
	testcluster.Eventually(t, "leader log compaction past the lagging node", func() error {
		st, err := leader.Status(context.Background())
		if err != nil {
			return err
		}
		if st.SnapshotIndex < lagStatus.LastIndex+20 {
			return fmt.Errorf("leader snapshot at %d, lagging node at %d", st.SnapshotIndex, lagStatus.LastIndex)
		}
		return nil
	})
	c.Net.Heal()
	c.WaitApplied(t, last.Index)
	c.EnsureSame(t)
}

// TestRestart_KeepsStateAndAudit: a single node restarted on the same data dir
// has the same state and audit log as before.
func TestRestart_KeepsStateAndAudit(t *testing.T) {
	c := testcluster.New(t, 1, func(cfg *raftnode.Config) { cfg.SnapshotThreshold = 10; cfg.TrailingLogs = 2 })
	for i := 0; i < 30; i++ {
		c.MustApply(t, join(fmt.Sprintf("w%d", i)))
	}
	before, err := testcluster.AllEvents(c.Nodes[0].Raft().Audit())
	if err != nil {
		t.Fatal(err)
	}
	idx := c.Nodes[0].Raft().AppliedIndex()
	c.Kill(t, 0)
	c.Restart(t, 0)
	c.Leader(t)
	c.WaitApplied(t, idx)
	after, err := testcluster.AllEvents(c.Nodes[0].Raft().Audit())
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || len(after) < 30 {
		t.Fatalf("audit had %d events, has %d after restart", len(before), len(after))
	}
	for i := range after {
		if after[i].Index != before[i].Index || after[i].String() != before[i].String() {
			t.Fatalf("event %d differs: %v vs %v", i, after[i], before[i])
		}
	}
}

func TestJoinRemoveAndRejoin(t *testing.T) {
	c := testcluster.New(t, 3)
	c.MustApply(t, join("w1"))
	n4 := c.AddNode(t, false)
	c.WaitMembers(t, 4)
	leader := c.Leader(t)
	ctx := context.Background()
	if err := leader.Raft().Remove(ctx, n4.ID); err != nil {
		t.Fatal(err)
	}
	c.WaitMembers(t, 3)
	c.Kill(t, 3)
	// The removed node comes back on its old data dir and joins again.
	c.Restart(t, 3)
	testcluster.Eventually(t, "rejoin", func() error {
		return c.Leader(t).Raft().Join(ctx, n4.ID, n4.Raft().RaftAddr(), n4.Cfg.APIAddr)
	})
	c.WaitMembers(t, 4)
	res := c.MustApply(t, join("w2"))
	c.WaitApplied(t, res.Index)
	c.EnsureSame(t)
}

// TestApply_UnknownOutcomeRetriedWithSameRequestID: a leader cut off from its
// followers cannot commit; the proposal ends with an unknown outcome. Retrying
// the same request id on the new leader applies it exactly once.
func TestApply_UnknownOutcomeRetriedWithSameRequestID(t *testing.T) {
	c := testcluster.New(t, 3)
	c.MustApply(t, join("w1"))
	old := c.Leader(t)
	var others []string
	for _, n := range c.Nodes {
		if n != old {
			others = append(others, n.ID)
		}
	}
	c.Net.Partition([]string{old.ID}, others)
	cmd := fsm.Command{Header: fsm.Header{RequestID: "join-w2", Actor: "test"}, Body: fsm.Join{Worker: "w2"}}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := old.Raft().Apply(ctx, cmd)
	cancel()
	if !errors.Is(err, raftnode.ErrUnknownOutcome) && !errors.Is(err, raftnode.ErrNotLeader) {
		t.Fatalf("isolated leader apply: %v, want unknown outcome", err)
	}
	c.Net.Heal()
	first := c.MustApply(t, cmd)
	again := c.MustApply(t, cmd)
	if first.Duplicate && again.Duplicate && first.Index != again.Index {
		t.Fatal("duplicates disagree on the first index")
	}
	if !again.Duplicate {
		t.Fatal("second apply of the same request id was not deduplicated")
	}
	c.EnsureSame(t)
	var joined int
	for _, ev := range mustEvents(t, c.Leader(t).Raft()) {
		if j, ok := ev.Body.(fsm.WorkerJoined); ok && j.Worker == "w2" {
			joined++
		}
	}
	if joined != 1 {
		t.Fatalf("w2 joined %d times", joined)
	}
}

func TestReady_RestartedNodeWaitsForLeader(t *testing.T) {
	c := testcluster.New(t, 3)
	c.MustApply(t, join("w1"))
	f := c.Followers(t)[0]
	i := indexOf(c, f)
	ids := []string{}
	for _, n := range c.Nodes {
		ids = append(ids, n.ID)
	}
	c.Kill(t, i)
	res := c.MustApply(t, join("w2"))
	c.Net.Isolate(f.ID, ids...)
	c.Restart(t, i)
	if err := f.Raft().Ready(); err == nil {
		t.Fatal("isolated restarted node reports ready")
	}
	c.Net.Heal()
	c.WaitApplied(t, res.Index)
	testcluster.Eventually(t, "ready after catch-up", f.Raft().Ready)
}

func TestLinearizableRead_SeesCommittedWrite(t *testing.T) {
	c := testcluster.New(t, 3)
	res := c.MustApply(t, join("w1"))
	var idx fsm.RaftIndex
	if err := c.Leader(t).Raft().Read(context.Background(), raftnode.Linearizable, func(s *fsm.State) { idx = s.AppliedIndex() }); err != nil {
		t.Fatal(err)
	}
	if idx < res.Index {
		t.Fatalf("linearizable read at %d, write was at %d", idx, res.Index)
	}
}

func TestWaitWorker_WakesOnlyForThatWorker(t *testing.T) {
	c := testcluster.New(t, 1)
	n := c.Nodes[0].Raft()
	c.MustApply(t, join("w1"))
	c.MustApply(t, join("w2"))
	base := n.WorkerIndex("w1")
	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	defer cancel()
	woke := make(chan fsm.RaftIndex, 1)
	go func() {
		idx, _ := n.WaitWorker(ctx, "w1", base)
		woke <- idx
	}()
	c.MustApply(t, fsm.Command{Body: fsm.Cordon{Worker: "w2", On: true}})
	select {
	case idx := <-woke:
		t.Fatalf("woke at %d for another worker's change", idx)
	default:
	}
	res := c.MustApply(t, fsm.Command{Body: fsm.Cordon{Worker: "w1", On: true}})
	if idx := <-woke; idx != res.Index {
		t.Fatalf("woke at %d, want %d", idx, res.Index)
	}
}

func indexOf(c *testcluster.Cluster, n *testcluster.Node) int {
	for i, m := range c.Nodes {
		if m == n {
			return i
		}
	}
	return -1
}

func mustEvents(t *testing.T, n *raftnode.Node) []fsm.Event {
	t.Helper()
	evs, err := testcluster.AllEvents(n.Audit())
	if err != nil {
		t.Fatal(err)
	}
	return evs
}
