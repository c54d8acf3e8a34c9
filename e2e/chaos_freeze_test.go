package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/fsm"
)

var (
	chaosFreezes = flag.Int("chaos.freezes", 2, "leader freezes TestE2E_Chaos_LeaderFreezes makes (make chaos: CHAOS_FREEZES)")
	chaosSeed    = flag.Uint64("chaos.seed", 0, "seed of the random choices of TestE2E_Chaos_LeaderFreezes and TestE2E_ChaosSuite (0: from the clock; make chaos: CHAOS_SEED)")
)

// numWriters is how many clients keep writes in flight during the freezes.
const numWriters = 8

// TestE2E_Chaos_LeaderFreezes freezes the raft leader of three real `baton
// server` processes with SIGSTOP, -chaos.freezes times (2 in make test, a
// few hundred in make chaos), while clients keep writes in flight to it:
// registrations (each replaces the worker's earlier incarnation; no session
// is ever renewed, so the controllers expire them and force-commit their
// partitions) and partition declarations. In each round the two others elect
// a leader, writes go on through it for a random while, and the frozen node
// is thawed with SIGCONT, its queued proposals and its belief that it leads
// intact: issue 9's freeze, which once forked a replica's log through
// hashicorp/raft's heartbeat fast path, and which wedged a replication
// goroutine through its pipelining often enough that a server then hung at
// shutdown in 3 of 5 runs (raftnode/serial.go). The round ends when all three
// agree on a leader and are ready again.
//
// At the end, once the writers stop and every node has applied the same
// index, every node's audit log and state (workers and partitions, read from
// each node itself) must be identical; then every server stops, and every
// node's raft log store is opened offline and compared entry by entry
// (index, term, type, data) up to the commit index all of them reported.
func TestE2E_Chaos_LeaderFreezes(t *testing.T) {
	needBinary(t)
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("leader freezes: %d rounds, seed %d (-chaos.freezes=%d -chaos.seed=%d)", *chaosFreezes, seed, *chaosFreezes, seed)

	servers := startServers(t, 3)
	w := startFreezeWriters(t, numWriters)
	defer w.stop()
	start := time.Now()
	for round := range *chaosFreezes {
		leader := leaderOf(t, servers)
		w.target(leader)
		w.waitWrites(t, "writes through "+leader.id)

		leader.signal(syscall.SIGSTOP)
		frozen := time.Now()
		var rest []*server
		for _, s := range servers {
			if s != leader {
				rest = append(rest, s)
			}
		}
		next := leaderOf(t, rest)
		elected := time.Since(frozen)
		w.target(next)
		w.waitWrites(t, "writes through "+next.id)
		// Keep writing for a while more: a thaw right after the election
		// and one long after meet different in-flight states.
		extra := time.Duration(rng.Int64N(int64(time.Second)))
		tm := time.NewTimer(extra)
		<-tm.C
		leader.signal(syscall.SIGCONT)
		thawed := time.Since(frozen)
		agreed := leaderOf(t, servers)
		waitReady(t, servers, 3)
		if round < 3 || (round+1)%25 == 0 {
			t.Logf("round %d: froze %s; %s elected after %s; thawed after %s; %s leads; %d writes ok, %d failed so far",
				round+1, leader.id, next.id, elected.Round(time.Millisecond), thawed.Round(time.Millisecond), agreed.id, w.ok.Load(), w.failed.Load())
		}
	}
	w.stop()
	t.Logf("%d freezes in %s; %d writes ok, %d failed (timed out on the frozen node, or refused)",
		*chaosFreezes, time.Since(start).Round(time.Second), w.ok.Load(), w.failed.Load())

	commit := waitSameIndex(t, servers)
	evs := sameAudit(t, servers)
	workers, parts := sameState(t, servers)
	sum := sha256.New()
	for _, ev := range evs {
		fmt.Fprintln(sum, ev.String())
	}
	t.Logf("every node applied index %d; identical audit logs (%d events, sha256 %x); identical states (%d workers, %d partitions)",
		commit, len(evs), sum.Sum(nil)[:8], workers, parts)

	for _, s := range servers {
		stopOrDump(t, s)
	}
	first, last, digest := sameRaftLogs(t, servers, commit)
	t.Logf("raft logs read offline: entries %d..%d identical on %d nodes (index, term, type, data; sha256 %x)",
		first, last, len(servers), digest[:8])
}

// freezeWriters keep writes going to the node target points at.
type freezeWriters struct {
	cur    atomic.Pointer[server]
	ok     atomic.Int64
	failed atomic.Int64
	ctx    context.Context // canceled by stop: ends the writes still in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startFreezeWriters(t *testing.T, n int) *freezeWriters {
	t.Helper()
	w := &freezeWriters{}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	for i := range n {
		w.wg.Go(func() { w.run(t, i) })
	}
	t.Cleanup(w.stop)
	return w
}

