package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/delivery"
	"github.com/batonhq/baton/internal/faultnet"
	"github.com/batonhq/baton/internal/natstest"
)

var (
	chaosDuration = flag.Duration("chaos.duration", 20*time.Second,
		"how long TestE2E_ChaosSuite injects faults on each retention (make chaos: CHAOS_DURATION)")
	chaosRetention = flag.String("chaos.retention", "",
		"retentions TestE2E_ChaosSuite runs: Limits, Interest, WorkQueue or all (empty: one, chosen by the seed)")
	chaosReport = flag.String("chaos.report", "", "file TestE2E_ChaosSuite writes its report to, as JSON")
	chaosNATS   = flag.Int("chaos.nats", 1, "JetStream servers TestE2E_ChaosSuite runs: 1, or a cluster of 3 with an R3 stream and NATS node kills and isolations among the faults (make chaos: 3)")
)

// chaosWorkers is how many workers the suite starts with; joins and
// graceful leaves move the count between chaosMinWorkers and
// len(chaosPool).
const (
	chaosWorkers    = 4
	chaosMinWorkers = 2
)

// chaosPool is every worker id the suite may run.
var chaosPool = []fsm.WorkerID{"w1", "w2", "w3", "w4", "w5", "w6"}

// TestE2E_ChaosSuite is the suite a release must pass (issue 13): real
// processes — three `baton server`, `baton worker --record` processes, each
// reaching the claim store through its own proxies — over an embedded
// nats-server, a producer publishing steadily to faultPartitions partitions,
// and faults mixed at random with a seed that is printed and replays the
// run's choices (-chaos.seed): worker SIGKILL, SIGTERM, SIGSTOP shorter and
// longer than the session TTL; raft leader and follower SIGKILL and SIGSTOP;
// a worker cut off from the claim store but not from NATS; operator moves,
// cordons and worker joins throughout. After each fault it waits, with a
// deadline, for placement to settle again.
//
// At the end, from the workers' records, the stream and every node's audit
// and raft logs, it requires: nothing lost, reordered, or handled twice
// beyond the checkpoint window of a crash (delivery.Check); nothing handled
// under an epoch after a newer one was committed; no two epochs of a
// partition handling at once except a handler already running when its
// worker froze; identical audit logs, states and raft logs on every node,
// and the audit log's invariants (fsm.HistoryChecker: epochs strictly
// increasing, every handoff ended); no partition left activating; every
// worker exiting 0 on SIGTERM with no consumer left on the stream. It
// reports per-phase handoff latency, worker-crash failover and leader-loss
// recovery times, and stalls over 1 s with the fault that caused them, as a
// table and (-chaos.report) as JSON.
//
// `make test` runs it briefly on one retention; `make chaos` runs it on all
// three for CHAOS_DURATION each.
func TestE2E_ChaosSuite(t *testing.T) {
	needBinary(t)
	needProcStat(t)
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	var runs []struct {
		name   string
		policy jetstream.RetentionPolicy
	}
	switch *chaosRetention {
	case "":
		runs = append(runs, retentions[seed%uint64(len(retentions))])
	case "all":
		runs = append(runs, retentions...)
	default:
		for _, r := range retentions {
			if strings.EqualFold(r.name, *chaosRetention) {
				runs = append(runs, r)
			}
		}
		if len(runs) == 0 {
			t.Fatalf("-chaos.retention %q: want Limits, Interest, WorkQueue or all", *chaosRetention)
		}
	}
	t.Logf("chaos suite: seed %d, %s of faults per retention (replay: -chaos.seed=%d -chaos.retention=%s -chaos.duration=%s)",
		seed, *chaosDuration, seed, *chaosRetention, *chaosDuration)
	var reports []*chaosResult
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			res := runChaos(t, seed, r.name, r.policy, *chaosDuration)
			reports = append(reports, res)
			t.Log("\n" + res.table())
		})
	}
	if *chaosReport != "" {
		b, err := json.MarshalIndent(reports, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*chaosReport, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// chaosResult is one retention's report.
type chaosResult struct {
	Seed      uint64         `json:"seed"`
	Retention string         `json:"retention"`
	Duration  string         `json:"duration"`
	Faults    map[string]int `json:"faults"`

	Published       int `json:"published"`
	Lost            int `json:"lost"`
	Duplicated      int `json:"duplicated"`
	Reordered       int `json:"reordered"`
	CrashDuplicates int `json:"crash_duplicates"`
	StaleHandled    int `json:"handled_under_stale_epoch"`
	Overlaps        int `json:"overlapping_owners"`

	GracefulHandoffs int `json:"graceful_handoffs"`
	ForcedCommits    int `json:"forced_commits"`
	// Phases are per-phase latencies of graceful handoffs, from the audit
	// log's leader times: p50 and p99 in milliseconds.
	Phases map[string][2]float64 `json:"phases_ms"`
	// FailoverMS: worker SIGKILL → every partition active elsewhere.
	FailoverMS []float64 `json:"failover_ms"`
	// LeaderRecoveryMS: leader SIGKILL or SIGSTOP → the others agree on a
	// new leader.
	LeaderRecoveryMS []float64 `json:"leader_recovery_ms"`
	// SettleMS: each fault's heal → placement settled again.
	SettleMS []float64    `json:"settle_ms"`
	Stalls   []chaosStall `json:"stalls"`
	// Checks names each end-of-run check and "ok" or what failed.
	Checks map[string]string `json:"checks"`
}

// chaosStall is a partition that handled nothing for over a second while
// the producer kept publishing to it.
type chaosStall struct {
	Partition fsm.PartitionID `json:"partition"`
	AtMS      float64         `json:"at_ms"` // since the run's start
	MS        float64         `json:"ms"`
	Cause     string          `json:"cause"`
}

// chaosFault is one injected fault on the run's timeline.
type chaosFault struct {
	kind, target string
	start, end   time.Time // end: healed (thawed, restarted, reconnected)
	// frozen is the worker process whose SIGSTOP this was, if any.
	frozen string
}

// chaosRig is one run's deployment.
type chaosRig struct {
	t       *testing.T
	rng     *rand.Rand
	dir     string
	started time.Time
	ns      *natstest.Server  // the JetStream server, or
	jsc     *natstest.Cluster // the JetStream cluster (-chaos.nats=3)
	natsURL string
	js      jetstream.JetStream
	servers []*server
	// raftProxies stand in front of each server's raft port (the address
	// it advertises), for isolating a node.
	raftProxies map[*server]*faultnet.Proxy
	c           *client.Client
	parts       []fsm.PartitionID

	workers map[fsm.WorkerID]*chaosWorker
	records map[fsm.WorkerID]string // per worker process (w1.1, w1.2, ...)
	faults  []chaosFault
	res     *chaosResult

	// The background mover: operator moves throughout, paused while the
	// rig waits for placement to settle (moveMu is held around each move).
	moveMu   sync.Mutex
	settling atomic.Bool
	moves    atomic.Int64 // moves accepted
}

// chaosWorker is one worker id, its proxies to every server, and its
// current process (nil while it is not running).
type chaosWorker struct {
	id      fsm.WorkerID
	proxies []*faultnet.Proxy
	via     string
	proc    *workerProc
	name    string // the current process's name, key of its record file
	runs    int
}

func runChaos(t *testing.T, seed uint64, name string, policy jetstream.RetentionPolicy, d time.Duration) *chaosResult {
	r := &chaosRig{
		t: t, rng: rand.New(rand.NewPCG(seed, uint64(policy))), dir: t.TempDir(),
		workers: map[fsm.WorkerID]*chaosWorker{}, records: map[fsm.WorkerID]string{},
		res: &chaosResult{Seed: seed, Retention: name, Duration: d.String(), Faults: map[string]int{}, Checks: map[string]string{}},
	}
	switch *chaosNATS {
	case 1:
		r.ns = natstest.Start(t)
		r.natsURL = r.ns.URL()
		_, r.js = natstest.Connect(t, r.natsURL)
		natstest.CreateStream(t, r.js, "ORDERS", policy, "orders.>")
	case 3:
		r.jsc = natstest.StartCluster(t, 3)
		r.natsURL = r.jsc.URL()
		_, r.js = natstest.Connect(t, r.natsURL)
		r.jsc.CreateStream(t, r.js, "ORDERS", policy, "orders.>")
	default:
		t.Fatalf("-chaos.nats=%d: want 1 or 3", *chaosNATS)
	}
	r.startServers(3)
	r.c = newClient(t, urls(r.servers))
	r.parts = declarePartitions(t, r.c, strings.Join(urls(r.servers), ","), faultPartitions)
	for _, id := range chaosPool {
		w := &chaosWorker{id: id}
		var via []string
		for _, s := range r.servers {
			p, err := faultnet.NewProxy(strings.TrimPrefix(s.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			w.proxies = append(w.proxies, p)
			via = append(via, "http://"+p.Addr())
		}
		w.via = strings.Join(via, ",")
		r.workers[id] = w
	}
	for _, id := range chaosPool[:chaosWorkers] {
		r.startWorker(id)
	}
	r.settle("start")
	pub := startPublisher(t, r.js, r.parts, r.rng)
	pub.waitFor(t, 200)

	r.started = time.Now()
	t.Logf("faults start at %s UTC (the processes' log clock; the times below are since then)", r.started.UTC().Format("15:04:05.000"))
	stopMover := r.startMover()
	for time.Since(r.started) < d {
		r.step()
		if t.Failed() {
			break
		}
		pause := time.Duration(200+r.rng.IntN(800)) * time.Millisecond
		time.Sleep(pause)
	}
	stopMover()
	r.settle("the last fault")
	pub.waitFor(t, pub.count()+100)
	published := pub.halt()
	r.res.Faults["operator_move (background)"] = int(r.moves.Load())
	r.check(published)
	return r.res
}

// live returns the running workers, sorted.
func (r *chaosRig) live() []fsm.WorkerID {
	var out []fsm.WorkerID
	for _, id := range chaosPool {
		if r.workers[id].proc != nil {
			out = append(out, id)
		}
	}
	return out
}

func (r *chaosRig) startWorker(id fsm.WorkerID) {
	r.t.Helper()
	w := r.workers[id]
	w.runs++
	w.name = fmt.Sprintf("%s.%d", id, w.runs)
	dir, extra := r.dir, []string{"--close-timeout", "5s", "--janitor-interval", "2s"}
	if keep := os.Getenv("BATON_E2E_LOGS"); keep != "" {
		// Kept for the hunt: the records beside the logs, and the
		// workers' debug lines (reads, duplicates, strays).
		dir = filepath.Join(keep, strings.ReplaceAll(r.t.Name(), "/", "_"))
		extra = append(extra, "--log-level", "debug")
	}
	file := filepath.Join(dir, w.name+".rec")
	r.records[fsm.WorkerID(w.name)] = file
	w.proc = startRecordingWorker(r.t, id, r.natsURL, w.via, file, extra...)
}

// startMover moves one or two random partitions to a random active,
// uncordoned worker every few hundred milliseconds, through faults and all,
// until the returned function is called. Refusals (a handoff already
// pending, the worker already the owner) and failures while the claim store
// has no leader are part of the game.
func (r *chaosRig) startMover() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	rng := rand.New(rand.NewPCG(r.rng.Uint64(), 1))
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond):
			}
			r.moveMu.Lock()
			if !r.settling.Load() {
				r.moveOnce(ctx, rng)
			}
			r.moveMu.Unlock()
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

func (r *chaosRig) moveOnce(ctx context.Context, rng *rand.Rand) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	wl, err := r.c.Workers(ctx)
	if err != nil {
		return
	}
	var to []fsm.WorkerID
	for _, w := range wl.Workers {
		if w.State == fsm.WorkerActive && !w.Cordoned {
			to = append(to, w.ID)
		}
	}
	if len(to) < 2 {
		return
	}
	for range 1 + rng.IntN(2) {
		if _, err := r.c.Move(ctx, pick(rng, r.parts), api.MoveRequest{To: pick(rng, to), Reason: "chaos"}); err == nil {
			r.moves.Add(1)
		}
	}
}

// settle waits until placement is settled on the live workers and records
// how long it took after what. The background mover pauses meanwhile.
func (r *chaosRig) settle(after string) time.Duration {
	r.t.Helper()
	// Set under the mover's lock: no move is in flight once it is set.
	r.moveMu.Lock()
	r.settling.Store(true)
	r.moveMu.Unlock()
	defer r.settling.Store(false)
	took, err := waitUntil(2*timeout, func(ctx context.Context) error { return placementSettled(ctx, r.c, r.live()...) })
	if err != nil {
		r.t.Fatalf("placement did not settle within %s after %s: %v", 2*timeout, after, err)
	}
	return took
}

// pick returns a random element of xs.
func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// step injects one fault or operator action, heals it, and waits until
// placement settles.
func (r *chaosRig) step() {
	t := r.t
	t.Helper()
	type action struct {
		name   string
		weight int
		ok     func() bool
		run    func() chaosFault
	}
	live := r.live()
	ttl := faultTTL
	anyLive := func() bool { return len(live) > 0 }
	canLose := func() bool { return len(live) > chaosMinWorkers }
	actions := []action{
		{"worker_sigkill", 3, canLose, func() chaosFault {
			w := r.workers[pick(r.rng, live)]
			f := chaosFault{kind: "worker_sigkill", target: w.name, start: time.Now()}
			w.proc.crash()
			w.proc = nil
			took := r.settle(f.kind + " " + f.target)
			r.res.FailoverMS = append(r.res.FailoverMS, ms(took))
			r.startWorker(w.id)
			f.end = time.Now()
			return f
		}},
		{"worker_sigterm", 3, canLose, func() chaosFault {
			w := r.workers[pick(r.rng, live)]
			f := chaosFault{kind: "worker_sigterm", target: w.name, start: time.Now()}
			w.proc.stop()
			w.proc = nil
			f.end = time.Now()
			return f
		}},
		{"worker_join", 3, func() bool { return len(live) < len(chaosPool) }, func() chaosFault {
			var idle []fsm.WorkerID
			for _, id := range chaosPool {
				if r.workers[id].proc == nil {
					idle = append(idle, id)
				}
			}
			id := pick(r.rng, idle)
			f := chaosFault{kind: "worker_join", target: string(id), start: time.Now()}
			r.startWorker(id)
			f.end = time.Now()
			return f
		}},
		{"worker_sigstop_short", 2, anyLive, func() chaosFault {
			return r.freezeWorker("worker_sigstop_short", r.workers[pick(r.rng, live)], ttl/4+time.Duration(r.rng.Int64N(int64(ttl/4))))
		}},
		{"worker_sigstop_long", 2, anyLive, func() chaosFault {
			return r.freezeWorker("worker_sigstop_long", r.workers[pick(r.rng, live)], ttl+time.Second+time.Duration(r.rng.Int64N(int64(2*time.Second))))
		}},
		{"worker_cut_from_store", 2, anyLive, func() chaosFault {
			w := r.workers[pick(r.rng, live)]
			f := chaosFault{kind: "worker_cut_from_store", target: w.name, start: time.Now()}
			for _, p := range w.proxies {
				p.Cut()
			}
			time.Sleep(ttl + time.Second + time.Duration(r.rng.Int64N(int64(time.Second))))
			for _, p := range w.proxies {
				p.Heal()
			}
			f.end = time.Now()
			return f
		}},
		{"raft_leader_sigkill", 2, nil, func() chaosFault { return r.killServer(true) }},
		{"raft_follower_sigkill", 1, nil, func() chaosFault { return r.killServer(false) }},
		{"raft_leader_sigstop", 2, nil, func() chaosFault { return r.freezeServer(true) }},
		{"raft_follower_sigstop", 1, nil, func() chaosFault { return r.freezeServer(false) }},
		{"raft_leader_isolated", 2, nil, func() chaosFault { return r.isolateServer(true) }},
		{"nats_node_sigkill", 2, func() bool { return r.jsc != nil }, func() chaosFault { return r.killNATS() }},
		{"nats_node_isolated", 1, func() bool { return r.jsc != nil }, func() chaosFault { return r.isolateNATS() }},
		{"raft_follower_isolated", 1, nil, func() chaosFault { return r.isolateServer(false) }},
		{"operator_move", 4, func() bool { return len(live) > 1 }, func() chaosFault {
			f := chaosFault{kind: "operator_move", start: time.Now()}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			var moved []string
			for range 1 + r.rng.IntN(4) {
				p, to := pick(r.rng, r.parts), pick(r.rng, live)
				_, err := r.c.Move(ctx, p, api.MoveRequest{To: to, Reason: "chaos"})
				var ae *api.Error
				switch {
				case err == nil:
					moved = append(moved, fmt.Sprintf("%s→%s", p, to))
				case errors.As(err, &ae) && ae.Status < 500:
					// Already there, or a handoff is pending: fine.
				default:
					t.Errorf("move %s to %s: %v", p, to, err)
				}
			}
			f.target = strings.Join(moved, " ")
			f.end = time.Now()
			return f
		}},
		{"operator_cordon", 2, func() bool { return len(live) > chaosMinWorkers }, func() chaosFault {
			// Drain for maintenance and back: cordon, wait until it holds
			// nothing, uncordon.
			id := pick(r.rng, live)
			f := chaosFault{kind: "operator_cordon", target: string(id), start: time.Now()}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if _, err := r.c.Cordon(ctx, id, true); err != nil {
				t.Errorf("cordon %s: %v", id, err)
			}
			r.settle("cordon " + string(id))
			if _, err := r.c.Cordon(ctx, id, false); err != nil {
				t.Errorf("uncordon %s: %v", id, err)
			}
			f.end = time.Now()
			return f
		}},
	}
	total := 0
	var ok []action
	for _, a := range actions {
		if a.ok == nil || a.ok() {
			ok = append(ok, a)
			total += a.weight
		}
	}
	n := r.rng.IntN(total)
	for _, a := range ok {
		if n -= a.weight; n < 0 {
			f := a.run()
			r.res.Faults[f.kind]++
			r.faults = append(r.faults, f)
			took := r.settle(f.kind + " " + f.target)
			r.res.SettleMS = append(r.res.SettleMS, ms(took))
			t.Logf("%7s %s %s: healed after %s, settled %s later",
				roundMS(f.start.Sub(r.started)), f.kind, f.target, roundMS(f.end.Sub(f.start)), roundMS(took))
			return
		}
	}
}

// freezeWorker stops w's process with SIGSTOP for d, then continues it.
func (r *chaosRig) freezeWorker(kind string, w *chaosWorker, d time.Duration) chaosFault {
	f := chaosFault{kind: kind, target: w.name, frozen: w.name}
	w.proc.signal(syscall.SIGSTOP)
	waitStopped(r.t, w.proc.proc)
	f.start = time.Now()
	time.Sleep(d)
	w.proc.signal(syscall.SIGCONT)
	f.end = time.Now()
	return f
}

// serverRole returns the leader, or a random follower.
func (r *chaosRig) serverRole(leader bool) *server {
	l := leaderOf(r.t, r.servers)
	if leader {
		return l
	}
	var rest []*server
	for _, s := range r.servers {
		if s != l {
			rest = append(rest, s)
		}
	}
	return pick(r.rng, rest)
}

// newLeader waits until the servers other than gone agree on a leader and
// returns how long that took since from.
func (r *chaosRig) newLeader(gone *server, from time.Time) time.Duration {
	var rest []*server
	for _, s := range r.servers {
		if s != gone {
			rest = append(rest, s)
		}
	}
	leaderOf(r.t, rest)
	return time.Since(from)
}

func (r *chaosRig) killServer(leader bool) chaosFault {
	s := r.serverRole(leader)
	kind := "raft_follower_sigkill"
	if leader {
		kind = "raft_leader_sigkill"
	}
	f := chaosFault{kind: kind, target: s.id, start: time.Now()}
	s.crash()
	if leader {
		r.res.LeaderRecoveryMS = append(r.res.LeaderRecoveryMS, ms(r.newLeader(s, f.start)))
	}
	time.Sleep(time.Duration(500+r.rng.IntN(2000)) * time.Millisecond)
	s.restart()
	waitReady(r.t, r.servers, len(r.servers))
	f.end = time.Now()
	return f
}

func (r *chaosRig) freezeServer(leader bool) chaosFault {
	s := r.serverRole(leader)
	kind := "raft_follower_sigstop"
	if leader {
		kind = "raft_leader_sigstop"
	}
	f := chaosFault{kind: kind, target: s.id}
	s.signal(syscall.SIGSTOP)
	waitStopped(r.t, s.proc)
	f.start = time.Now()
	d := 500*time.Millisecond + time.Duration(r.rng.Int64N(int64(5*time.Second)))
	if leader {
		r.res.LeaderRecoveryMS = append(r.res.LeaderRecoveryMS, ms(r.newLeader(s, f.start)))
	}
	if left := d - time.Since(f.start); left > 0 {
		time.Sleep(left)
	}
	s.signal(syscall.SIGCONT)
	waitReady(r.t, r.servers, len(r.servers))
	f.end = time.Now()
	return f
}

// startServers starts n servers as startServers does, each advertising a
// proxy in front of its raft port as its raft address, so that every raft
// connection to a node passes its proxy.
func (r *chaosRig) startServers(n int) {
	t := r.t
	t.Helper()
	base := t.TempDir()
	r.raftProxies = map[*server]*faultnet.Proxy{}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("n%d", i)
		px, err := faultnet.NewProxy("")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { px.Close() })
		adv := []string{"--raft-advertise", px.Addr()}
		args := withFlags(serverArgs(id, filepath.Join(base, id), "127.0.0.1:0", "127.0.0.1:0"), adv...)
		join := []string{"--bootstrap"}
		if i > 1 {
			join = []string{"--join", r.servers[0].url}
		}
		p := start(t, id, append(args, join...)...)
		line := p.waitLog("listening")
		s := &server{proc: p, id: id, raftAddr: str(line["raft_bind"]), url: str(line["api_url"])}
		px.SetTarget(s.raftAddr)
		// A restart comes back on the same addresses.
		p.args = append(withFlags(serverArgs(id, filepath.Join(base, id), s.raftAddr, strings.TrimPrefix(s.url, "http://")), adv...), join...)
		r.servers = append(r.servers, s)
		r.raftProxies[s] = px
	}
	waitReady(t, r.servers, n)
}

