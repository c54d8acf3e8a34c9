package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/internal/testcluster"
	"github.com/batonhq/baton/raftnode"
)

// The fuzz targets send arbitrary bodies to one endpoint of a real cluster
// (the fixture's state, one node, or three for membership) and hold the
// API's promise about bad input: never a 5xx (nor a panic, which would kill
// the node), every error a well-formed API error, and a 4xx leaves the state
// machine's content and the audit log as they were. Accepted bodies change
// the state, so each input meets whatever the earlier ones left: the fuzzer
// explores the states too.

// fuzzBody fuzzes the body of method path on a one-node fixture; seeds
// builds the seed bodies from it (they need its incarnations).
func fuzzBody(f *testing.F, method, path string, seeds func(fx *fixture) []string) {
	fx := newFixtureN(f, 1, quiet)
	for _, s := range commonSeeds() {
		f.Add(s)
	}
	for _, s := range seeds(fx) {
		f.Add(s)
	}
	target := fx.c.Nodes[0].URL + path
	f.Fuzz(func(t *testing.T, body string) {
		before := capture(t, fx.c)
		resp := do(t, fx.hc, method, target, body, opToken, nil)
		checkFuzzAnswer(t, body, resp)
		if resp.status >= 400 {
			unchanged(t, before, capture(t, fx.c), false)
		}
	})
}

// quiet discards the nodes' logs: the cluster outlives each fuzz input, and
// testing.F forbids logging to it while the fuzz function runs.
func quiet(c *raftnode.Config) { c.Logger = slog.New(slog.DiscardHandler) }

// commonSeeds are bodies every endpoint must refuse.
func commonSeeds() []string {
	return []string{``, `null`, `{}`, `[]`, `"x"`, `1`, `{} {}`, `{"a":1,"a":2}`, "{\"\xff\":1}"}
}

// checkFuzzAnswer fails on a 5xx or an error body the API would not send.
func checkFuzzAnswer(t *testing.T, body string, resp response) {
	t.Helper()
	if resp.status >= 500 {
		t.Fatalf("body %q: status %d: %s", body, resp.status, resp.body)
	}
	if resp.status >= 400 {
		if _, err := strictError(resp.status, resp.body); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
	}
}

func FuzzRegisterBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/workers/register", func(*fixture) []string {
		return []string{`{"worker":"w9"}`, `{"worker":"w9","weight":3,"labels":[{"key":"zone","value":"a"}]}`,
			`{"worker":"w1"}`, `{"worker":"w9","weight":4294967297}`, `{"worker":"bad id!"}`,
			`{"worker":"w9","labels":[{"key":"zone","value":"\u001b[2J"}]}`, `{"Worker":"w9"}`}
	})
}

func FuzzHeartbeatBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/workers/w1/heartbeat", func(fx *fixture) []string {
		return []string{fmt.Sprintf(`{"incarnation":%d}`, fx.inc1), `{"incarnation":-1}`, `{"incarnation":1e3}`}
	})
}

func FuzzLeaveBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/workers/w2/leave", func(fx *fixture) []string {
		return []string{fmt.Sprintf(`{"incarnation":%d}`, fx.inc2), `{"incarnation":"1"}`, `{"incarnation":18446744073709551616}`}
	})
}

func FuzzDrainedBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/workers/w1/drained", func(fx *fixture) []string {
		return []string{
			fmt.Sprintf(`{"incarnation":%d,"items":[{"handoff":%d,"partition":"p1","epoch":1,"through_seq":5}]}`, fx.inc1, fx.handoff),
			fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p1","epoch":1,"through_seq":5}]}`, fx.inc1),
			fmt.Sprintf(`{"incarnation":%d,"items":[]}`, fx.inc1),
			fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p1","epoch":1}]}`, fx.inc1),
		}
	})
}

func FuzzActivatedBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/workers/w1/activated", func(fx *fixture) []string {
		return []string{
			fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p2","epoch":1}]}`, fx.inc1),
			fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p2","epoch":1},{"partition":"p4","epoch":1}]}`, fx.inc1),
			fmt.Sprintf(`{"incarnation":%d,"items":[null]}`, fx.inc1),
		}
	})
}

func FuzzCheckpointsBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/workers/w1/checkpoints", func(fx *fixture) []string {
		return []string{
			fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p4","epoch":1,"seq":7}]}`, fx.inc1),
			fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p4","epoch":1,"seq":1000000}]}`, fx.inc1),
			fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p4","epoch":1,"seq":1e6}]}`, fx.inc1),
			fmt.Sprintf(`{"incarnation":%d,"items":[{"Partition":"p4","epoch":1,"seq":7}]}`, fx.inc1),
		}
	})
}

func FuzzReleasedBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/workers/w1/released", func(fx *fixture) []string {
		return []string{
			fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p4","epoch":1,"through_seq":3}]}`, fx.inc1),
			fmt.Sprintf(`{"incarnation":%d,"items":[{"partition":"p4","epoch":1,"through_seq":5000000}]}`, fx.inc1),
		}
	})
}

func FuzzCordonBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/workers/w3/cordon", func(*fixture) []string {
		return []string{`{"on":true}`, `{"on":false}`, `{"On":false}`, `{"on":null}`, `{"on":"false"}`}
	})
}

func FuzzDeclareBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/partitions", func(*fixture) []string {
		return []string{`{"partitions":[{"id":"p9","subjects":["s.p9.>"],"weight":2,"start_after":10}]}`,
			`{"partitions":[{"id":"p4","subjects":["s.p4.>"]}]}`, `{"partitions":[{"id":"p8"}]}`, `{"partitions":[]}`,
			`{"partitions":[{"id":"p9","subjects":["*"]}]}`, `{"partitions":[{"id":"p9","subjects":[""]}]}`}
	})
}

func FuzzRemovePartitionsBody(f *testing.F) {
	fuzzBody(f, "DELETE", "/v1/partitions", func(*fixture) []string {
		return []string{`{"partitions":["p3"]}`, `{"partitions":["p1","p9"]}`, `{"partitions":[]}`, `{"partitions":[null]}`}
	})
}

func FuzzMoveBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/partitions/p4/move", func(*fixture) []string {
		return []string{`{"to":"w2"}`, `{"to":"w2","force":true,"reason":"r"}`, `{"to":"w2","drain_timeout_ms":86400000}`,
			`{"to":"w2","drain_timeout_ms":8000000000000}`, `{"to":"w2","drain_timeout_ms":-1}`, `{"to":""}`, `{"to":"w3"}`}
	})
}

func FuzzPinBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/partitions/p4/pin", func(*fixture) []string {
		return []string{`{"worker":"w1"}`, `{"worker":""}`, `{"worker":"w9"}`, `{"worker":null}`}
	})
}

func FuzzRebalanceBody(f *testing.F) {
	fuzzBody(f, "POST", "/v1/rebalance", func(*fixture) []string {
		return []string{`{"paused":true}`, `{"paused":false}`, `{"PAUSED":false}`, `{"paused":true,"paused":false}`}
	})
}

// fuzzMembership fuzzes a membership body on a 3-node fixture. Bodies that
// name a live member (by id or raft address) are skipped: replacing or
// removing one is allowed, and would end the cluster under test, not reveal a
// bug. A join that is accepted is undone, so that the cluster keeps its
// quorum. Refused bodies must leave the raft configuration as it was too.
func fuzzMembership(f *testing.F, path string, seeds []string) {
	fx := newFixture(f, quiet)
	for _, s := range append(commonSeeds(), seeds...) {
		f.Add(s)
	}
	live := map[string]bool{}
	for _, m := range members(f, fx.c) {
		id, rest, _ := strings.Cut(m, "@")
		addr, _, _ := strings.Cut(rest, " ")
		live[id], live[addr] = true, true
	}
	f.Fuzz(func(t *testing.T, body string) {
		var req api.JoinRequest // RemoveRequest's one field is JoinRequest's ID
		if json.Unmarshal([]byte(body), &req) == nil && (live[req.ID] || live[req.RaftAddr]) {
			t.Skip("names a live member")
		}
		beforeMembers, before := members(t, fx.c), capture(t, fx.c)
		resp := do(t, fx.hc, "POST", fx.leaderURL(t)+path, body, opToken, nil)
		// Three nodes on a loaded machine may change leaders; the body
		// is sent again once there is one (joins and refused removes
		// are idempotent). A body that stopped a node would have
		// panicked this process instead.
		for i := 0; i < 5 && resp.status == http.StatusServiceUnavailable; i++ {
			resp = do(t, fx.hc, "POST", fx.leaderURL(t)+path, body, opToken, nil)
		}
		checkFuzzAnswer(t, body, resp)
		if resp.status == http.StatusOK && path == api.PathJoin {
			ctx, cancel := context.WithTimeout(context.Background(), testcluster.Timeout)
			defer cancel()
			if err := fx.c.Leader(t).Raft().Remove(ctx, req.ID); err != nil {
				t.Fatalf("undo join of %q: %v", req.ID, err)
			}
		}
		if resp.status >= 400 {
			if after := members(t, fx.c); !slices.Equal(beforeMembers, after) {
				t.Fatalf("body %q: %d, but the raft configuration changed:\nbefore %v\nafter  %v", body, resp.status, beforeMembers, after)
			}
			unchanged(t, before, capture(t, fx.c), false)
		}
	})
}

func FuzzJoinBody(f *testing.F) {
	fuzzMembership(f, api.PathJoin, []string{
		`{"id":"n9","raft_addr":"127.0.0.1:1","api_addr":"http://127.0.0.1:1"}`,
		`{"id":"bad id!","raft_addr":"127.0.0.1:1","api_addr":"http://127.0.0.1:1"}`,
		`{"id":"n9","raft_addr":"127.0.0.1:0","api_addr":"http://127.0.0.1:1"}`,
		`{"id":"n9","raft_addr":"127.0.0.1:1"}`,
	})
}

func FuzzRemoveNodeBody(f *testing.F) {
	fuzzMembership(f, api.PathRemove, []string{`{"id":"n9"}`, `{"id":"bad id!"}`, `{"id":""}`, `{"ID":"n9"}`})
}
