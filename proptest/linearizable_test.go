package proptest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

var chaosDuration = flag.Duration("chaos.duration", 3*time.Second, "how long the linearizability test runs its clients and faults")

// cpInput is one operation on a partition's checkpoint: a write of seq, or a
// linearizable read.
type cpInput struct {
	part  fsm.PartitionID
	write bool
	seq   fsm.StreamSeq
}

// cpOutput is what the operation returned.
type cpOutput struct {
	unknown  bool // the write's fate is unknown (error or time-out)
	rejected bool // the write was refused (seq_regressed)
	seq      fsm.StreamSeq
}

// checkpointModel is the sequential specification: a checkpoint that only moves
// forward. A write at or above it is accepted and sets it; below it is refused;
// a read returns it. A write whose fate is unknown may or may not have happened.
var checkpointModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[fsm.PartitionID][]porcupine.Operation{}
		for _, op := range h {
			p := op.Input.(cpInput).part
			by[p] = append(by[p], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() []any { return []any{fsm.StreamSeq(0)} },
	Step: func(state, input, output any) []any {
		cp, in, out := state.(fsm.StreamSeq), input.(cpInput), output.(cpOutput)
		switch {
		case !in.write:
			if out.seq == cp {
				return []any{cp}
			}
			return nil
		case out.unknown:
			return []any{cp, max(cp, in.seq)}
		case out.rejected:
			if in.seq < cp {
				return []any{cp}
			}
			return nil
		default:
			if in.seq >= cp {
				return []any{in.seq}
			}
			return nil
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(cpInput), output.(cpOutput)
		if !in.write {
			return fmt.Sprintf("read(%s) -> %d", in.part, out.seq)
		}
		return fmt.Sprintf("write(%s, %d) -> unknown=%v rejected=%v", in.part, in.seq, out.unknown, out.rejected)
	},
}

// TestLinearizable_CheckpointsUnderFaults: clients write checkpoints and read
// them back with linearizable reads through every node while the leader is
// partitioned away, healed, killed and restarted. The history, checked by
// porcupine against a forward-only checkpoint, must be linearizable: no read
// sees a value older than an acknowledged write, and no refused write changed
// anything. `make chaos` runs it for minutes (-chaos.duration).
func TestLinearizable_CheckpointsUnderFaults(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	parts := []fsm.PartitionID{"p0", "p1", "p2"}
	var specs []fsm.PartitionSpec
	for _, p := range parts {
		specs = append(specs, fsm.PartitionSpec{ID: p, Subjects: []string{"o." + string(p) + ".>"}})
	}
	c.MustApply(t, fsm.Command{Body: fsm.Join{Worker: "w1"}})
	var inc fsm.Incarnation
	for _, ev := range c.MustApply(t, fsm.Command{Body: fsm.Declare{Partitions: specs}}).Events {
		_ = ev
	}
	wres := c.Apply(t, fsm.Command{Body: fsm.Join{Worker: "w2"}})
	inc = fsm.Incarnation(wres.Index)
	var claims []fsm.ClaimItem
	for _, p := range parts {
		claims = append(claims, fsm.ClaimItem{Partition: p, Worker: "w2"})
	}
	c.MustApply(t, fsm.Command{Body: fsm.Claim{Items: claims}})

	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var mu sync.Mutex
	var history []porcupine.Operation
	record := func(id int, in cpInput, call int64, out cpOutput, ret int64) {
		mu.Lock()
		defer mu.Unlock()
		history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
	}
	ctx, cancel := context.WithTimeout(context.Background(), *chaosDuration)
	defer cancel()
	var wg sync.WaitGroup
	for id := 0; id < 4; id++ {
		cl, err := client.New(c.URLs(), client.WithTimeout(time.Second), client.WithRetries(3))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		lin := cl.At(client.ConsistencyLinearizable)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(id), 7))
			var seq fsm.StreamSeq
			for ctx.Err() == nil {
				p := parts[rng.IntN(len(parts))]
				call := now()
				if rng.IntN(2) == 0 {
					seq += fsm.StreamSeq(rng.IntN(5))
					in := cpInput{part: p, write: true, seq: seq}
					res, err := cl.Checkpoints(ctx, "w2", inc, []fsm.CheckpointItem{{Partition: p, Epoch: 1, Seq: seq}})
					out := cpOutput{}
					switch {
					case err != nil:
						// Unknown fate: it may apply at any time after the call.
						out.unknown = true
						record(id, in, call, out, 1<<62)
						continue
					case len(res.Items) > 0 && res.Items[0] != nil:
						if !errors.Is(res.Items[0], fsm.ErrSeqRegressed) {
							t.Errorf("write %d to %s: %v", seq, p, res.Items[0])
						}
						out.rejected = true
					}
					record(id, in, call, out, now())
					continue
				}
				info, err := lin.Partition(ctx, p)
				if err != nil {
					continue // a failed read has no effect
				}
				record(id, cpInput{part: p}, call, cpOutput{seq: info.Checkpoint}, now())
			}
		}()
	}
	// The nemesis: every 400ms one fault, then heal.
	rng := rand.New(rand.NewPCG(42, 42))
	for ctx.Err() == nil {
		leader := c.Leader(t)
		li := 0
		var ids []string
		for i, n := range c.Nodes {
			ids = append(ids, n.ID)
			if n == leader {
				li = i
			}
		}
		switch rng.IntN(3) {
		case 0:
			c.Net.Isolate(leader.ID, ids...)
		case 1:
			c.Kill(t, li)
		}
		select {
		case <-ctx.Done():
		case <-time.After(400 * time.Millisecond):
		}
		c.Net.Heal()
		if c.Nodes[li].Raft() == nil {
			c.Restart(t, li)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	wg.Wait()
	res, info := porcupine.CheckOperationsVerbose(checkpointModel.ToModel(), history, time.Minute)
	_ = info
	if res != porcupine.Ok {
		t.Fatalf("history of %d operations is not linearizable (%s)", len(history), res)
	}
	t.Logf("%d operations linearizable", len(history))
}
