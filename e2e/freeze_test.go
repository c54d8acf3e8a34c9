package e2e

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/delivery"
	"github.com/batonhq/baton/internal/natstest"
)

// freezeRaftTimeout is the servers' raft heartbeat and election timeout in
// TestE2E_LeaderFrozen. The default, as in the other e2e tests, keeps
// elections well inside what a worker's fencing margin leaves; pass the
// production default (1s) to measure what users see (docs/benchmarks.md):
//
//	go test -run TestE2E_LeaderFrozen -v ./e2e -args -freeze-raft-timeout=1s
var freezeRaftTimeout = flag.Duration("freeze-raft-timeout", 500*time.Millisecond,
	"raft heartbeat and election timeout of the servers in TestE2E_LeaderFrozen")

// freezeFlags are the server settings of the freeze test: the production
// session TTL and heartbeat interval (5 s, 1 s).
func freezeFlags() []string {
	d := *freezeRaftTimeout
	return []string{
		"--session-ttl", "5s", "--heartbeat-interval", "1s",
		"--raft-heartbeat-timeout", d.String(), "--raft-election-timeout", d.String(),
		"--raft-leader-lease-timeout", (d / 2).String(), "--raft-commit-timeout", "50ms",
		"--drain-timeout", "10s",
	}
}

// TestE2E_LeaderFrozen: three `baton server` processes, three `baton worker`
// processes consuming a JetStream stream under load, and the raft leader
// frozen with SIGSTOP (issue 9, section 2):
//
//  1. For 5 s, while an operator moves a partition. The two other nodes elect
//     a new leader; every worker renews its session there without fencing
//     itself, and the move's handoff completes (Activated). How long after
//     the freeze began it completed is printed, with the time to the new
//     leader and to each worker's first renewal, not checked.
//  2. For 12 s, more than twice the TTL. No session expires and nothing is
//     forced over.
//
// Then every message published was handled exactly once, in order: nothing
// moved but gracefully. Fencing is what the workers report: the metric
// baton_consumer_fenced_total and their "fencing" and "session lost" logs.
func TestE2E_LeaderFrozen(t *testing.T) {
	needBinary(t)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	ns := natstest.Start(t)
	_, js := natstest.Connect(t, ns.URL())
	natstest.CreateStream(t, js, "ORDERS", jetstream.LimitsPolicy, "orders.>")
	servers := startServers(t, 3, freezeFlags()...)
	t.Logf("raft heartbeat and election timeouts %s", *freezeRaftTimeout)
	addr := strings.Join(urls(servers), ",")
	c := newClient(t, urls(servers))
	const partitions = 6
	parts := declarePartitions(t, c, addr, partitions)
	dir := t.TempDir()
	workers := map[fsm.WorkerID]*workerProc{}
	records := map[fsm.WorkerID]string{}
	for _, id := range []fsm.WorkerID{"w1", "w2", "w3"} {
		records[id] = filepath.Join(dir, string(id)+".rec")
		workers[id] = startRecordingWorker(t, id, ns.URL(), addr, records[id])
	}
	settled(t, c, "w1", "w2", "w3")
	pub := startPublisher(t, js, parts, rng)
	pub.waitFor(t, 200)

	t.Run("5s with a move", func(t *testing.T) {
		owners, err := partitionOwners(c)
		if err != nil {
			t.Fatal(err)
		}
		p := parts[rng.IntN(len(parts))]
		to := fsm.WorkerID("w1")
		for _, w := range []fsm.WorkerID{"w1", "w2", "w3"} {
			if w != owners[p] {
				to = w
				break
			}
		}
		f := freezeLeader(t, servers, 5*time.Second)
		out, err := cliErr("move", string(p), "--to", string(to), "--addr", addr)
		if err != nil {
			t.Fatalf("move %s to %s during the freeze: %v\n%s", p, to, err, out)
		}
		accepted := time.Since(f.start)
		done := f.handoffDone(t, p, to)
		f.thawed(t)
		t.Logf("FIGURE freeze=5s: new leader after %s; move %s %s->%s accepted after %s, handoff completed (Activated) after %s",
			roundMS(f.newLeader), p, owners[p], to, roundMS(accepted), roundMS(done))
		f.renewals(t, workers)
		noFencing(t, workers)
	})
	pub.waitFor(t, pub.count()+200)

	t.Run("12s", func(t *testing.T) {
		f := freezeLeader(t, servers, 12*time.Second)
		f.thawed(t)
		t.Logf("FIGURE freeze=12s: new leader after %s", roundMS(f.newLeader))
		f.renewals(t, workers)
		settled(t, c, "w1", "w2", "w3")
		for _, s := range f.healthy {
			evs, err := auditOf(s)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if ev.Index <= f.from {
					continue
				}
				switch b := ev.Body.(type) {
				case fsm.WorkerLeft:
					if b.Reason == fsm.LeftExpired {
						t.Errorf("%s: %s's session expired at index %d", s.id, b.Worker, ev.Index)
					}
				case fsm.Committed:
					if b.Forced {
						t.Errorf("%s: %s forced from %s to %s (%s) at index %d", s.id, b.Partition, b.From, b.To, b.ForceReason, ev.Index)
					}
				}
			}
		}
		noFencing(t, workers)
	})

	published := pub.halt()
	var handled map[fsm.PartitionID][]delivery.Record
	eventually(t, "every published message handled", func() error {
		var err error
		handled, err = readAllHandled(records, published)
		return err
	})
	for p := range handled {
		delivery.OrderByEpoch(handled[p])
	}
	rep := delivery.Check(published, handled, nil)
	for _, pr := range rep.Problems() {
		t.Error(pr)
	}
	for id, pr := range rep.Partitions {
		if !pr.Exact() {
			t.Errorf("partition %s was not handled exactly once in order: %+v", id, pr)
		}
	}
	t.Logf("%s", rep)
	for _, w := range workers {
		w.stop()
	}
	for _, s := range servers {
		s.stop()
	}
}