// target sends every later write to s.
func (w *freezeWriters) target(s *server) { w.cur.Store(s) }

// waitWrites waits until at least one write per writer more has succeeded.
func (w *freezeWriters) waitWrites(t *testing.T, what string) {
	t.Helper()
	from := w.ok.Load()
	eventually(t, what, func() error {
		if got := w.ok.Load() - from; got < numWriters {
			return fmt.Errorf("%d writes succeeded", got)
		}
		return nil
	})
}

// stop ends the writers and the writes still in flight, and waits for them.
func (w *freezeWriters) stop() {
	w.cancel()
	w.wg.Wait()
}

// writesInFlight bounds one writer's concurrent writes to one node: a frozen leader
// collects up to numWriters × writesInFlight requests, which it takes up all
// at once when it is thawed.
const writesInFlight = 8

// run is writer i: every 25 ms, unless writesInFlight of its writes to the
// current target are still waiting, it starts one to it, alternately a
// registration of one of three workers of its own and a declaration of one
// of sixteen partitions of its own. A write may wait up to 10 s, longer than
// a freeze, so a frozen leader still holds writes when it wakes up.
// Outcomes only count: a refused or timed-out write is normal around a
// freeze.
func (w *freezeWriters) run(t *testing.T, i int) {
	var inflight sync.WaitGroup
	slots := map[string]chan struct{}{} // per node: writes to a frozen one do not hold up the others
	clients := map[string]*client.Client{}
	defer func() {
		inflight.Wait()
		for _, c := range clients {
			c.Close()
		}
	}()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for seq := 0; ; seq++ {
		select {
		case <-w.ctx.Done():
			return
		case <-tick.C:
		}
		s := w.cur.Load()
		if s == nil {
			continue
		}
		slot := slots[s.url]
		if slot == nil {
			slot = make(chan struct{}, writesInFlight)
			slots[s.url] = slot
		}
		select {
		case slot <- struct{}{}:
		default:
			continue // writesInFlight writes to s wait already
		}
		c := clients[s.url]
		if c == nil {
			var err error
			c, err = client.New([]string{s.url}, client.WithRetries(0), client.WithTimeout(10*time.Second))
			if err != nil {
				t.Errorf("client for %s: %v", s.url, err)
				return
			}
			clients[s.url] = c
		}
		inflight.Go(func() {
			defer func() { <-slot }()
			ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
			defer cancel()
			var err error
			if seq%2 == 0 {
				_, err = c.Register(ctx, api.RegisterRequest{Worker: fsm.WorkerID(fmt.Sprintf("fw-%d-%d", i, seq/2%3))})
			} else {
				p := fmt.Sprintf("fp-%d-%d", i, seq/2%16)
				_, err = c.Declare(ctx, []fsm.PartitionSpec{{ID: fsm.PartitionID(p), Subjects: []string{"freeze." + p + ".>"}}})
			}
			switch {
			case err == nil:
				w.ok.Add(1)
			case w.ctx.Err() == nil:
				w.failed.Add(1)
			}
		})
	}
}

// waitSameIndex waits until every server is ready and reports the same
// commit index, applied and last in its log, and returns it.
func waitSameIndex(t *testing.T, servers []*server) uint64 {
	t.Helper()
	var idx uint64
	eventually(t, "every node at the same applied index", func() error {
		idx = 0
		for i, s := range servers {
			st, err := statusOf(s)
			if err != nil {
				return err
			}
			if !st.Ready || st.CommitIndex != st.AppliedIndex || st.AppliedIndex != st.LastIndex {
				return fmt.Errorf("%s: ready %v, commit %d, applied %d, last %d", s.id, st.Ready, st.CommitIndex, st.AppliedIndex, st.LastIndex)
			}
			if i == 0 {
				idx = st.CommitIndex
			} else if st.CommitIndex != idx {
				return fmt.Errorf("%s at %d, %s at %d", s.id, st.CommitIndex, servers[0].id, idx)
			}
		}
		return nil
	})
	return idx
}

func statusOf(s *server) (api.ClusterStatus, error) {
	c, err := client.New([]string{s.url}, client.WithRetries(0), client.WithTimeout(2*time.Second))
	if err != nil {
		return api.ClusterStatus{}, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return st, fmt.Errorf("%s: %w", s.id, err)
	}
	return st, nil
}

