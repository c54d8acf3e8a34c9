package natstest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The cluster helpers themselves: an R3 stream of each retention gets a
// leader and two current replicas; killing its leader elects another one
// with every acknowledged message; a restarted node catches up; a stopped
// node hands its leaderships over at once.
func TestCluster_LeadersKillsAndRestarts(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3)
	nc, js := Connect(t, c.URL())
	var streams []jetstream.Stream
	for _, r := range allRetentions() {
		st := c.CreateStream(t, js, r.name, r.pol, r.name+".>")
		// An Interest stream stores only what some consumer covers.
		upsert(t, st, consumerConfig("keep", longAckWait, r.name+".>"))
		streams = append(streams, st)
	}
	for _, st := range streams {
		si := st.CachedInfo()
		if si.Config.Replicas != 3 || si.Cluster == nil || len(si.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: replicas %d, cluster %+v", si.Config.Name, si.Config.Replicas, si.Cluster)
		}
	}

	// Put every stream's leader on n1, then kill n1.
	n1 := c.Node(0)
	for _, st := range streams {
		c.MoveStreamLeader(t, nc, st.CachedInfo().Config.Name, n1)
	}
	var last []uint64
	for _, st := range streams {
		name := st.CachedInfo().Config.Name
		pub(t, js, name+".a")
		last = append(last, pub(t, js, name+".a"))
	}
	start := time.Now()
	c.Kill(t, n1)
	for i, st := range streams {
		name := st.CachedInfo().Config.Name
		l := c.StreamLeader(t, name)
		if l == n1 {
			t.Fatalf("stream %s: the killed node still leads", name)
		}
		got := leaderLast(t, nc, name, name+".a")
		if got != last[i] {
			t.Fatalf("stream %s: last message on the new leader %s is %d, want %d", name, l, got, last[i])
		}
	}
	t.Logf("new stream leaders %v after a kill: %v", []*Node{c.StreamLeader(t, "Limits"), c.StreamLeader(t, "Interest"), c.StreamLeader(t, "WorkQueue")}, time.Since(start))

	// Messages published while n1 is down reach it after a restart.
	for _, st := range streams {
		last = append(last[:0], pub(t, js, st.CachedInfo().Config.Name+".b"))
	}
	start = time.Now()
	c.Restart(t, n1)
	t.Logf("n1 restarted and current in %v", time.Since(start))

	// A clean stop hands leadership over without an election timeout.
	for _, st := range streams {
		c.MoveStreamLeader(t, nc, st.CachedInfo().Config.Name, n1)
	}
	start = time.Now()
	c.Stop(t, n1)
	for _, st := range streams {
		if l := c.StreamLeader(t, st.CachedInfo().Config.Name); l == n1 {
			t.Fatal("the stopped node still leads")
		}
	}
	t.Logf("new stream leaders after a clean stop: %v", time.Since(start))
	c.Restart(t, n1)
}

// leaderLast returns the sequence of the last message on subject, as the
// stream leader answers it (the message-get API; direct gets may be answered
// by any replica).
func leaderLast(t testing.TB, nc *nats.Conn, stream, subject string) uint64 {
	t.Helper()
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Seq uint64 `json:"seq"`
		} `json:"message"`
	}
	r, err := nc.Request("$JS.API.STREAM.MSG.GET."+stream, fmt.Appendf(nil, `{"last_by_subj":%q}`, subject), deadline)
	if err != nil {
		t.Fatalf("message get of the last %s: %v", subject, err)
	}
	if err := json.Unmarshal(r.Data, &resp); err != nil || resp.Error != nil || resp.Message == nil {
		t.Fatalf("message get of the last %s: %s (%v)", subject, r.Data, err)
	}
	return resp.Message.Seq
}