// isolateServer cuts the leader, or a random follower, off from the other
// raft nodes both ways — its proxy drops what comes in, the others' drop
// what it sends — for a few seconds, while its API stays reachable.
func (r *chaosRig) isolateServer(leader bool) chaosFault {
	s := r.serverRole(leader)
	kind := "raft_follower_isolated"
	if leader {
		kind = "raft_leader_isolated"
	}
	f := chaosFault{kind: kind, target: s.id, start: time.Now()}
	pid := s.cmd.Process.Pid
	r.raftProxies[s].Cut()
	for o, px := range r.raftProxies {
		if o != s {
			px.CutFrom(pid)
		}
	}
	d := time.Second + time.Duration(r.rng.Int64N(int64(4*time.Second)))
	if leader {
		r.res.LeaderRecoveryMS = append(r.res.LeaderRecoveryMS, ms(r.newLeader(s, f.start)))
	}
	if left := d - time.Since(f.start); left > 0 {
		time.Sleep(left)
	}
	r.raftProxies[s].Heal()
	for o, px := range r.raftProxies {
		if o != s {
			px.HealFrom(pid)
		}
	}
	waitReady(r.t, r.servers, len(r.servers))
	f.end = time.Now()
	return f
}

// natsNode picks a JetStream node to fault: the stream's leader, the leader
// of a worker's consumer, or any running node, and says which.
func (r *chaosRig) natsNode() (*natstest.Node, string) {
	switch r.rng.IntN(3) {
	case 0:
		if nd := r.jsc.LeaderNow("ORDERS", ""); nd != nil {
			return nd, "stream leader " + nd.Name()
		}
	case 1:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if st, err := r.js.Stream(ctx, "ORDERS"); err == nil {
			for n := range st.ConsumerNames(ctx).Name() {
				if nd := r.jsc.LeaderNow("ORDERS", n); nd != nil {
					return nd, fmt.Sprintf("consumer leader %s (%s)", nd.Name(), n)
				}
			}
		}
	}
	nd := pick(r.rng, r.jsc.Running())
	return nd, "node " + nd.Name()
}

