package raftnode_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/raftnode"
)

var (
	hbLoadDuration = flag.Duration("hb.duration", 10*time.Second, "how long BenchmarkHeartbeatsUnderFsyncLoad writes in each measurement")
	hbLoadReps     = flag.Int("hb.reps", 3, "how many measurements BenchmarkHeartbeatsUnderFsyncLoad makes of each transport, alternately")
	hbLoadWriters  = flag.Int("hb.writers", 128, "concurrent writers in BenchmarkHeartbeatsUnderFsyncLoad")
)

// BenchmarkHeartbeatsUnderFsyncLoad measures what Baton's serial transport
// (serial.go) costs: a fresh 3-node cluster with the production settings
// (bolt log with fsync, raft's default timeouts: 1 s heartbeat and election
// timeouts, 500 ms leader lease) takes checkpoints from -hb.writers
// concurrent writers, each on its own partition (one raft entry per write),
// for -hb.duration. A follower's main loop spends that time storing and
// fsyncing entries, and without the fast path every heartbeat waits its turn
// behind them. Three transports are measured alternately, -hb.reps times
// each, in the same run:
//
//	transport=hashicorp   hashicorp's network transport as it ships: the
//	                      heartbeat fast path and pipelined replication
//	                      (raftnode.NetworkTransport; Baton before issue 9)
//	transport=fast-path   Baton's transport with the fast path given back
//	                      (raftnode.HeartbeatFastPath): the baseline for
//	                      what the fast path alone is worth
//	transport=serial      Baton's transport
//	serial/fast-path      ratios: what losing the fast path costs
//	serial/hashicorp      ratios: what both changes cost together
//
// Each transport line has writes/s, write latency (Propose on the leader)
// p50/p99 in ms, heartbeat round trips (sent by the leader, timed on its
// transport) p50/p99/max in ms and how many, and elections: the terms that
// began during the runs (0: no leader lost its place).
//
//	go test -run '^$' -bench HeartbeatsUnderFsyncLoad -benchtime=1x ./raftnode
func BenchmarkHeartbeatsUnderFsyncLoad(b *testing.B) {
	transports := []struct {
		name string
		wrap func(raft.Transport) raft.Transport
	}{
		{"hashicorp", raftnode.NetworkTransport},
		{"fast-path", raftnode.HeartbeatFastPath},
		{"serial", nil},
	}
	results := make([]loadResult, len(transports))
	for range *hbLoadReps {
		for i, tr := range transports {
			results[i].add(runFsyncLoad(b, tr.wrap, *hbLoadWriters, *hbLoadDuration))
		}
	}
	for i, tr := range transports {
		b.Run("transport="+tr.name, func(b *testing.B) { results[i].report(b) })
	}
	serial := &results[2]
	for _, base := range []int{1, 0} {
		b.Run("serial/"+transports[base].name, func(b *testing.B) { serial.ratios(b, &results[base]) })
	}
}

// loadResult sums the measurements of one transport.
type loadResult struct {
	writes    int
	failed    int
	elapsed   time.Duration
	writeLat  []time.Duration
	hbRTT     []time.Duration
	elections uint64
	firstErr  error // the first failed write's error, if any
}

func (r *loadResult) add(o loadResult) {
	r.writes += o.writes
	r.failed += o.failed
	r.elapsed += o.elapsed
	r.writeLat = append(r.writeLat, o.writeLat...)
	r.hbRTT = append(r.hbRTT, o.hbRTT...)
	r.elections += o.elections
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
}

func (r *loadResult) writesPerSec() float64 { return float64(r.writes) / r.elapsed.Seconds() }

// ratios reports r's figures over base's.
func (r *loadResult) ratios(b *testing.B, base *loadResult) {
	b.ReportMetric(r.writesPerSec()/base.writesPerSec(), "writes/s-ratio")
	b.ReportMetric(pctMS(r.writeLat, 99)/pctMS(base.writeLat, 99), "write-p99-ratio")
	b.ReportMetric(pctMS(r.hbRTT, 50)/pctMS(base.hbRTT, 50), "heartbeat-p50-ratio")
	b.ReportMetric(pctMS(r.hbRTT, 99)/pctMS(base.hbRTT, 99), "heartbeat-p99-ratio")
	b.ReportMetric(0, "ns/op")
}

func (r *loadResult) report(b *testing.B) {
	if r.firstErr != nil {
		b.Logf("%d writes failed; the first: %v", r.failed, r.firstErr)
	}
	b.ReportMetric(r.writesPerSec(), "writes/s")
	b.ReportMetric(pctMS(r.writeLat, 50), "write-p50-ms")
	b.ReportMetric(pctMS(r.writeLat, 99), "write-p99-ms")
	b.ReportMetric(pctMS(r.hbRTT, 50), "heartbeat-p50-ms")
	b.ReportMetric(pctMS(r.hbRTT, 99), "heartbeat-p99-ms")
	b.ReportMetric(pctMS(r.hbRTT, 100), "heartbeat-max-ms")
	b.ReportMetric(float64(len(r.hbRTT)), "heartbeats")
	b.ReportMetric(float64(r.elections), "elections")
	b.ReportMetric(float64(r.failed), "failed-writes")
	b.ReportMetric(0, "ns/op")
}

// pctMS is the p-th percentile of ds in milliseconds (100: the maximum).
func pctMS(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, len(s)*p/100)
	return float64(s[i].Microseconds()) / 1000
}

