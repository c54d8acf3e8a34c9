package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// forwardLog records every request a node forwards to the leader.
type forwardLog struct {
	next http.RoundTripper
	mu   sync.Mutex // guards sent; every node's forwarding goroutines append
	sent []forwarded
}

type forwarded struct {
	method, url, by, requestID string
}

func (l *forwardLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.sent = append(l.sent, forwarded{method: r.Method, url: r.URL.String(),
		by: r.Header.Get(api.HeaderForwarded), requestID: r.Header.Get(api.HeaderRequestID)})
	l.mu.Unlock()
	return l.next.RoundTrip(r)
}

// take returns what was forwarded since the last call.
func (l *forwardLog) take() []forwarded {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.sent
	l.sent = nil
	return out
}

// newForwardCluster is a 3-node cluster whose nodes forward through one
// recording client.
func newForwardCluster(t *testing.T) (*testcluster.Cluster, *forwardLog) {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	log := &forwardLog{next: tr}
	c := testcluster.NewWithAPI(t, 3, server.Config{Forward: &http.Client{Transport: log}})
	return c, log
}

// TestForward_WriteReachesTheLeaderOnce: a write sent to a follower is
// forwarded exactly once, to the leader, marked X-Baton-Forwarded and with the
// client's request id; it is applied once. Reads at the default consistency
// are forwarded too; stale reads are not.
func TestForward_WriteReachesTheLeaderOnce(t *testing.T) {
	c, log := newForwardCluster(t)
	hc := httpClient(t)
	leader := c.Leader(t)
	fol := c.Followers(t)[0]
	log.take()

	resp := do(t, hc, "POST", fol.URL+api.PathRegister, `{"worker":"w1"}`, "", map[string]string{api.HeaderRequestID: "fwd-once-1"})
	if resp.status != http.StatusOK {
		t.Fatalf("register via %s: %d %s", fol.ID, resp.status, resp.body)
	}
	sent := log.take()
	if len(sent) != 1 {
		t.Fatalf("forwarded %d times, want once: %+v", len(sent), sent)
	}
	want := forwarded{method: "POST", url: leader.URL + api.PathRegister, by: fol.ID, requestID: "fwd-once-1"}
	if sent[0] != want {
		t.Fatalf("forwarded %+v, want %+v", sent[0], want)
	}
	if n := countEvents(t, c, fsm.EvWorkerJoined, "w1"); n != 1 {
		t.Fatalf("%d WorkerJoined for w1, want 1", n)
	}

	resp = do(t, hc, "GET", fol.URL+api.PathWorkers, "", "", nil)
	if resp.status != http.StatusOK || len(log.take()) != 1 {
		t.Fatalf("default read via a follower: %d, want it forwarded once", resp.status)
	}
	resp = do(t, hc, "GET", fol.URL+api.PathWorkers+"?consistency=stale", "", "", nil)
	if sent := log.take(); resp.status != http.StatusOK || len(sent) != 0 {
		t.Fatalf("stale read via a follower: %d, forwarded %d times, want served locally", resp.status, len(sent))
	}
}

// TestForward_NeverTwice: a request that arrives already forwarded at a node
// that is not the leader is answered 503 not_leader with Retry-After, not
// forwarded again (two nodes with different views must not bounce a write).
func TestForward_NeverTwice(t *testing.T) {
	c, log := newForwardCluster(t)
	hc := httpClient(t)
	fol := c.Followers(t)[0]
	log.take()
	before := capture(t, c)
	resp := do(t, hc, "POST", fol.URL+api.PathRegister, `{"worker":"w1"}`, "",
		map[string]string{api.HeaderForwarded: "n9"})
	checkUnavailable(t, resp, api.CodeNotLeader)
	if sent := log.take(); len(sent) != 0 {
		t.Fatalf("forwarded again: %+v", sent)
	}
	unchanged(t, before, capture(t, c), true)
}

// TestForward_NoLeader: a follower cut off from the others has no leader; it
// answers writes and leader reads with 503 no_leader and Retry-After, and
// serves them again once healed.
func TestForward_NoLeader(t *testing.T) {
	c, _ := newForwardCluster(t)
	hc := httpClient(t)
	fol := c.Followers(t)[0]
	var ids []string
	for _, n := range c.Nodes {
		ids = append(ids, n.ID)
	}
	c.Net.Isolate(fol.ID, ids...)
	waitFor(t, fol.ID+" to lose its leader", func() error {
		if id, _, _ := fol.Raft().Leader(); id != "" {
			return fmt.Errorf("%s still follows %s", fol.ID, id)
		}
		return nil
	})
	checkUnavailable(t, do(t, hc, "POST", fol.URL+api.PathRegister, `{"worker":"w1"}`, "", nil), api.CodeNoLeader)
	checkUnavailable(t, do(t, hc, "GET", fol.URL+api.PathWorkers, "", "", nil), api.CodeNoLeader)
	checkUnavailable(t, do(t, hc, "GET", fol.URL+"/v1/workers/w1/assignment?index=1&wait=10s", "", "", nil), api.CodeNoLeader)

	c.Net.Heal()
	waitFor(t, fol.ID+" to forward again", func() error {
		resp := do(t, hc, "POST", fol.URL+api.PathRegister, `{"worker":"w1"}`, "", map[string]string{api.HeaderRequestID: "after-heal"})
		if resp.status != http.StatusOK {
			return fmt.Errorf("%d %s", resp.status, resp.body)
		}
		return nil
	})
}

// checkUnavailable checks a 503 with the given code and a Retry-After.
func checkUnavailable(t *testing.T, resp response, code string) {
	t.Helper()
	if resp.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", resp.status, resp.body)
	}
	e, err := strictError(resp.status, resp.body)
	if err != nil {
		t.Fatal(err)
	}
	if e.Code != code {
		t.Fatalf("code %s (%s), want %s", e.Code, e.Message, code)
	}
	if resp.header.Get("Retry-After") == "" {
		t.Fatalf("503 %s without Retry-After", code)
	}
}

// countEvents counts the leader's audit events of type typ about worker w.
func countEvents(t *testing.T, c *testcluster.Cluster, typ fsm.EventType, w fsm.WorkerID) int {
	t.Helper()
	evs, err := testcluster.AllEvents(c.Leader(t).Raft().Audit())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Type() == typ && (w == "" || slices.Contains(ev.Workers(), w)) {
			n++
		}
	}
	return n
}
