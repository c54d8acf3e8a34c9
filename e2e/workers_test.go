package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/delivery"
	"github.com/batonhq/baton/internal/natstest"
)

// TestE2E_WorkersExactlyOnce: three `baton worker` processes consume a
// JetStream stream (nats-server embedded in the test) under three `baton
// server` processes while the test publishes continuously. One worker stops
// with SIGTERM (a graceful leave: it hands everything off), one joins, and one
// is killed with SIGKILL (a crash: its partitions fail over from their
// checkpoints once its session expires). Every worker records each message it
// handles. Per partition: nothing is lost; a message is handled twice only if
// it lies after the resume point of a forced commit; partitions that only ever
// moved gracefully were handled exactly once, in order.
func TestE2E_WorkersExactlyOnce(t *testing.T) {
	needBinary(t)
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))

	ns := natstest.Start(t)
	_, js := natstest.Connect(t, ns.URL())
	natstest.CreateStream(t, js, "ORDERS", jetstream.LimitsPolicy, "orders.>")
	servers := startServers(t, 3)
	addr := strings.Join(urls(servers), ",")
	c := newClient(t, urls(servers))
	const partitions = 8
	parts := declarePartitions(t, c, addr, partitions)

	dir := t.TempDir()
	workers := map[fsm.WorkerID]*proc{}
	records := map[fsm.WorkerID]string{}
	startWorker := func(id fsm.WorkerID) {
		records[id] = filepath.Join(dir, string(id)+".rec")
		p := start(t, string(id), "worker", "--worker-id", string(id), "--nats", ns.URL(), "--stream", "ORDERS",
			"--addr", addr, "--record", records[id], "--checkpoint-interval", "200ms", "--handler", "count",
			"--report-interval", "0", "--health-addr", "127.0.0.1:0", "--log-format", "json")
		workers[id] = p
		health := str(p.waitLog("health listening")["health_addr"])
		eventually(t, string(id)+" ready", func() error { return probe("http://" + health + "/readyz") })
	}
	for _, id := range []fsm.WorkerID{"w1", "w2", "w3"} {
		startWorker(id)
	}
	settled(t, c, "w1", "w2", "w3")

	pub := startPublisher(t, js, parts, rng)
	pub.waitFor(t, 300)
	t.Log("SIGTERM w1: graceful leave")
	workers["w1"].stop()
	pub.waitFor(t, pub.count()+200)
	startWorker("w4")
	settled(t, c, "w2", "w3", "w4")
	pub.waitFor(t, pub.count()+300)
	t.Log("SIGKILL w2: crash")
	workers["w2"].crash()
	settled(t, c, "w3", "w4")
	pub.waitFor(t, pub.count()+300)
	published := pub.halt()

	// Everything published is handled in the end.
	var handled map[fsm.PartitionID][]delivery.Record
	eventually(t, "every published message handled", func() error {
		var err error
		handled, err = readAllHandled(records, published)
		return err
	})

	evs := sameAudit(t, servers)
	if err := fsm.NewHistoryChecker(false).CheckAll(evs); err != nil {
		t.Fatalf("the audit log breaks an invariant: %v", err)
	}
	forced := delivery.ForcedCommits(evs)
	if len(forced) == 0 {
		t.Fatal("no forced commit after w2 crashed")
	}
	for p := range handled {
		delivery.OrderByEpoch(handled[p])
	}
	rep := delivery.Check(published, handled, forced)
	for _, pr := range rep.Problems() {
		t.Error(pr)
	}
	if !rep.OK() || rep.Unexpected > 0 {
		t.Fatalf("%s unexpected=%d", rep, rep.Unexpected)
	}
	exact := 0
	for id, pr := range rep.Partitions {
		if !pr.Forced {
			if !pr.Exact() {
				t.Errorf("partition %s moved only gracefully but was not handled exactly once in order: %+v", id, pr)
			}
			exact++
		}
	}
	graceful := 0
	for _, ev := range evs {
		if cm, ok := ev.Body.(fsm.Committed); ok && !cm.Forced {
			graceful++
		}
	}
	if graceful == 0 {
		t.Error("no graceful handoff happened")
	}
	t.Logf("%s crash_duplicates=%d; %d graceful handoffs, %d forced commits; %d partitions exact",
		rep, rep.CrashDuplicates, graceful, len(forced), exact)

	for _, id := range []fsm.WorkerID{"w3", "w4"} {
		workers[id].stop()
	}
	for _, s := range servers {
		s.stop()
	}
}

