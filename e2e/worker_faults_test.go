package e2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/delivery"
	"github.com/batonhq/baton/internal/faultnet"
	"github.com/batonhq/baton/internal/natstest"
)

// The worker fault tests of issue 10: a worker or the claim store pauses, and
// the workers must neither handle a message under an epoch that was given
// away, nor wedge, nor lose a message. Each runs real processes (three
// `baton server`, `baton worker --record` processes) against the embedded
// nats-server while the test publishes steadily to faultPartitions
// partitions, and judges from the workers' records (partition, seq, epoch,
// the handler's entry and return times, whether its context was cancelled)
// and the audit log.

// faultPartitions is how many partitions the fault tests spread their load
// over.
const faultPartitions = 16

// faultTTL is the session TTL of the tests that pause a worker (the e2e
// servers' default, serverArgs): short, so that a pause past it costs
// seconds, not minutes.
const faultTTL = 2 * time.Second

// retentions are the stream retentions the per-retention tests run on.
var retentions = []struct {
	name   string
	policy jetstream.RetentionPolicy
}{
	{"Limits", jetstream.LimitsPolicy},
	{"Interest", jetstream.InterestPolicy},
	{"WorkQueue", jetstream.WorkQueuePolicy},
}

// TestE2E_WorkerFrozenPastTTL_NothingHandledUnderStaleEpoch (issue 10,
// failure 2): a worker is frozen with SIGSTOP until the leader has expired
// its session, force-committed its partitions to the two others and they
// have handled more of them, then thawed with SIGCONT. From its records:
// no handler of the frozen worker entered after the thaw under an epoch that
// had been committed to a newer one before that entry (the frozen worker's
// lease ended during the freeze, so it must dispatch nothing it owned). The
// handlers that were running at the freeze are listed, with whether their
// context was cancelled when they returned; that is logged, not asserted: a
// cancellation can only reach the process once it runs again, and a handler
// with nothing left to do returns first. Then the worker registers again
// and takes partitions (issue 10, failure 1: a new incarnation must start
// unfenced), and nothing published is lost, with duplicates only after the
// resume point of a forced commit.
func TestE2E_WorkerFrozenPastTTL_NothingHandledUnderStaleEpoch(t *testing.T) {
	needProcStat(t)
	r := newFaultRig(t, jetstream.LimitsPolicy, "--session-ttl", faultTTL.String(), "--heartbeat-interval", "500ms")
	for _, id := range []fsm.WorkerID{"w1", "w2", "w3"} {
		r.startWorker(id, r.addr)
	}
	settled(t, r.c, "w1", "w2", "w3")
	pub := startPublisher(t, r.js, r.parts, r.rng)
	pub.waitFor(t, 300)

	const victim = fsm.WorkerID("w3")
	owned, err := partitionOwners(r.c)
	if err != nil {
		t.Fatal(err)
	}
	var victims []fsm.PartitionID
	for p, w := range owned {
		if w == victim {
			victims = append(victims, p)
		}
	}
	slices.Sort(victims)
	if len(victims) == 0 {
		t.Fatalf("%s owns no partition: %v", victim, owned)
	}
	v := r.workers[victim]
	v.signal(syscall.SIGSTOP)
	waitStopped(t, v.proc)
	// Stopped now: a handler entered after this instant entered after the
	// thaw.
	frozenAt := time.Now()
	t.Logf("froze %s (owner of %d partitions: %v)", victim, len(victims), victims)

	// The leader expires the session and the two others take over; they
	// handle messages of its partitions for a few seconds more (900 at the
	// publisher's pace of one per 3 ms) while the victim stays frozen with
	// more of them waiting in its buffers.
	settled(t, r.c, "w1", "w2")
	pub.waitFor(t, pub.count()+900)
	v.signal(syscall.SIGCONT)
	thawAt := time.Now()
	evs := auditAll(t, r.c)
	expiredAt := time.Time{}
	for _, ev := range evs {
		if b, ok := ev.Body.(fsm.WorkerLeft); ok && b.Worker == victim && b.Reason == fsm.LeftExpired && ev.Time > frozenAt.UnixNano() {
			expiredAt = time.Unix(0, ev.Time)
			break
		}
	}
	if expiredAt.IsZero() {
		t.Fatalf("%s was frozen for %s, but its session did not expire", victim, roundMS(thawAt.Sub(frozenAt)))
	}
	t.Logf("FIGURE frozen for %s; session expired %s after the freeze", roundMS(thawAt.Sub(frozenAt)), roundMS(expiredAt.Sub(frozenAt)))

	// It registers again and takes partitions.
	took, err := waitUntil(timeout, func(ctx context.Context) error { return ownsSettled(ctx, r.c, victim, "w1", "w2", "w3") })
	if err != nil {
		t.Errorf("%s did not take partitions again within %s of the thaw: %v", victim, timeout, err)
	} else {
		t.Logf("FIGURE placement settled with %s again %s after the thaw", victim, roundMS(took))
	}
	pub.waitFor(t, pub.count()+300)
	published := pub.halt()
	evs = auditAll(t, r.c)
	hs, err := readHandlings(r.records)
	if err != nil {
		t.Fatal(err)
	}
	changes := ownerChanges(evs)

	var after, stale, running []handling
	for _, list := range hs {
		for _, h := range list {
			if h.Worker != victim {
				continue
			}
			switch {
			case h.Start.After(frozenAt):
				after = append(after, h)
				if _, ok := supersededBefore(changes, h, h.Start); ok {
					stale = append(stale, h)
				}
			case h.End.After(frozenAt):
				running = append(running, h)
			}
		}
	}
	for _, h := range running {
		c, superseded := supersededBefore(changes, h, h.End)
		t.Logf("running at the freeze: %s seq %d epoch %d entered %s before it, returned %s after the thaw, context cancelled: %v, epoch superseded before the return: %v (%+v)",
			h.Partition, h.Seq, h.Epoch, roundMS(frozenAt.Sub(h.Start)), roundMS(h.End.Sub(thawAt)), h.Cancelled, superseded, c)
	}
	t.Logf("FIGURE %s after the thaw: %d handlings, %d under an epoch already committed to a newer one; %d handlers were running at the freeze",
		victim, len(after), len(stale), len(running))
	if len(stale) > 0 {
		t.Errorf("%s handled %d messages after the thaw under an epoch that was no longer its own (%s)",
			victim, len(stale), describeStale(changes, stale, thawAt, "the thaw"))
	}

	r.verdict(t, published, evs)
}

