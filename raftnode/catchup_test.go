package raftnode_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

// backlogEntries is the size of the log a restarted node replays: the
// issue's 6,000 entries.
const backlogEntries = 6000

// TestRestartedNode_NotReadyWhileApplyingItsBacklog is issue 9's restart: a
// follower restarted on a log of 2,000 entries (no snapshot) applies them
// only after it hears the leader's commit index. Until its state reflects
// that index it is not ready: Ready, /readyz and stale reads say so. Its
// state machine is held after the first batch, so the window is there to see
// whatever the machine's speed; once released, the node becomes ready with
// its state at the target.
func TestRestartedNode_NotReadyWhileApplyingItsBacklog(t *testing.T) {
	gs, opt := gates()
	c := testcluster.NewWithAPI(t, 3, server.Config{}, opt, noSnapshots, calmTimeouts)
	openAtCleanup(t, gs)
	last := writeBacklog(t, c, backlogEntries/3) // the held state machine makes the window, whatever the size
	c.WaitApplied(t, last)

	i := indexOf(c, c.Followers(t)[0])
	nd := c.Nodes[i]
	c.Kill(t, i)
	gs[nd.ID].Close()
	c.Restart(t, i)
	r := nd.Raft()

	select {
	case <-gs[nd.ID].entered:
	case <-contextDone(t):
		t.Fatal("the restarted node never applied its first batch")
	}
	var applied, target uint64
	testcluster.Eventually(t, "the restarted node knows its catch-up target", func() error {
		var known bool
		applied, target, known = raftnode.CatchUp(r)
		if !known {
			return errors.New("no target yet")
		}
		return nil
	})
	if applied >= target || target < uint64(last) {
		t.Fatalf("held after its first batch, the node applied %d with target %d (backlog ends at %d)", applied, target, last)
	}
	// The state machine is held: applied < target holds for as long as the
	// checks below run.
	if err := r.Ready(); !errors.Is(err, raftnode.ErrNotReady) {
		t.Fatalf("Ready at %d of %d: %v, want ErrNotReady", applied, target, err)
	}
	if err := r.Read(context.Background(), raftnode.Stale, func(*fsm.State) {}); !errors.Is(err, raftnode.ErrNotReady) {
		t.Fatalf("stale read at %d of %d: %v, want ErrNotReady", applied, target, err)
	}
	if code, status := readyz(t, nd.URL); status != http.StatusServiceUnavailable || code != api.CodeNotReady {
		t.Fatalf("/readyz at %d of %d: %d %s, want 503 %s", applied, target, status, code, api.CodeNotReady)
	}

	gs[nd.ID].Open()
	testcluster.Eventually(t, "the restarted node is ready", r.Ready)
	var seen fsm.RaftIndex
	if err := r.Read(context.Background(), raftnode.Stale, func(s *fsm.State) { seen = s.AppliedIndex() }); err != nil {
		t.Fatal(err)
	}
	if uint64(seen) < target {
		t.Fatalf("ready with its state at %d, below its target %d", seen, target)
	}
	if _, status := readyz(t, nd.URL); status != http.StatusOK {
		t.Fatalf("/readyz once caught up: %d", status)
	}
	c.EnsureSame(t)
}

// TestRestartedNode_ReadyImpliesCaughtUp watches a restarted follower replay
// its backlog at full speed, after every batch it applies: whenever Ready
// says nil, or a stale read is served, the state it answers from reflects
// the catch-up target. The number of not-ready observations is logged.
func TestRestartedNode_ReadyImpliesCaughtUp(t *testing.T) {
	c := testcluster.New(t, 3, noSnapshots, calmTimeouts)
	last := writeBacklog(t, c, backlogEntries)
	c.WaitApplied(t, last)
	i := indexOf(c, c.Followers(t)[0])
	c.Kill(t, i)
	c.Restart(t, i)
	r := c.Nodes[i].Raft()

	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	defer cancel()
	notReady := 0
	for after := fsm.RaftIndex(0); ; {
		readyErr := r.Ready()
		var seen fsm.RaftIndex
		readErr := r.Read(ctx, raftnode.Stale, func(s *fsm.State) { seen = s.AppliedIndex() })
		applied, target, known := raftnode.CatchUp(r)
		if readyErr == nil && (!known || applied < target) {
			// applied is read after Ready: it was no higher when Ready answered.
			t.Fatalf("Ready said nil with the state at %d of target %d (known %v)", applied, target, known)
		}
		if readErr == nil && (!known || uint64(seen) < target) {
			t.Fatalf("a stale read was served from index %d, below the target %d (known %v)", seen, target, known)
		}
		if readErr != nil && !errors.Is(readErr, raftnode.ErrNotReady) {
			t.Fatalf("stale read: %v", readErr)
		}
		if readyErr == nil {
			break
		}
		if known && errors.Is(readyErr, raftnode.ErrNotReady) {
			notReady++
		}
		var err error
		if after, err = r.WaitIndex(ctx, after); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		} else if err != nil {
			t.Fatalf("the restarted node never became ready: %v", readyErr)
		}
	}
	t.Logf("not ready, with a known target, at %d of the applies observed during the replay of %d entries", notReady, backlogEntries)
	c.EnsureSame(t)
}

// noSnapshots keeps the whole backlog in the raft log: a restarted node
// replays it rather than restoring a snapshot.
func noSnapshots(cfg *raftnode.Config) { cfg.SnapshotThreshold = 1 << 30 }

// writeBacklog commits n worker joins, 16 at a time, through whichever node
// leads (a request is retried with its id across leader changes), and returns
// the last index.
func writeBacklog(t *testing.T, c *testcluster.Cluster, n int) fsm.RaftIndex {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	defer cancel()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		last    fsm.RaftIndex
		firstEr error
	)
	const writers = 16
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += writers {
				res, err := proposeToLeader(ctx, c, join(fmt.Sprintf("b%d", i)))
				mu.Lock()
				if err != nil && firstEr == nil {
					firstEr = fmt.Errorf("backlog entry %d: %w", i, err)
				}
				last = max(last, res.Index)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstEr != nil {
		t.Fatal(firstEr)
	}
	return last
}

// proposeToLeader proposes cmd on whichever running node leads, retrying
// with the same request id until it commits or ctx ends. It may run on any
// goroutine.
func proposeToLeader(ctx context.Context, c *testcluster.Cluster, cmd fsm.Command) (fsm.Result, error) {
	cmd.RequestID = raftnode.NewRequestID()
	for {
		var err error
		for _, nd := range c.Nodes {
			r := nd.Raft()
			if r == nil || !r.IsLeader() {
				continue
			}
			var res fsm.Result
			if res, err = r.Propose(ctx, cmd); err == nil {
				return res, res.FirstError()
			}
		}
		select {
		case <-ctx.Done():
			return fsm.Result{}, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(10 * time.Millisecond): // a new leader takes an election to appear
		}
	}
}

// readyz returns the node's /readyz status and error code.
func readyz(t *testing.T, base string) (code string, status int) {
	t.Helper()
	resp, err := http.Get(base + api.PathReady)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body api.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&body) // a 200 has no error
	if body.Error == nil {
		return "", resp.StatusCode
	}
	return body.Error.Code, resp.StatusCode
}

// contextDone is a channel closed after testcluster.Timeout.
func contextDone(t *testing.T) <-chan struct{} {
	ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
	t.Cleanup(cancel)
	return ctx.Done()
}