// killNATS kills a JetStream node (routes cut first: no step-down reaches
// the others), and restarts it once the stream has a leader again.
func (r *chaosRig) killNATS() chaosFault {
	nd, what := r.natsNode()
	f := chaosFault{kind: "nats_node_sigkill", target: what, start: time.Now()}
	r.jsc.Kill(r.t, nd)
	r.jsc.StreamLeader(r.t, "ORDERS")
	time.Sleep(time.Duration(500+r.rng.IntN(2000)) * time.Millisecond)
	r.jsc.Restart(r.t, nd)
	f.end = time.Now()
	return f
}

// isolateNATS cuts a JetStream node's routes for a few seconds while it
// keeps its clients.
func (r *chaosRig) isolateNATS() chaosFault {
	nd, what := r.natsNode()
	f := chaosFault{kind: "nats_node_isolated", target: what, start: time.Now()}
	r.jsc.Isolate(r.t, nd)
	time.Sleep(time.Second + time.Duration(r.rng.Int64N(int64(5*time.Second))))
	r.jsc.Heal(r.t, nd)
	r.jsc.WaitCurrent(r.t)
	f.end = time.Now()
	return f
}

// check runs the end-of-run checks and fills the report.
func (r *chaosRig) check(published map[fsm.PartitionID][]fsm.StreamSeq) {
	t := r.t
	t.Helper()
	res := r.res
	fail := func(check, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		res.Checks[check] = "FAIL: " + msg
		t.Errorf("%s: %s", check, msg)
	}
	pass := func(check string) {
		if _, failed := res.Checks[check]; !failed {
			res.Checks[check] = "ok"
		}
	}
	for _, n := range published {
		res.Published += len(n)
	}

	// Delivery: everything handled, nothing lost, reordered, or handled
	// twice beyond a crash's checkpoint window.
	var handled map[fsm.PartitionID][]delivery.Record
	if _, err := waitUntil(2*timeout, func(context.Context) error {
		var err error
		handled, err = readAllHandled(r.records, published)
		return err
	}); err != nil {
		fail("everything handled", "%v", err)
	}
	pass("everything handled")
	evs := sameAudit(t, r.servers)
	forced := delivery.ForcedCommits(evs)
	for p := range handled {
		delivery.OrderByEpoch(handled[p])
	}
	rep := delivery.Check(published, handled, forced)
	res.Lost, res.Duplicated, res.Reordered, res.CrashDuplicates = rep.Lost, rep.Duplicated, rep.Reordered, rep.CrashDuplicates
	if !rep.OK() || rep.Unexpected > 0 {
		fail("exactly once", "%s unexpected=%d: %s", rep, rep.Unexpected, strings.Join(rep.Problems()[:min(5, len(rep.Problems()))], "; "))
		for _, line := range describeLoss(published, handled, evs) {
			t.Log(line)
		}
	}
	pass("exactly once")

	// One owner at a time, judged from the handlers' side.
	hs, err := readHandlings(r.records)
	if err != nil {
		t.Fatal(err)
	}
	changes := ownerChanges(evs)
	stale := staleHandlings(hs, changes)
	res.StaleHandled = len(stale)
	if len(stale) > 0 {
		fail("nothing handled under a stale epoch", "%d handlings: %s", len(stale), describeStale(changes, stale, r.started, "the start"))
	}
	pass("nothing handled under a stale epoch")
	res.Overlaps = r.checkOverlaps(hs, changes, fail)
	pass("one owner at a time")

	// The claim store: identical everywhere, invariants hold, all settled.
	if err := fsm.NewHistoryChecker(false).CheckAll(evs); err != nil {
		fail("audit invariants", "%v", err)
	}
	pass("audit invariants")
	sameState(t, r.servers)
	r.phases(evs)
	r.stalls(hs)

	// What crashed incarnations left is cleaned while workers run (their
	// janitors); then every worker exits 0 on SIGTERM, leaving no consumer.
	if stray := r.strayConsumers(); len(stray) > 0 {
		fail("no consumer left", "consumers of gone incarnations not cleaned by the running workers: %s", strings.Join(stray, "; "))
	}
	live := r.live()
	for _, id := range live {
		r.workers[id].proc.signal(syscall.SIGTERM)
	}
	for _, id := range live {
		w := r.workers[id]
		select {
		case <-w.proc.done:
			if w.proc.err != nil {
				fail("workers exit 0", "%s exited with %v", w.name, w.proc.err)
			}
		case <-time.After(timeout):
			fail("workers exit 0", "%s did not exit within %s of SIGTERM", w.name, timeout)
		}
		w.proc = nil
	}
	pass("workers exit 0")
	if left := consumersLeft(t, r.js, 10*time.Second); len(left) > 0 {
		fail("no consumer left", "%s", strings.Join(left, "; "))
	}
	pass("no consumer left")

	commit := waitSameIndex(t, r.servers)
	for _, s := range r.servers {
		stopOrDump(t, s)
	}
	first, last, _ := sameRaftLogs(t, r.servers, commit)
	t.Logf("raft logs identical on every node, entries %d..%d", first, last)
	res.Checks["identical raft logs"] = "ok"
	res.Checks["identical audit logs and states"] = "ok"
}