// TestE2E_WorkerCutFromClaimStore_StopsDispatchingWithinLease (issue 10,
// failure 3): one worker reaches the claim store only through proxies (one
// per server), and the proxies are cut while NATS stays reachable. Its lease
// cannot outlast the cut by more than the session TTL (its last confirmed
// heartbeat was sent before the cut), so no handler of the cut worker may
// enter later than the cut plus the TTL until the proxies heal; no handler
// may run under an epoch after a newer one was committed; and no two workers
// may handle one partition at overlapping times, ever. After Heal the worker
// registers again and takes partitions again, and nothing published is lost.
func TestE2E_WorkerCutFromClaimStore_StopsDispatchingWithinLease(t *testing.T) {
	r := newFaultRig(t, jetstream.LimitsPolicy, "--session-ttl", faultTTL.String(), "--heartbeat-interval", "500ms")
	var proxies []*faultnet.Proxy
	var via []string
	for _, s := range r.servers {
		p, err := faultnet.NewProxy(strings.TrimPrefix(s.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		proxies = append(proxies, p)
		via = append(via, "http://"+p.Addr())
	}
	const cut = fsm.WorkerID("w3")
	r.startWorker("w1", r.addr)
	r.startWorker("w2", r.addr)
	r.startWorker(cut, strings.Join(via, ","))
	settled(t, r.c, "w1", "w2", cut)
	pub := startPublisher(t, r.js, r.parts, r.rng)
	pub.waitFor(t, 300)

	for _, p := range proxies {
		p.Cut()
	}
	cutAt := time.Now() // every heartbeat confirmed to the worker was sent before this
	t.Logf("cut %s off from the claim store", cut)
	// Its session expires and the others take over; NATS keeps delivering
	// to its consumer meanwhile.
	settled(t, r.c, "w1", "w2")
	pub.waitFor(t, pub.count()+300)
	silent := 0
	for _, p := range proxies {
		silent += p.Silent()
		p.Heal()
	}
	healAt := time.Now()
	t.Logf("healed after %s (%d connections held silent)", roundMS(healAt.Sub(cutAt)), silent)

	took, settleErr := waitUntil(timeout, func(ctx context.Context) error { return ownsSettled(ctx, r.c, cut, "w1", "w2", cut) })
	if settleErr != nil {
		t.Errorf("%s did not take partitions again within %s of the heal: %v", cut, timeout, settleErr)
	} else {
		t.Logf("FIGURE placement settled with %s again %s after the heal", cut, roundMS(took))
	}
	pub.waitFor(t, pub.count()+300)
	published := pub.halt()
	evs := auditAll(t, r.c)
	for _, ev := range evs {
		if b, ok := ev.Body.(fsm.WorkerLeft); ok && b.Worker == cut && b.Reason == fsm.LeftExpired && ev.Time > cutAt.UnixNano() {
			t.Logf("FIGURE session of %s expired %s after the cut", cut, roundMS(time.Unix(0, ev.Time).Sub(cutAt)))
			break
		}
	}
	hs, err := readHandlings(r.records)
	if err != nil {
		t.Fatal(err)
	}
	changes := ownerChanges(evs)

	leaseEnd := cutAt.Add(faultTTL)
	var late, stale []handling
	var lastBeforeHeal time.Time
	afterHeal := 0
	for _, list := range hs {
		for _, h := range list {
			if h.Worker != cut {
				continue
			}
			if h.Start.Before(healAt) && h.Start.After(lastBeforeHeal) {
				lastBeforeHeal = h.Start
			}
			if h.Start.After(leaseEnd) && h.Start.Before(healAt) {
				late = append(late, h)
			}
			if !h.Start.Before(healAt) {
				afterHeal++
			}
			if _, ok := supersededBefore(changes, h, h.Start); ok {
				stale = append(stale, h)
			}
		}
	}
	if !lastBeforeHeal.IsZero() {
		t.Logf("FIGURE %s's last handler entry before the heal: %s after the cut (its lease ends within %s)", cut, roundMS(lastBeforeHeal.Sub(cutAt)), faultTTL)
	}
	t.Logf("FIGURE %s: %d handler entries later than the cut + TTL and before the heal, %d under a superseded epoch, %d after the heal",
		cut, len(late), len(stale), afterHeal)
	if len(late) > 0 {
		slices.SortFunc(late, func(a, b handling) int { return a.Start.Compare(b.Start) })
		t.Errorf("%s handled %d messages after its lease could have ended (cut + %s), the last %s after the cut: %s",
			cut, len(late), faultTTL, roundMS(late[len(late)-1].Start.Sub(cutAt)), describe(late, cutAt, "the cut"))
	}
	if len(stale) > 0 {
		t.Errorf("%s handled %d messages under an epoch that was no longer its own (%s)", cut, len(stale), describeStale(changes, stale, cutAt, "the cut"))
	}
	if n, first := overlaps(hs); n > 0 {
		t.Errorf("%d pairs of epochs of one partition were handled at overlapping times; first: %s", n, strings.Join(first, "; "))
	}
	if settleErr == nil && afterHeal == 0 {
		t.Errorf("%s handled nothing after the heal", cut)
	}

	r.verdict(t, published, evs)
}

// TestE2E_WorkersAfterLeaderFreeze_EveryPartitionActiveAgain (issue 10,
// failures 1 and 4): the raft leader is frozen for 12 s with SIGSTOP (more
// than twice the production session TTL of 5 s; the test's servers use it),
// while an operator moves a partition, and thawed, on each retention. No
// partition stays wedged: every one is active again (placement settled)
// within a generous deadline after the thaw — how long it took is logged —,
// every worker's /readyz answers 200 again, nothing published is lost, and
// duplicates are only those a forced commit explains. Nothing is handled
// under an epoch after a newer one was committed, and no two epochs of a
// partition are handled at overlapping times.
func TestE2E_WorkersAfterLeaderFreeze_EveryPartitionActiveAgain(t *testing.T) {
	for _, ret := range retentions {
		t.Run(ret.name, func(t *testing.T) {
			r := newFaultRig(t, ret.policy, freezeFlags()...)
			t.Logf("raft heartbeat and election timeouts %s", *freezeRaftTimeout)
			workers := []fsm.WorkerID{"w1", "w2", "w3"}
			for _, id := range workers {
				r.startWorker(id, r.addr)
			}
			settled(t, r.c, workers...)
			pub := startPublisher(t, r.js, r.parts, r.rng)
			pub.waitFor(t, 300)

			owners, err := partitionOwners(r.c)
			if err != nil {
				t.Fatal(err)
			}
			moved := r.parts[r.rng.IntN(len(r.parts))]
			to := workers[0]
			for _, w := range workers {
				if w != owners[moved] {
					to = w
					break
				}
			}
			f := freezeLeader(t, r.servers, 12*time.Second)
			if out, err := cliErr("move", string(moved), "--to", string(to), "--addr", r.addr); err != nil {
				t.Errorf("move %s to %s during the freeze: %v\n%s", moved, to, err, out)
			}
			f.thawed(t)
			took, err := waitUntil(2*timeout, func(ctx context.Context) error { return placementSettled(ctx, r.c, workers...) })
			if err != nil {
				t.Errorf("not every partition active %s after the thaw: %v", roundMS(time.Since(f.thawAt)), err)
			} else {
				t.Logf("FIGURE %s: new leader %s after the freeze began; every partition active %s after the thaw (%s after the thawed node was ready again)",
					ret.name, roundMS(f.newLeader), roundMS(time.Since(f.thawAt)), roundMS(took))
			}
			for _, id := range workers {
				w := r.workers[id]
				if _, err := waitUntil(timeout, func(context.Context) error { return probe(w.health + "/readyz") }); err != nil {
					t.Errorf("%s not ready %s after the thaw: %v", id, roundMS(time.Since(f.thawAt)), err)
				}
			}
			pub.waitFor(t, pub.count()+300)
			published := pub.halt()
			evs := auditAll(t, r.c)
			hs, err := readHandlings(r.records)
			if err != nil {
				t.Fatal(err)
			}
			changes := ownerChanges(evs)
			stale := staleHandlings(hs, changes)
			if len(stale) > 0 {
				t.Errorf("%d messages handled under an epoch already committed to a newer one (%s)", len(stale), describeStale(changes, stale, f.start, "the freeze"))
			}
			if n, first := overlaps(hs); n > 0 {
				t.Errorf("%d pairs of epochs of one partition were handled at overlapping times; first: %s", n, strings.Join(first, "; "))
			}
			r.verdict(t, published, evs)
		})
	}
}

// TestE2E_AllWorkersStopped_ExitZeroLeavingNoConsumer (issue 10, failure 5):
// every worker gets SIGTERM at once under load, on each retention. Each must
// hand off what it can and exit with status 0 within its own --close-timeout
// of 5 s (a Close that runs out of it makes the worker exit 1), and no
// durable consumer of any worker may be left on the stream.
func TestE2E_AllWorkersStopped_ExitZeroLeavingNoConsumer(t *testing.T) {
	for _, ret := range retentions {
		t.Run(ret.name, func(t *testing.T) {
			r := newFaultRig(t, ret.policy)
			workers := []fsm.WorkerID{"w1", "w2", "w3"}
			for _, id := range workers {
				r.startWorker(id, r.addr, "--close-timeout", "5s")
			}
			settled(t, r.c, workers...)
			pub := startPublisher(t, r.js, r.parts, r.rng)
			pub.waitFor(t, 300)

			sent := time.Now()
			for _, id := range workers {
				r.workers[id].signal(syscall.SIGTERM)
			}
			for _, id := range workers {
				err := r.workers[id].wait()
				took := time.Since(sent)
				if err != nil {
					t.Errorf("%s exited with %v %s after SIGTERM (--close-timeout 5s)", id, err, roundMS(took))
				} else {
					t.Logf("FIGURE %s: %s exited 0 %s after SIGTERM", ret.name, id, roundMS(took))
				}
			}
			pub.halt()

			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			st, err := r.js.Stream(ctx, "ORDERS")
			if err != nil {
				t.Fatal(err)
			}
			if left := consumersLeft(t, r.js, 0); len(left) > 0 {
				info, err := st.Info(ctx)
				msgs := "?"
				if err == nil {
					msgs = strconv.FormatUint(info.State.Msgs, 10)
				}
				t.Errorf("%d consumers left on the stream (%s messages retained): %s", len(left), msgs, strings.Join(left, "; "))
			}
		})
	}
}

// faultRig is one fault test's deployment: an embedded nats-server with the
// stream ORDERS ("orders.>"), three servers with faultPartitions partitions
// declared, and the recording workers the test starts.
type faultRig struct {
	t       *testing.T
	rng     *rand.Rand
	ns      *natstest.Server
	js      jetstream.JetStream
	servers []*server
	addr    string // every server's API URL, comma-separated
	c       *client.Client
	parts   []fsm.PartitionID
	dir     string
	workers map[fsm.WorkerID]*workerProc
	records map[fsm.WorkerID]string
}

// newFaultRig starts the deployment on a stream of the given retention;
// serverFlags replace serverArgs's.
func newFaultRig(t *testing.T, retention jetstream.RetentionPolicy, serverFlags ...string) *faultRig {
	t.Helper()
	needBinary(t)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := &faultRig{t: t, rng: rand.New(rand.NewPCG(uint64(seed), 0)), dir: t.TempDir(),
		workers: map[fsm.WorkerID]*workerProc{}, records: map[fsm.WorkerID]string{}}
	r.ns = natstest.Start(t)
	_, r.js = natstest.Connect(t, r.ns.URL())
	natstest.CreateStream(t, r.js, "ORDERS", retention, "orders.>")
	r.servers = startServers(t, 3, serverFlags...)
	r.addr = strings.Join(urls(r.servers), ",")
	r.c = newClient(t, urls(r.servers))
	r.parts = declarePartitions(t, r.c, r.addr, faultPartitions) // p-00 ... p-15
	return r
}

// startWorker starts a recording worker that reaches the claim store at
// addr, with extra flags.
func (r *faultRig) startWorker(id fsm.WorkerID, addr string, extra ...string) *workerProc {
	r.t.Helper()
	r.records[id] = filepath.Join(r.dir, string(id)+".rec")
	w := startRecordingWorker(r.t, id, r.ns.URL(), addr, r.records[id], extra...)
	r.workers[id] = w
	return w
}

// verdict waits until every published message was handled, then requires
// that nothing was lost, reordered or handled twice beyond what a forced
// commit explains (delivery.Check), and logs the counts.
func (r *faultRig) verdict(t *testing.T, published map[fsm.PartitionID][]fsm.StreamSeq, evs []fsm.Event) {
	t.Helper()
	var handled map[fsm.PartitionID][]delivery.Record
	_, err := waitUntil(timeout, func(context.Context) error {
		var err error
		handled, err = readAllHandled(r.records, published)
		return err
	})
	if err != nil {
		t.Errorf("waiting %s for every published message to be handled: %v", timeout, err)
	}
	forced := delivery.ForcedCommits(evs)
	for p := range handled {
		delivery.OrderByEpoch(handled[p])
	}
	rep := delivery.Check(published, handled, forced)
	for _, pr := range rep.Problems() {
		t.Error(pr)
	}
	if !rep.OK() || rep.Unexpected > 0 {
		t.Errorf("delivery: %s unexpected=%d", rep, rep.Unexpected)
	}
	t.Logf("FIGURE delivery: %s crash_duplicates=%d; %d forced commits", rep, rep.CrashDuplicates, len(forced))
}

// ownsSettled says why placement is not settled with workers active, or w
// owns no partition yet; nil when both hold. A worker that registered again
// is active before the stabilization window has given it anything, and
// placement is settled then too.
func ownsSettled(ctx context.Context, c *client.Client, w fsm.WorkerID, workers ...fsm.WorkerID) error {
	if err := placementSettled(ctx, c, workers...); err != nil {
		return err
	}
	owners, err := ownerCount(ctx, c)
	if err != nil {
		return err
	}
	if owners[w] == 0 {
		return fmt.Errorf("%s owns no partition (owners %v)", w, owners)
	}
	return nil
}

// ownerChange is a partition given to a worker under a new epoch (Claimed
// or Committed), at the leader's time.
type ownerChange struct {
	Partition fsm.PartitionID
	To        fsm.WorkerID
	Epoch     fsm.Epoch
	At        time.Time
	Forced    bool
	Reason    fsm.ForceReason // when Forced
}

// ownerChanges returns every ownership change in the audit events, per
// partition, in log order.
func ownerChanges(evs []fsm.Event) map[fsm.PartitionID][]ownerChange {
	out := map[fsm.PartitionID][]ownerChange{}
	for _, ev := range evs {
		at := time.Unix(0, ev.Time)
		switch b := ev.Body.(type) {
		case fsm.Claimed:
			out[b.Partition] = append(out[b.Partition], ownerChange{b.Partition, b.Worker, b.Epoch, at, false, 0})
		case fsm.Committed:
			out[b.Partition] = append(out[b.Partition], ownerChange{b.Partition, b.To, b.Epoch, at, b.Forced, b.ForceReason})
		}
	}
	return out
}

// supersededBefore returns the first change of h's partition to a newer
// epoch than h's made before t: after it, h's epoch no longer owns the
// partition, and nothing may be handled under it.
func supersededBefore(changes map[fsm.PartitionID][]ownerChange, h handling, t time.Time) (ownerChange, bool) {
	for _, c := range changes[h.Partition] {
		if c.Epoch > h.Epoch && c.At.Before(t) {
			return c, true
		}
	}
	return ownerChange{}, false
}

// staleHandlings returns every handling entered after its epoch was
// superseded (supersededBefore).
func staleHandlings(hs map[fsm.PartitionID][]handling, changes map[fsm.PartitionID][]ownerChange) []handling {
	var stale []handling
	for _, list := range hs {
		for _, h := range list {
			if _, ok := supersededBefore(changes, h, h.Start); ok {
				stale = append(stale, h)
			}
		}
	}
	return stale
}

// describeStale summarizes handlings under superseded epochs: partitions,
// epochs, and the first few with how late they came.
func describeStale(changes map[fsm.PartitionID][]ownerChange, stale []handling, ref time.Time, refName string) string {
	slices.SortFunc(stale, func(a, b handling) int { return a.Start.Compare(b.Start) })
	byPart := map[string]int{}
	for _, h := range stale {
		byPart[fmt.Sprintf("%s@%d", h.Partition, h.Epoch)]++
	}
	keys := make([]string, 0, len(byPart))
	for k := range byPart {
		keys = append(keys, fmt.Sprintf("%s×%d", k, byPart[k]))
	}
	slices.Sort(keys)
	var first []string
	for _, h := range stale[:min(len(stale), 5)] {
		c, _ := supersededBefore(changes, h, h.Start)
		forced := "graceful"
		if c.Forced {
			forced = "forced: " + c.Reason.String()
		}
		first = append(first, fmt.Sprintf("%s seq %d epoch %d by %s entered %s after %s, %s after epoch %d went to %s (%s), context cancelled at return: %v",
			h.Partition, h.Seq, h.Epoch, h.Worker, roundMS(h.Start.Sub(ref)), refName, roundMS(h.Start.Sub(c.At)), c.Epoch, c.To, forced, h.Cancelled))
	}
	return fmt.Sprintf("partition@epoch×count: %s; first: %s", strings.Join(keys, " "), strings.Join(first, "; "))
}

// describe lists the first few handlings with their entry relative to ref.
func describe(hs []handling, ref time.Time, refName string) string {
	var out []string
	for _, h := range hs[:min(len(hs), 5)] {
		out = append(out, fmt.Sprintf("%s seq %d epoch %d entered %s after %s", h.Partition, h.Seq, h.Epoch, roundMS(h.Start.Sub(ref)), refName))
	}
	return strings.Join(out, "; ")
}

// overlaps checks one owner at a time from the handlers' side: per
// partition, each epoch's handling span (its first handler entry to its last
// return) must not overlap another epoch's. A handler takes microseconds
// here, so two single handlings rarely overlap even when two workers handle
// one partition at once; their spans do. It returns how many pairs of
// epochs overlap, and describes the first few.
func overlaps(hs map[fsm.PartitionID][]handling) (int, []string) {
	type span struct {
		epoch      fsm.Epoch
		worker     fsm.WorkerID
		start, end time.Time
		n          int
	}
	n := 0
	var first []string
	parts := slices.Sorted(maps.Keys(hs))
	for _, p := range parts {
		byEpoch := map[fsm.Epoch]*span{}
		for _, h := range hs[p] {
			s := byEpoch[h.Epoch]
			if s == nil {
				s = &span{epoch: h.Epoch, worker: h.Worker, start: h.Start, end: h.End}
				byEpoch[h.Epoch] = s
			}
			if h.Start.Before(s.start) {
				s.start = h.Start
			}
			if h.End.After(s.end) {
				s.end = h.End
			}
			s.n++
		}
		epochs := slices.Sorted(maps.Keys(byEpoch))
		for i, a := range epochs {
			for _, b := range epochs[i+1:] {
				x, y := byEpoch[a], byEpoch[b]
				if x.end.After(y.start) && y.end.After(x.start) {
					n++
					if len(first) < 5 {
						first = append(first, fmt.Sprintf("%s: epoch %d (%s, %d handlings) ran until %s after epoch %d (%s, %d handlings) began",
							p, x.epoch, x.worker, x.n, roundMS(x.end.Sub(y.start)), y.epoch, y.worker, y.n))
					}
				}
			}
		}
	}
	return n, first
}

// auditAll reads the whole audit log from the leader.
func auditAll(t *testing.T, c *client.Client) []fsm.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []fsm.Event
	for ev, err := range c.AuditAll(ctx, client.AuditQuery{Limit: 1000}) {
		if err != nil {
			t.Fatalf("audit: %v", err)
		}
		out = append(out, ev.Event)
	}
	return out
}

// waitUntil calls f until it returns nil or d has passed, and returns how
// long it took or f's last error. Each call gets a context bounded by a
// few seconds.
func waitUntil(d time.Duration, f func(ctx context.Context) error) (time.Duration, error) {
	start := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Since(start) > d {
			return 0, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// needProcStat skips the test where /proc/PID/stat, which waitStopped reads,
// does not exist.
func needProcStat(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skipf("no /proc/self/stat: %v", err)
	}
}

// waitStopped waits until the process is stopped (state T in
// /proc/PID/stat): kill(2) returns before a SIGSTOP takes effect, and a test
// taking the time of the freeze must not take it early.
func waitStopped(t *testing.T, p *proc) {
	t.Helper()
	path := fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid)
	eventually(t, p.name+" stopped", func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// "pid (comm) state ...": comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return fmt.Errorf("%s: unexpected %q", path, b)
		}
		if s := b[i+2]; s != 'T' {
			return fmt.Errorf("%s is in state %c", p.name, s)
		}
		return nil
	})
}
