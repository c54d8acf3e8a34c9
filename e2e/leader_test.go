package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/fsm"
)

// TestE2E_ThreeServers_LeaderKilled: three `baton server` processes form a
// cluster (bootstrap + join); state is written through the CLI and the client;
// the leader is killed with SIGKILL; a new leader takes over and takes more
// writes; the killed node restarts on its data dir and catches up. Then every
// node holds the same audit log, and that log satisfies the history invariants
// (fsm.HistoryChecker). Finally every node stops cleanly on SIGTERM.
func TestE2E_ThreeServers_LeaderKilled(t *testing.T) {
	needBinary(t)
	servers := startServers(t, 3)
	addr := strings.Join(urls(servers), ",")
	c := newClient(t, urls(servers))
	ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
	defer cancel()

	// Writes before the kill: partitions through the CLI, a worker through
	// the client (it heartbeats throughout; the controller claims every
	// partition for it), operator verbs through the CLI.
	cli(t, "partitions", "declare", "--addr", addr, "--template", "orders.{{.Partition}}.>", "--prefix", "p-", "--count", "6")
	hb := heartbeat(t, c, "w1")
	eventually(t, "w1 owns every partition", func() error {
		owners, err := ownerCount(ctx, c)
		if err != nil {
			return err
		}
		if owners["w1"] != 6 {
			return fmt.Errorf("owners %v", owners)
		}
		return nil
	})
	hb.activateAll(t)
	cli(t, "pause", "--addr", addr)
	cli(t, "pin", "p-0", "w1", "--addr", addr)
	cli(t, "resume", "--addr", addr)

	leader := leaderOf(t, servers)
	t.Logf("killing leader %s", leader.id)
	leader.crash()
	var rest []*server
	for _, s := range servers {
		if s != leader {
			rest = append(rest, s)
		}
	}
	newLeader := leaderOf(t, rest)
	if newLeader == leader {
		t.Fatal("the killed node still leads")
	}
	t.Logf("new leader %s", newLeader.id)

	// Writes after the kill: more partitions; a second worker that registers
	// and never heartbeats, so it expires: handoffs to it abort, partitions
	// claimed for it are force-committed back; a cordon and a removal.
	cli(t, "partitions", "declare", "--addr", addr, "--template", "orders.{{.Partition}}.>", "--ids", "q-1,q-2")
	if _, err := c.Register(ctx, api.RegisterRequest{Worker: "w2"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a forced commit", func() error {
		for ev, err := range c.AuditAll(ctx, client.AuditQuery{Types: []fsm.EventType{fsm.EvCommitted}}) {
			if err != nil {
				return err
			}
			if cm := ev.Body.(fsm.Committed); cm.Forced {
				return nil
			}
		}
		return fmt.Errorf("no forced commit yet")
	})
	cli(t, "drain", "w1", "--addr", addr)
	cli(t, "drain", "w1", "--undo", "--addr", addr)
	hb.stop()
	cli(t, "remove-worker", "w1", "--addr", addr)

	leader.restart()
	leader.waitLog("listening")
	waitReady(t, servers, 3)
	evs := sameAudit(t, servers)
	if err := fsm.NewHistoryChecker(false).CheckAll(evs); err != nil {
		t.Fatalf("the audit log breaks an invariant: %v", err)
	}
	counts := map[fsm.EventType]int{}
	for _, ev := range evs {
		counts[ev.Type()]++
	}
	for _, typ := range []fsm.EventType{fsm.EvPartitionsDeclared, fsm.EvWorkerJoined, fsm.EvClaimed, fsm.EvActivated,
		fsm.EvPrepared, fsm.EvCommitted, fsm.EvWorkerLeft, fsm.EvPartitionPinned, fsm.EvRebalanceSet, fsm.EvWorkerCordoned} {
		if counts[typ] == 0 {
			t.Errorf("no %s event in the audit log", typ)
		}
	}
	t.Logf("%d identical audit events on 3 nodes: %v", len(evs), counts)

	// The read verbs work against the restarted node alone.
	out := cli(t, "status", "--addr", leader.url, "--consistency", "stale")
	if !strings.Contains(out, "ready") || !strings.Contains(out, newLeader.id) {
		t.Errorf("status on %s:\n%s", leader.id, out)
	}
	out = cli(t, "audit", "--timeline", "--addr", leader.url)
	if !strings.Contains(out, "FORCED (") {
		t.Errorf("timeline shows no forced handoff:\n%s", out)
	}

	for _, s := range servers {
		s.stop()
	}
}

// fakeWorker is a worker session kept alive by the test: it heartbeats, and
// reports activations when asked; it never drains.
type fakeWorker struct {
	c    *client.Client
	id   fsm.WorkerID
	inc  fsm.Incarnation
	done chan struct{}
	wg   sync.WaitGroup
}

func heartbeat(t *testing.T, c *client.Client, id fsm.WorkerID) *fakeWorker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	reg, err := c.Register(ctx, api.RegisterRequest{Worker: id})
	if err != nil {
		t.Fatal(err)
	}
	w := &fakeWorker{c: c, id: id, inc: reg.Incarnation, done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tk := time.NewTicker(time.Duration(reg.HeartbeatIntervalMS) * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-tk.C:
			}
			hctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, _ = c.Heartbeat(hctx, id, w.inc) // a miss during the election is fine: the TTL covers it
			cancel()
		}
	}()
	t.Cleanup(w.stop)
	return w
}

// activateAll reports every activating partition of the worker as activated.
func (w *fakeWorker) activateAll(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	a, _, err := w.c.Assignment(ctx, w.id)
	if err != nil {
		t.Fatal(err)
	}
	var items []fsm.ActivateItem
	for _, p := range a.Partitions {
		if p.Phase == fsm.PhaseActivating {
			items = append(items, fsm.ActivateItem{Partition: p.Partition, Epoch: p.Epoch})
		}
	}
	r, err := w.c.Activated(ctx, w.id, w.inc, items)
	if err == nil {
		err = client.ItemErrors(r)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func (w *fakeWorker) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
}