// describeLoss explains, per partition that lost messages, what a person
// chasing the loss looks at first: how many and which sequences, the
// handled sequences around the first, and the partition's ownership history
// from the audit log around it (who owned it under which epoch, where each
// owner resumed and why).
func describeLoss(published map[fsm.PartitionID][]fsm.StreamSeq, handled map[fsm.PartitionID][]delivery.Record, evs []fsm.Event) []string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(published)) {
		seen := map[fsm.StreamSeq]bool{}
		for _, r := range handled[p] {
			seen[r.Seq] = true
		}
		var lost []fsm.StreamSeq
		for _, s := range published[p] {
			if !seen[s] {
				lost = append(lost, s)
			}
		}
		if len(lost) == 0 {
			continue
		}
		first := lost[0]
		var before, after []string
		for _, r := range handled[p] {
			switch {
			case r.Seq < first && r.Seq+200 > first:
				before = append(before, fmt.Sprintf("%d@%d", r.Seq, r.Epoch))
			case r.Seq > first && len(after) < 5:
				after = append(after, fmt.Sprintf("%d@%d", r.Seq, r.Epoch))
			}
		}
		out = append(out, fmt.Sprintf("LOSS %s: %d lost, %d..%d (first ones %v); handled just before (seq@epoch) %v, after %v",
			p, len(lost), first, lost[len(lost)-1], lost[:min(8, len(lost))], before[max(0, len(before)-5):], after))
		// The partition's history, then the stretch around the first
		// owner that resumed at or past the first lost message.
		var hist []string
		k := -1
		for _, ev := range evs {
			var line string
			resume := fsm.StreamSeq(0)
			switch b := ev.Body.(type) {
			case fsm.Claimed:
				if b.Partition == p {
					line = fmt.Sprintf("claimed by %s epoch %d resume after %d", b.Worker, b.Epoch, b.ResumeAfter)
					resume = b.ResumeAfter
				}
			case fsm.Prepared:
				if b.Partition == p {
					line = fmt.Sprintf("prepared %s → %s (handoff %d, %s)", b.From, b.To, b.Handoff, b.Reason)
				}
			case fsm.Drained:
				if b.Partition == p {
					line = fmt.Sprintf("drained by %s through %d (handoff %d)", b.From, b.ThroughSeq, b.Handoff)
				}
			case fsm.Committed:
				if b.Partition == p {
					line = fmt.Sprintf("committed %s → %s epoch %d resume after %d forced=%v %v", b.From, b.To, b.Epoch, b.ResumeAfter, b.Forced, b.ForceReason)
					resume = b.ResumeAfter
				}
			case fsm.Activated:
				if b.Partition == p {
					line = fmt.Sprintf("activated by %s epoch %d", b.Worker, b.Epoch)
				}
			case fsm.Released:
				if b.Partition == p {
					line = fmt.Sprintf("released by %s through %d", b.Worker, b.ThroughSeq)
				}
			}
			if line != "" {
				if k < 0 && resume >= first {
					k = len(hist)
				}
				hist = append(hist, fmt.Sprintf("  %s index %d: %s", time.Unix(0, ev.Time).Format("15:04:05.000"), ev.Index, line))
			}
		}
		if k < 0 {
			k = len(hist) - 1
		}
		out = append(out, hist[max(0, k-20):min(len(hist), k+6)]...)
	}
	return out
}

