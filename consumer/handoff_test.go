package consumer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

var retentions = []struct {
	name string
	r    jetstream.RetentionPolicy
}{
	{"Limits", jetstream.LimitsPolicy},
	{"Interest", jetstream.InterestPolicy},
	{"WorkQueue", jetstream.WorkQueuePolicy},
}

// TestGracefulHandoffs_ExactlyOnceInOrder: under continuous publishing,
// partitions move by scale-out, by a worker drained for maintenance, by an
// operator's move and by a graceful leave; per partition the handled sequences
// across all owners are exactly the published ones, in order.
func TestGracefulHandoffs_ExactlyOnceInOrder(t *testing.T) {
	for _, rt := range retentions {
		t.Run(rt.name, func(t *testing.T) {
			e := newEnv(t, rt.r, 8)
			e.startWorker("w1")
			e.startWorker("w2")
			e.waitSettled()
			stop := e.publisher(context.Background(), 2*time.Millisecond)
			defer stop()

			e.startWorker("w3") // scale out: rebalancing handoffs
			e.waitSettled()
			e.cordon("w1") // maintenance drain
			e.waitSettled()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			p, err := e.client.Partition(ctx, e.parts[0])
			if err != nil {
				t.Fatal(err)
			}
			to := fsm.WorkerID("w2")
			if p.Owner == to {
				to = "w3"
			}
			if _, err := e.client.Move(ctx, e.parts[0], api.MoveRequest{To: to}); err != nil { // operator move
				t.Fatal(err)
			}
			e.waitSettled()
			e.stopWorker("w2") // graceful leave
			e.waitSettled()
			stop()
			e.waitHandled()
			e.checkExactlyOnce()
			evs := e.checkAudit()
			commits := 0
			for _, ev := range evs {
				if c, ok := ev.Body.(fsm.Committed); ok {
					if c.Forced {
						for _, ev := range evs {
							t.Logf("%d %s %s %v", ev.Index, ev.Actor, ev.Cause, ev)
						}
						t.Fatalf("forced commit in a graceful run: %v", ev)
					}
					commits++
				}
			}
			if commits < 4 {
				t.Fatalf("only %d graceful handoffs happened", commits)
			}
			t.Logf("%d graceful handoffs, %d partitions exact", commits, len(e.parts))
		})
	}
}

// TestCrashFailover_NoLossDuplicatesOnlyAfterCheckpoint: a worker stops without
// draining; after its session expires its partitions are force-committed to
// others, resuming from the last checkpoint. Nothing is lost; a message is
// handled twice only if it lies after the resume point of the forced commit; and
// within one epoch messages are handled in order.
func TestCrashFailover_NoLossDuplicatesOnlyAfterCheckpoint(t *testing.T) {
	for _, rt := range retentions {
		t.Run(rt.name, func(t *testing.T) {
			e := newEnv(t, rt.r, 6)
			e.startWorker("w1")
			e.startWorker("w2")
			e.waitSettled()
			stop := e.publisher(context.Background(), 2*time.Millisecond)
			defer stop()
			time.Sleep(300 * time.Millisecond) // let traffic flow before the crash (not a synchronization)
			e.crash("w1")
			e.waitSettled()
			stop()
			e.waitHandled()
			evs := e.checkAudit()
			resume := map[fsm.PartitionID]fsm.StreamSeq{}
			forced := 0
			for _, ev := range evs {
				if c, ok := ev.Body.(fsm.Committed); ok && c.Forced {
					forced++
					resume[c.Partition] = c.ResumeAfter
				}
			}
			if forced == 0 {
				t.Fatal("no forced commit after the crash")
			}
			for p, want := range e.publishedCopy() {
				recs := e.rec.records(p)
				seen := map[fsm.StreamSeq]int{}
				last := map[fsm.Epoch]fsm.StreamSeq{}
				for _, r := range recs {
					seen[r.seq]++
					if r.seq <= last[r.epoch] {
						t.Fatalf("partition %s epoch %d: seq %d after %d", p, r.epoch, r.seq, last[r.epoch])
					}
					last[r.epoch] = r.seq
				}
				for _, s := range want {
					if seen[s] == 0 {
						t.Fatalf("partition %s: seq %d lost", p, s)
					}
				}
				for s, n := range seen {
					if n > 1 {
						r, ok := resume[p]
						if !ok || s <= r {
							t.Fatalf("partition %s: seq %d handled %d times, not after a forced resume point (%d, %v)", p, s, n, r, ok)
						}
					}
				}
			}
		})
	}
}

// TestConsumerDeleted_Recreated: deleting a running worker's consumer behind
// its back loses nothing: the worker recreates it and reads what it missed.
func TestConsumerDeleted_Recreated(t *testing.T) {
	e := newEnv(t, jetstream.LimitsPolicy, 4)
	a := e.startWorker("w1")
	e.waitSettled()
	stop := e.publisher(context.Background(), 2*time.Millisecond)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, e.stream)
	if err != nil {
		t.Fatal(err)
	}
	name := a.ConsumerName()
	if err := st.DeleteConsumer(ctx, name); err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, "consumer recreated", func() error {
		if _, err := st.Consumer(ctx, name); err != nil {
			return err
		}
		if a.Health() != nil {
			return a.Health()
		}
		return nil
	})
	stop()
	e.waitHandled()
	e.checkExactlyOnce()
}

// TestNATSRestart_WorkerRecovers: the NATS server restarts under a running
// worker; it reconnects and carries on with nothing lost.
func TestNATSRestart_WorkerRecovers(t *testing.T) {
	e := newEnv(t, jetstream.LimitsPolicy, 4)
	e.startWorker("w1")
	e.waitSettled()
	ctx := context.Background()
	for i := 0; i < 40; i++ {
		e.publishOne(ctx, e.parts[i%4], i)
	}
	e.nats.Restart(t)
	for i := 40; i < 80; i++ {
		e.publishOne(ctx, e.parts[i%4], i)
	}
	e.waitHandled()
	e.checkExactlyOnce()
}

func TestWorkerIDValidation(t *testing.T) {
	e := newEnv(t, jetstream.LimitsPolicy, 1)
	ctx := context.Background()
	h := func(context.Context, *Msg) error { return nil }
	for _, bad := range []fsm.WorkerID{"", "a b", "a*", ".x", fsm.WorkerID(fmt.Sprint(make([]byte, 200)))} {
		if _, err := New(ctx, bad, e.client, e.js, e.stream, h); err == nil {
			t.Errorf("worker id %q accepted", bad)
		}
	}
}