// runFsyncLoad is one measurement: a fresh cluster, writers writing for d;
// wrap, if set, is applied to the transport New builds.
func runFsyncLoad(b *testing.B, wrap func(raft.Transport) raft.Transport, writers int, d time.Duration) loadResult {
	b.Helper()
	timers := map[string]*rttTransport{}
	nodes := startNodes(b, 3, func(cfg *raftnode.Config) { cfg.NoSync = false }, func(id string, t raft.Transport) raft.Transport {
		if wrap != nil {
			t = wrap(t)
		}
		rt := &rttTransport{Transport: t}
		timers[id] = rt
		return rt
	})
	defer stopNodes(nodes)
	workers := setupCheckpointers(b, nodes, writers)
	for _, t := range timers {
		t.take()
	}
	term0 := maxTerm(nodes)

	var res loadResult
	var mu sync.Mutex // guards res while the writers run
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for _, w := range workers {
		wg.Go(func() {
			var lat []time.Duration
			var ok, failed int
			var firstErr error
			for seq := fsm.StreamSeq(1); time.Now().Before(deadline); seq++ {
				l, err := leaderOf(nodes)
				if err == nil {
					t0 := time.Now()
					if err = w.checkpoint(l, seq); err == nil {
						lat = append(lat, time.Since(t0))
						ok++
						continue
					}
				}
				failed++
				if firstErr == nil {
					firstErr = err
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if firstErr != nil && res.firstErr == nil {
				res.firstErr = firstErr
			}
			res.writes += ok
			res.failed += failed
			res.writeLat = append(res.writeLat, lat...)
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	for _, t := range timers {
		res.hbRTT = append(res.hbRTT, t.take()...)
	}
	res.elections = maxTerm(nodes) - term0
	return res
}

func maxTerm(nodes []*raftnode.Node) uint64 {
	var t uint64
	for _, n := range nodes {
		t = max(t, raftnode.CurrentTerm(n))
	}
	return t
}

// checkpointer is a worker that owns one partition and checkpoints it.
type checkpointer struct {
	worker fsm.WorkerID
	inc    fsm.Incarnation
	part   fsm.PartitionID
}

func (c checkpointer) checkpoint(leader *raftnode.Node, seq fsm.StreamSeq) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := leader.Propose(ctx, fsm.Command{
		Header: fsm.Header{Actor: "worker:" + string(c.worker), Cause: "checkpoint"},
		Body: fsm.Checkpoint{Worker: c.worker, Incarnation: c.inc,
			Items: []fsm.CheckpointItem{{Partition: c.part, Epoch: 1, Seq: seq}}},
	})
	if err == nil {
		err = res.FirstError()
	}
	return err
}

// setupCheckpointers declares n partitions, registers n workers and claims
// one partition for each.
func setupCheckpointers(tb testing.TB, nodes []*raftnode.Node, n int) []checkpointer {
	tb.Helper()
	l, err := leaderOf(nodes)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	propose := func(body fsm.Body) fsm.Result {
		res, err := l.Propose(ctx, fsm.Command{Header: fsm.Header{Actor: "test"}, Body: body})
		if err == nil {
			err = res.FirstError()
		}
		if err != nil {
			tb.Fatalf("%T: %v", body, err)
		}
		return res
	}
	var specs []fsm.PartitionSpec
	var claims []fsm.ClaimItem
	var out []checkpointer
	for i := range n {
		c := checkpointer{worker: fsm.WorkerID(fmt.Sprintf("bench-w%d", i)), part: fsm.PartitionID(fmt.Sprintf("bench-p%d", i))}
		specs = append(specs, fsm.PartitionSpec{ID: c.part, Subjects: []string{fmt.Sprintf("bench.%d.>", i)}})
		claims = append(claims, fsm.ClaimItem{Partition: c.part, Worker: c.worker})
		for _, ev := range propose(fsm.Join{Worker: c.worker}).Events {
			if j, ok := ev.Body.(fsm.WorkerJoined); ok {
				c.inc = j.Incarnation
			}
		}
		out = append(out, c)
	}
	propose(fsm.Declare{Partitions: specs})
	propose(fsm.Claim{Items: claims})
	return out
}

// rttTransport times the heartbeats a node sends: AppendEntries requests
// with no entries and no previous entry, as hashicorp's heartbeat loop sends
// them, from the call until the answer. Everything else passes through,
// pipelining and the optional interfaces included.
type rttTransport struct {
	raft.Transport
	// mu guards rtts: raft's heartbeat goroutines (one per follower) append,
	// the benchmark takes them between runs.
	mu   sync.Mutex
	rtts []time.Duration
}

var (
	_ raft.WithPreVote = (*rttTransport)(nil)
	_ raft.WithClose   = (*rttTransport)(nil)
)

func (t *rttTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	hb := args.Term != 0 && len(args.Addr) > 0 && args.PrevLogEntry == 0 &&
		args.PrevLogTerm == 0 && len(args.Entries) == 0 && args.LeaderCommitIndex == 0
	start := time.Now()
	err := t.Transport.AppendEntries(id, target, args, resp)
	if hb && err == nil {
		d := time.Since(start)
		t.mu.Lock()
		t.rtts = append(t.rtts, d)
		t.mu.Unlock()
	}
	return err
}

func (t *rttTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	pv, ok := t.Transport.(raft.WithPreVote)
	if !ok {
		return errors.New("rttTransport: wrapped transport has no pre-vote")
	}
	return pv.RequestPreVote(id, target, args, resp)
}

func (t *rttTransport) Close() error {
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// take returns the round trips timed so far and forgets them.
func (t *rttTransport) take() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.rtts
	t.rtts = nil
	return out
}