// checkOverlaps counts pairs of epochs of one partition whose handling spans
// overlap (overlaps), and fails for each overlapping handling of the older
// epoch that its worker's freeze does not explain: a handler may still be
// running when its worker is frozen, and returns only after the thaw.
func (r *chaosRig) checkOverlaps(hs map[fsm.PartitionID][]handling, changes map[fsm.PartitionID][]ownerChange, fail func(string, string, ...any)) int {
	n, first := overlaps(hs)
	var unexplained []string
	for p, list := range hs {
		start := map[fsm.Epoch]time.Time{}
		for _, h := range list {
			if s, ok := start[h.Epoch]; !ok || h.Start.Before(s) {
				start[h.Epoch] = h.Start
			}
		}
		for _, h := range list {
			for e, s := range start {
				if e <= h.Epoch || !h.End.After(s) {
					continue
				}
				if !r.frozenDuring(string(h.Worker), h.Start, h.End) {
					unexplained = append(unexplained, fmt.Sprintf("%s seq %d epoch %d (%s) ran %s into epoch %d's handling",
						p, h.Seq, h.Epoch, h.Worker, roundMS(h.End.Sub(s)), e))
				}
			}
		}
	}
	if len(unexplained) > 0 {
		slices.Sort(unexplained)
		fail("one owner at a time", "%d handlings overlap a newer epoch's without a freeze of their worker: %s (spans: %s)",
			len(unexplained), strings.Join(unexplained[:min(5, len(unexplained))], "; "), strings.Join(first, "; "))
	}
	return n
}