// workerProc is a `baton worker` process and its health address.
type workerProc struct {
	*proc
	health string
}

// startRecordingWorker starts a worker that records what it handles, with
// extra flags appended, and waits until it is ready.
func startRecordingWorker(t *testing.T, id fsm.WorkerID, natsURL, addr, record string, extra ...string) *workerProc {
	t.Helper()
	args := []string{"worker", "--worker-id", string(id), "--nats", natsURL, "--stream", "ORDERS",
		"--addr", addr, "--record", record, "--checkpoint-interval", "200ms", "--handler", "count",
		"--report-interval", "0", "--health-addr", "127.0.0.1:0", "--log-format", "json"}
	p := start(t, string(id), append(args, extra...)...)
	w := &workerProc{proc: p, health: "http://" + str(p.waitLog("health listening")["health_addr"])}
	eventually(t, string(id)+" ready", func() error { return probe(w.health + "/readyz") })
	return w
}

// fenced reads the worker's baton_consumer_fenced_total.
func (w *workerProc) fenced() (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.health+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "baton_consumer_fenced_total") {
			f := strings.Fields(line)
			return strconv.ParseFloat(f[len(f)-1], 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s/metrics has no baton_consumer_fenced_total", w.health)
}

// logged returns the worker's JSON log lines with message msg.
func (p *proc) linesWith(msg string) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	for _, m := range p.lines {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// noFencing fails the test if any worker fenced itself or lost its session
// so far.
func noFencing(t *testing.T, workers map[fsm.WorkerID]*workerProc) {
	t.Helper()
	for id, w := range workers {
		n, err := w.fenced()
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s fenced itself %v times", id, n)
		}
		for _, msg := range []string{"session not renewed within its TTL; fencing", "session lost; registering again"} {
			if l := w.linesWith(msg); len(l) > 0 {
				t.Errorf("%s logged %q %d times, first %v", id, msg, len(l), l[0])
			}
		}
	}
}

// leaderFreeze is one freeze of the leader.
type leaderFreeze struct {
	leader    *server
	healthy   []*server
	start     time.Time
	resumed   chan struct{} // closed once SIGCONT was sent
	thawAt    time.Time     // when SIGCONT was sent; set before resumed closes
	from      fsm.RaftIndex // the audit's last index before the freeze
	newLeader time.Duration // from the freeze until a healthy node led
}

// freeze stops the leader with SIGSTOP and resumes it with SIGCONT after d.
// It returns once a new leader is elected (or fails the test), having
// measured how long that took.
func freezeLeader(t *testing.T, servers []*server, d time.Duration) *leaderFreeze {
	t.Helper()
	f := &leaderFreeze{leader: leaderOf(t, servers)}
	for _, s := range servers {
		if s != f.leader {
			f.healthy = append(f.healthy, s)
		}
	}
	evs, err := auditOf(f.healthy[0])
	if err != nil {
		t.Fatal(err)
	}
	f.from = lastIndex(evs)
	t.Logf("freezing leader %s for %s", f.leader.id, d)
	pid := f.leader.cmd.Process
	f.resumed = make(chan struct{})
	f.start = time.Now()
	f.leader.signal(syscall.SIGSTOP)
	thaw := time.AfterFunc(d, func() {
		_ = pid.Signal(syscall.SIGCONT)
		f.thawAt = time.Now()
		close(f.resumed)
	})
	t.Cleanup(func() {
		if thaw.Stop() {
			_ = pid.Signal(syscall.SIGCONT)
		}
	})
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, s := range f.healthy {
			if st, err := nodeStatus(s); err == nil && st.LeaderID == s.id {
				f.newLeader = time.Since(f.start)
				return f
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no new leader within %s of freezing %s", timeout, f.leader.id)
	return nil
}

// thawed waits for the freeze to end and the cluster to be whole again.
func (f *leaderFreeze) thawed(t *testing.T) {
	t.Helper()
	select {
	case <-f.resumed:
	case <-time.After(timeout):
		t.Fatalf("%s was not resumed within %s", f.leader.id, timeout)
	}
	waitReady(t, append(f.healthy, f.leader), 3)
}

// handoffDone waits until p has been committed gracefully to worker to and
// activated there, as a healthy node's audit log shows, and returns how long
// after the freeze the activation was applied (its leader time).
func (f *leaderFreeze) handoffDone(t *testing.T, p fsm.PartitionID, to fsm.WorkerID) time.Duration {
	t.Helper()
	cl := newClient(t, urls(f.healthy), client.WithConsistency(client.ConsistencyStale))
	var done time.Duration
	defer func() {
		// The handoff's steps, for the record.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var steps []string
		for ev, err := range cl.AuditAll(ctx, client.AuditQuery{From: f.from + 1, Partition: p}) {
			if err != nil {
				break
			}
			steps = append(steps, fmt.Sprintf("%s@%s", ev.Type(), roundMS(time.Unix(0, ev.Time).Sub(f.start))))
		}
		t.Logf("handoff of %s after the freeze: %s", p, strings.Join(steps, " "))
	}()
	eventually(t, fmt.Sprintf("the move of %s to %s activated", p, to), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var epoch fsm.Epoch
		for ev, err := range cl.AuditAll(ctx, client.AuditQuery{From: f.from + 1, Partition: p,
			Types: []fsm.EventType{fsm.EvCommitted, fsm.EvActivated}}) {
			if err != nil {
				return err
			}
			switch b := ev.Body.(type) {
			case fsm.Committed:
				if b.Forced {
					return fmt.Errorf("%s was forced to %s (%s)", p, b.To, b.ForceReason)
				}
				if b.To == to {
					epoch = b.Epoch
				}
			case fsm.Activated:
				if epoch != 0 && b.Worker == to && b.Epoch == epoch {
					done = time.Unix(0, ev.Time).Sub(f.start)
					return nil
				}
			}
		}
		return fmt.Errorf("not activated yet (committed epoch %d)", epoch)
	})
	return done
}

// renewals prints, per worker, when it renewed its session after the freeze
// and how long it went without a confirmed heartbeat, from its "session
// renewed after failed heartbeats" logs. A worker that logged none had no
// heartbeat fail: each one was answered within its call, by the new leader if
// the call was made during the election.
func (f *leaderFreeze) renewals(t *testing.T, workers map[fsm.WorkerID]*workerProc) {
	t.Helper()
	for _, id := range []fsm.WorkerID{"w1", "w2", "w3"} {
		var first, gap time.Duration
		for _, l := range workers[id].linesWith("session renewed after failed heartbeats") {
			at, err := time.Parse(time.RFC3339Nano, str(l["time"]))
			if err != nil || at.Before(f.start) {
				continue
			}
			if first == 0 {
				first = at.Sub(f.start)
			}
			if g, ok := l["gap"].(float64); ok {
				gap = max(gap, time.Duration(g))
			}
		}
		if first == 0 {
			t.Logf("FIGURE %s: no heartbeat failed", id)
			continue
		}
		t.Logf("FIGURE %s: session renewed %s after the freeze began, %s after the last confirmed heartbeat before it (it fences past 4s)",
			id, roundMS(first), roundMS(gap))
	}
}

func nodeStatus(s *server) (api.ClusterStatus, error) {
	c, err := client.New([]string{s.url}, client.WithRetries(0), client.WithAttemptTimeout(500*time.Millisecond))
	if err != nil {
		return api.ClusterStatus{}, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Status(ctx)
}

// ownersOf returns each partition's owner.
func partitionOwners(c *client.Client) (map[fsm.PartitionID]fsm.WorkerID, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[fsm.PartitionID]fsm.WorkerID{}
	for p, err := range c.AllPartitions(ctx) {
		if err != nil {
			return nil, err
		}
		out[p.ID] = p.Owner
	}
	return out, nil
}

func roundMS(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