func probe(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// readRecords reads every worker's record file (readHandlings) as the
// delivery checker's records.
func readRecords(files map[fsm.WorkerID]string) (map[fsm.PartitionID][]delivery.Record, error) {
	hs, err := readHandlings(files)
	if err != nil {
		return nil, err
	}
	out := make(map[fsm.PartitionID][]delivery.Record, len(hs))
	for p, list := range hs {
		recs := make([]delivery.Record, len(list))
		for i, h := range list {
			recs[i] = h.Record
		}
		out[p] = recs
	}
	return out, nil
}

// handling is one line of a worker's record file: a message its handler
// handled, and when and how the handler ran.
type handling = delivery.Handling

// readHandlings reads every worker's record file: "partition seq epoch start
// end cancelled" lines (cmd/baton's --record), per partition, each worker's
// in the order it handled them.
func readHandlings(files map[fsm.WorkerID]string) (map[fsm.PartitionID][]handling, error) {
	out := map[fsm.PartitionID][]handling{}
	for w, path := range files {
		f, err := os.Open(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			h, err := parseHandling(sc.Text())
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			h.Worker = w
			out[h.Partition] = append(out[h.Partition], h)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func parseHandling(line string) (handling, error) { return delivery.ParseLine(line) }

// publisher publishes to random partitions every few milliseconds and
// remembers each message's stream sequence.
type publisher struct {
	t    *testing.T
	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex // guards published and n
	published map[fsm.PartitionID][]fsm.StreamSeq
	n         int
}

func startPublisher(t *testing.T, js jetstream.JetStream, parts []fsm.PartitionID, rng *rand.Rand) *publisher {
	p := &publisher{t: t, stop: make(chan struct{}), done: make(chan struct{}), published: map[fsm.PartitionID][]fsm.StreamSeq{}}
	// Its own generator, seeded from the test's: the test goes on using
	// rng while this goroutine publishes.
	prng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	go func() {
		defer close(p.done)
		tk := time.NewTicker(3 * time.Millisecond)
		defer tk.Stop()
		perPart := map[fsm.PartitionID]int{}
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-tk.C:
			}
			part := parts[prng.IntN(len(parts))]
			perPart[part]++
			// The payload names the partition's own sequence, for reading
			// the stream by eye; the checks use the stream sequences.
			body := fmt.Sprintf("%s/%d", part, perPart[part])
			// A publish without an answer (a JetStream cluster electing a
			// stream leader) is sent again with the same message id, which
			// the stream deduplicates, for up to a minute.
			var ack *jetstream.PubAck
			var err error
			for try := time.Now(); ; {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ack, err = js.Publish(ctx, "orders."+string(part)+".x", []byte(body), jetstream.WithMsgID(strconv.Itoa(i)))
				cancel()
				if err == nil || time.Since(try) > time.Minute {
					break
				}
				// Even when halting: a message that may be stored must be
				// counted, or its handling would look like a stray.
				time.Sleep(250 * time.Millisecond)
			}
			if err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			p.mu.Lock()
			p.published[part] = append(p.published[part], fsm.StreamSeq(ack.Sequence))
			p.n++
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { p.halt() })
	return p
}

func (p *publisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// waitFor waits until n messages were published.
func (p *publisher) waitFor(t *testing.T, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d messages published", n), func() error {
		if c := p.count(); c < n {
			return fmt.Errorf("%d published", c)
		}
		return nil
	})
}

// halt stops publishing and returns what was published.
func (p *publisher) halt() map[fsm.PartitionID][]fsm.StreamSeq {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[fsm.PartitionID][]fsm.StreamSeq{}
	for k, v := range p.published {
		out[k] = append([]fsm.StreamSeq(nil), v...)
	}
	return out
}

// readAllHandled reads the workers' records and fails while a published
// message is not handled yet: the condition the tests wait on at the end.
func readAllHandled(records map[fsm.WorkerID]string, published map[fsm.PartitionID][]fsm.StreamSeq) (map[fsm.PartitionID][]delivery.Record, error) {
	handled, err := readRecords(records)
	if err != nil {
		return nil, err
	}
	if missing := unhandled(published, handled); missing > 0 {
		return handled, fmt.Errorf("%d messages not handled yet", missing)
	}
	return handled, nil
}

// unhandled counts the published messages no record shows handled.
func unhandled(published map[fsm.PartitionID][]fsm.StreamSeq, handled map[fsm.PartitionID][]delivery.Record) int {
	missing := 0
	for p, seqs := range published {
		seen := map[fsm.StreamSeq]bool{}
		for _, r := range handled[p] {
			seen[r.Seq] = true
		}
		for _, s := range seqs {
			if !seen[s] {
				missing++
			}
		}
	}
	return missing
}