// frozenDuring reports whether the worker process name was frozen (SIGSTOP)
// at some time in [from, to].
func (r *chaosRig) frozenDuring(name string, from, to time.Time) bool {
	for _, f := range r.faults {
		if f.frozen == name && f.start.Before(to) && f.end.After(from) {
			return true
		}
	}
	return false
}

// phases fills the graceful handoffs' per-phase latencies from the audit
// log's leader times.
func (r *chaosRig) phases(evs []fsm.Event) {
	type times struct{ prepared, drained, committed time.Time }
	byHandoff := map[fsm.HandoffID]*times{}
	activating := map[fsm.PartitionID]struct {
		epoch fsm.Epoch
		t     *times
	}{}
	var prepDrain, drainCommit, commitActive, prepActive []float64
	for _, ev := range evs {
		at := time.Unix(0, ev.Time)
		switch b := ev.Body.(type) {
		case fsm.Prepared:
			byHandoff[b.Handoff] = &times{prepared: at}
		case fsm.Drained:
			if h := byHandoff[b.Handoff]; h != nil {
				h.drained = at
			}
		case fsm.Committed:
			if b.Forced {
				r.res.ForcedCommits++
				continue
			}
			r.res.GracefulHandoffs++
			if h := byHandoff[b.Handoff]; h != nil && !h.drained.IsZero() {
				h.committed = at
				activating[b.Partition] = struct {
					epoch fsm.Epoch
					t     *times
				}{b.Epoch, h}
			}
		case fsm.Activated:
			a, ok := activating[b.Partition]
			if !ok || a.epoch != b.Epoch {
				continue
			}
			delete(activating, b.Partition)
			prepDrain = append(prepDrain, ms(a.t.drained.Sub(a.t.prepared)))
			drainCommit = append(drainCommit, ms(a.t.committed.Sub(a.t.drained)))
			commitActive = append(commitActive, ms(at.Sub(a.t.committed)))
			prepActive = append(prepActive, ms(at.Sub(a.t.prepared)))
		}
	}
	r.res.Phases = map[string][2]float64{
		"prepare→drain":   pcts(prepDrain),
		"drain→commit":    pcts(drainCommit),
		"commit→activate": pcts(commitActive),
		"prepare→active":  pcts(prepActive),
	}
}

