package client_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/rawraft"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

// BenchmarkWriteThroughput measures writes through the API of a 3-node
// loopback cluster: N concurrent workers, each with its own client, each
// checkpointing its own partition (one raft entry per call), sent to the
// leader. In the same run it measures raw hashicorp/raft Apply on a bare
// 3-node cluster with the same stores and settings (internal/rawraft) at the
// same concurrency, and reports:
//
//	api-writes/s      API checkpoints per second (ns/op is the API's too)
//	raw-writes/s      raw raft applies per second, pipelined replication
//	api/raw           the ratio of the two
//	raw-nopipe-writes/s  raw raft without pipelining, as testcluster's
//	                  fault-injecting transport forces on the API cluster
//	node-writes/s     the same checkpoints proposed to the leader's raftnode
//	                  directly: Baton's state machine and audit log without
//	                  HTTP, JSON and the client
//
// fsync=false is testcluster.Fast's NoSync; fsync=true syncs the bolt log on
// every append, as production does.
//
//	go test -run '^$' -bench BenchmarkWriteThroughput -benchtime 2000x ./api/client/
func BenchmarkWriteThroughput(b *testing.B) {
	const maxClients = 128
	for _, sync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%t", sync), func(b *testing.B) {
			c := testcluster.NewWithAPI(b, 3, server.Config{}, func(cfg *raftnode.Config) { cfg.NoSync = !sync })
			raw := rawraft.New(b, rawraft.Options{NoSync: !sync})
			rawNoPipe := rawraft.New(b, rawraft.Options{NoSync: !sync, NoPipeline: true})
			workers := setupWorkers(b, c, maxClients)
			for _, n := range []int{1, 16, maxClients} {
				b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
					ctx := context.Background()
					b.ResetTimer()
					apiDur := concurrently(b, n, func(i int) error { return workers[i].checkpoint(ctx) })
					b.StopTimer()
					node := c.Leader(b).Raft()
					nodeDur := concurrently(b, n, func(i int) error { return workers[i].propose(ctx, node) })
					payload := make([]byte, 64) // about a checkpoint command's size
					rawDur := concurrently(b, n, func(int) error { return raw.Apply(ctx, payload) })
					noPipeDur := concurrently(b, n, func(int) error { return rawNoPipe.Apply(ctx, payload) })
					apiRate := float64(b.N) / apiDur.Seconds()
					rawRate := float64(b.N) / rawDur.Seconds()
					b.ReportMetric(apiRate, "api-writes/s")
					b.ReportMetric(rawRate, "raw-writes/s")
					b.ReportMetric(apiRate/rawRate, "api/raw")
					b.ReportMetric(float64(b.N)/noPipeDur.Seconds(), "raw-nopipe-writes/s")
					b.ReportMetric(float64(b.N)/nodeDur.Seconds(), "node-writes/s")
				})
			}
		})
	}
}

// benchWorker is one registered worker owning one active partition.
type benchWorker struct {
	c    *client.Client
	id   fsm.WorkerID
	inc  fsm.Incarnation
	part fsm.PartitionID
	seq  atomic.Uint64 // the last checkpoint; checkpoints never go back
}

func (w *benchWorker) checkpoint(ctx context.Context) error {
	res, err := w.c.Checkpoints(ctx, w.id, w.inc, []fsm.CheckpointItem{{Partition: w.part, Epoch: 1, Seq: fsm.StreamSeq(w.seq.Add(1))}})
	if err == nil {
		err = client.ItemErrors(res)
	}
	return err
}

// propose sends the same checkpoint straight to the leader's raftnode.
func (w *benchWorker) propose(ctx context.Context, n *raftnode.Node) error {
	res, err := n.Propose(ctx, fsm.Command{
		Header: fsm.Header{Actor: "worker:" + string(w.id), Cause: "checkpoint"},
		Body: fsm.Checkpoint{Worker: w.id, Incarnation: w.inc,
			Items: []fsm.CheckpointItem{{Partition: w.part, Epoch: 1, Seq: fsm.StreamSeq(w.seq.Add(1))}}},
	})
	if err == nil {
		err = res.FirstError()
	}
	return err
}

// setupWorkers registers n workers, each owning one active partition, each
// with its own client that tries the leader first.
func setupWorkers(b *testing.B, c *testcluster.Cluster, n int) []*benchWorker {
	b.Helper()
	ctx := context.Background()
	addrs := urlsFrom(c, indexOfNode(c, c.Leader(b)))
	admin := newClient(b, addrs)
	mustOK(b, "declare")(admin.Declare(ctx, specs("bench-p", n)))
	var out []*benchWorker
	var items []fsm.ClaimItem
	for i := 0; i < n; i++ {
		w := &benchWorker{c: newClient(b, addrs), id: fsm.WorkerID(fmt.Sprintf("bench-w%d", i)), part: fsm.PartitionID(fmt.Sprintf("bench-p%d", i))}
		reg, err := admin.Register(ctx, api.RegisterRequest{Worker: w.id})
		if err != nil {
			b.Fatal(err)
		}
		w.inc = reg.Incarnation
		items = append(items, fsm.ClaimItem{Partition: w.part, Worker: w.id})
		out = append(out, w)
	}
	claim(b, c, items...)
	return out
}

// concurrently runs b.N calls of f spread over n goroutines (goroutine i
// passes i) and returns the wall time.
func concurrently(b *testing.B, n int, f func(i int) error) time.Duration {
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return d
}