// sameState waits until every node's own workers and partitions (stale
// reads, each node answering for itself) are identical, and returns how many
// of each there are.
func sameState(t *testing.T, servers []*server) (workers, partitions int) {
	t.Helper()
	eventually(t, "identical states on every node", func() error {
		var refW api.WorkerList
		var refP []fsm.PartitionInfo
		for i, s := range servers {
			c, err := client.New([]string{s.url}, client.WithConsistency(client.ConsistencyStale), client.WithRetries(0), client.WithTimeout(5*time.Second))
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			wl, err := c.Workers(ctx)
			var ps []fsm.PartitionInfo
			if err == nil {
				for p, perr := range c.AllPartitions(ctx) {
					if perr != nil {
						err = perr
						break
					}
					ps = append(ps, p)
				}
			}
			cancel()
			c.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", s.id, err)
			}
			if i == 0 {
				refW, refP = wl, ps
				continue
			}
			if !reflect.DeepEqual(refW, wl) {
				return fmt.Errorf("workers of %s differ from %s's", s.id, servers[0].id)
			}
			if !reflect.DeepEqual(refP, ps) {
				return fmt.Errorf("partitions of %s differ from %s's", s.id, servers[0].id)
			}
		}
		workers, partitions = len(refW.Workers), len(refP)
		return nil
	})
	return workers, partitions
}

// sameRaftLogs opens every stopped server's raft log store read-only and
// compares it entry by entry up to index upTo (committed everywhere): every
// node must hold every entry from the highest first index on, with the same
// term, type, data and extensions. It returns the range compared and a
// digest of it.
func sameRaftLogs(t *testing.T, servers []*server, upTo uint64) (first, last uint64, digest []byte) {
	t.Helper()
	stores := make([]*raftboltdb.BoltStore, len(servers))
	for i, s := range servers {
		dir, err := dataDir(s)
		if err != nil {
			t.Fatal(err)
		}
		st, err := raftboltdb.New(raftboltdb.Options{
			Path:        filepath.Join(dir, "raft.db"),
			BoltOptions: &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second},
		})
		if err != nil {
			t.Fatalf("%s: open raft log: %v", s.id, err)
		}
		defer st.Close()
		stores[i] = st
		fi, err := st.FirstIndex()
		if err != nil {
			t.Fatal(err)
		}
		li, err := st.LastIndex()
		if err != nil {
			t.Fatal(err)
		}
		if li < upTo {
			t.Fatalf("%s's log ends at %d, before the commit index %d", s.id, li, upTo)
		}
		first = max(first, fi)
	}
	sum := sha256.New()
	for idx := first; idx <= upTo; idx++ {
		var ref raft.Log
		for i, st := range stores {
			var e raft.Log
			if err := st.GetLog(idx, &e); err != nil {
				t.Fatalf("%s: entry %d: %v", servers[i].id, idx, err)
			}
			if i == 0 {
				ref = e
				fmt.Fprintf(sum, "%d %d %d %x %x\n", e.Index, e.Term, e.Type, e.Data, e.Extensions)
				continue
			}
			if e.Index != ref.Index || e.Term != ref.Term || e.Type != ref.Type ||
				!bytes.Equal(e.Data, ref.Data) || !bytes.Equal(e.Extensions, ref.Extensions) {
				t.Fatalf("raft logs diverge at index %d: %s holds term %d %s (%d bytes), %s holds term %d %s (%d bytes)",
					idx, servers[0].id, ref.Term, ref.Type, len(ref.Data), servers[i].id, e.Term, e.Type, len(e.Data))
			}
		}
	}
	return first, upTo, sum.Sum(nil)
}

// stopOrDump stops s with SIGTERM and requires a clean exit. A server still
// running after timeout gets SIGQUIT, and the goroutines of its dump that
// are in raft or in Baton are logged before the test fails: a hang at
// shutdown is how a wedged raft goroutine shows (raftnode/serial.go).
func stopOrDump(t *testing.T, s *server) {
	t.Helper()
	s.signal(syscall.SIGTERM)
	select {
	case <-s.done:
		if s.err != nil {
			t.Fatalf("%s exited with %v after SIGTERM", s.id, s.err)
		}
		return
	case <-time.After(timeout):
	}
	s.signal(syscall.SIGQUIT)
	<-s.done
	b, err := os.ReadFile(s.log)
	if err != nil {
		t.Fatalf("%s did not exit within %s after SIGTERM (%v)", s.id, timeout, err)
	}
	var dump strings.Builder
	for _, g := range strings.Split(string(b), "\n\n") {
		if strings.HasPrefix(g, "goroutine ") && (strings.Contains(g, "hashicorp/raft") || strings.Contains(g, "batonhq/baton")) {
			dump.WriteString(g)
			dump.WriteString("\n\n")
		}
	}
	t.Fatalf("%s did not exit within %s after SIGTERM; its raft and baton goroutines at SIGQUIT:\n%s", s.id, timeout, dump.String())
}

// dataDir is the --data-dir a server runs with.
func dataDir(s *server) (string, error) {
	for i, a := range s.args {
		if a == "--data-dir" && i+1 < len(s.args) {
			return s.args[i+1], nil
		}
	}
	return "", errors.New(s.id + ": no --data-dir")
}