// stalls finds partitions that handled nothing for over a second while the
// producer published to every partition every ~50 ms, and names the faults
// in progress then.
func (r *chaosRig) stalls(hs map[fsm.PartitionID][]handling) {
	for _, p := range slices.Sorted(maps.Keys(hs)) {
		list := slices.Clone(hs[p])
		slices.SortFunc(list, func(a, b handling) int { return a.Start.Compare(b.Start) })
		for i := 1; i < len(list); i++ {
			from, to := list[i-1].Start, list[i].Start
			if to.Sub(from) <= time.Second || from.Before(r.started) {
				continue
			}
			var causes []string
			for _, f := range r.faults {
				// In progress during the gap, or healed shortly before it
				// (a session expiry, an election, a catch-up follow).
				if f.start.Before(to) && f.end.After(from.Add(-3*time.Second)) {
					causes = append(causes, f.kind+" "+f.target)
				}
			}
			cause := strings.Join(causes, ", ")
			if cause == "" {
				cause = "none injected"
			}
			r.res.Stalls = append(r.res.Stalls, chaosStall{Partition: p, AtMS: ms(from.Sub(r.started)), MS: ms(to.Sub(from)), Cause: cause})
		}
	}
}

// strayConsumers waits for the consumers on ORDERS to be only those of the
// live incarnations, and returns the others if they stay.
func (r *chaosRig) strayConsumers() []string {
	var stray []string
	_, _ = waitUntil(timeout, func(ctx context.Context) error {
		stray = nil
		wl, err := r.c.Workers(ctx)
		if err != nil {
			return err
		}
		live := map[string]bool{}
		for _, w := range wl.Workers {
			if w.State != fsm.WorkerGone {
				live[fmt.Sprintf("baton_%s_%d", w.ID, w.Incarnation)] = true
			}
		}
		st, err := r.js.Stream(ctx, "ORDERS")
		if err != nil {
			return err
		}
		list := st.ListConsumers(ctx)
		for ci := range list.Info() {
			if !live[ci.Name] {
				stray = append(stray, fmt.Sprintf("%s (filters %v, %d pending, %d ack pending)", ci.Name, ci.Config.FilterSubjects, ci.NumPending, ci.NumAckPending))
			}
		}
		if err := list.Err(); err != nil {
			return err
		}
		if len(stray) > 0 {
			return fmt.Errorf("%d stray consumers", len(stray))
		}
		return nil
	})
	return stray
}

// consumersLeft lists the consumers on ORDERS, waiting up to wait for them
// to go (a worker deletes its consumer as it exits; 0: look once).
func consumersLeft(t *testing.T, js jetstream.JetStream, wait time.Duration) []string {
	t.Helper()
	var left []string
	var listErr error
	_, _ = waitUntil(wait, func(ctx context.Context) error {
		left, listErr = nil, nil
		st, err := js.Stream(ctx, "ORDERS")
		if err != nil {
			listErr = err
			return err
		}
		list := st.ListConsumers(ctx)
		for ci := range list.Info() {
			left = append(left, fmt.Sprintf("%s (filters %v, %d pending, %d ack pending)", ci.Name, ci.Config.FilterSubjects, ci.NumPending, ci.NumAckPending))
		}
		if listErr = list.Err(); listErr != nil {
			return listErr
		}
		if len(left) > 0 {
			return fmt.Errorf("%d consumers left", len(left))
		}
		return nil
	})
	if listErr != nil {
		t.Fatalf("list the consumers: %v", listErr)
	}
	return left
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// pcts returns the p50 and p99 of xs (0, 0 when empty).
func pcts(xs []float64) [2]float64 {
	if len(xs) == 0 {
		return [2]float64{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	at := func(q float64) float64 { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return [2]float64{at(0.50), at(0.99)}
}

// table renders the report for people.
func (c *chaosResult) table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos %s: seed %d, %s of faults\n", c.Retention, c.Seed, c.Duration)
	row := func(k, v string) { fmt.Fprintf(&b, "| %-42s | %s\n", k, v) }
	var faults []string
	for _, k := range slices.Sorted(maps.Keys(c.Faults)) {
		faults = append(faults, fmt.Sprintf("%s×%d", k, c.Faults[k]))
	}
	row("faults", strings.Join(faults, " "))
	row("published", fmt.Sprint(c.Published))
	row("lost / duplicated / reordered", fmt.Sprintf("%d / %d / %d", c.Lost, c.Duplicated, c.Reordered))
	row("handled again after a crash (checkpoint window)", fmt.Sprint(c.CrashDuplicates))
	row("handled under a stale epoch", fmt.Sprint(c.StaleHandled))
	row("overlapping epochs (explained by a freeze)", fmt.Sprint(c.Overlaps))
	row("handoffs graceful / forced", fmt.Sprintf("%d / %d", c.GracefulHandoffs, c.ForcedCommits))
	for _, k := range []string{"prepare→drain", "drain→commit", "commit→activate", "prepare→active"} {
		p := c.Phases[k]
		row(k+" p50 / p99", fmt.Sprintf("%.1f / %.1f ms", p[0], p[1]))
	}
	dist := func(xs []float64) string {
		if len(xs) == 0 {
			return "–"
		}
		p := pcts(xs)
		return fmt.Sprintf("%d: p50 %.0f ms, max %.0f ms", len(xs), p[0], slices.Max(xs))
	}
	row("worker crash → partitions active elsewhere", dist(c.FailoverMS))
	row("leader lost → new leader agreed", dist(c.LeaderRecoveryMS))
	row("fault healed → placement settled", dist(c.SettleMS))
	row("stalls over 1 s", fmt.Sprint(len(c.Stalls)))
	for _, s := range c.Stalls[:min(10, len(c.Stalls))] {
		row(fmt.Sprintf("  %s at %.1f s", s.Partition, s.AtMS/1000), fmt.Sprintf("%.0f ms: %s", s.MS, s.Cause))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Checks)) {
		row("check: "+k, c.Checks[k])
	}
	return b.String()
}
