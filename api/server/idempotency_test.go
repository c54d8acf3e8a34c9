package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/api/client"
	"github.com/batonhq/baton/api/server"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/internal/testcluster"
)

// TestWrites_RetriedWithSameRequestID: every write sent twice with one
// request id (a client retrying after a lost answer) is applied once; the
// second answer is the first's index, marked duplicate.
func TestWrites_RetriedWithSameRequestID(t *testing.T) {
	c := testcluster.NewWithAPI(t, 3, server.Config{})
	hc := httpClient(t)
	cl, err := client.New(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := t.Context()
	r1, err := cl.Register(ctx, api.RegisterRequest{Worker: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Register(ctx, api.RegisterRequest{Worker: "w2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Declare(ctx, []fsm.PartitionSpec{{ID: "p1", Subjects: []string{"a.>"}}, {ID: "p2", Subjects: []string{"b.>"}}}); err != nil {
		t.Fatal(err)
	}
	c.MustApply(t, fsm.Command{Body: fsm.Claim{Items: []fsm.ClaimItem{{Partition: "p1", Worker: "w1"}, {Partition: "p2", Worker: "w1"}}}})
	if _, err := cl.Activated(ctx, "w1", r1.Incarnation, []fsm.ActivateItem{{Partition: "p1", Epoch: 1}, {Partition: "p2", Epoch: 1}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, method, path, body string }{
		{"register", "POST", "/v1/workers/register", `{"worker":"w3"}`},
		{"cordon", "POST", "/v1/workers/w2/cordon", `{"on":true}`},
		{"uncordon", "POST", "/v1/workers/w2/cordon", `{"on":false}`},
		{"checkpoint", "POST", "/v1/workers/w1/checkpoints", `{"incarnation":` + jsonOf(t, r1.Incarnation) + `,"items":[{"partition":"p1","epoch":1,"seq":4}]}`},
		// A move is built from the state when it arrives (the epoch, and a
		// deadline from the clock), so its retry is not byte-identical.
		{"move", "POST", "/v1/partitions/p1/move", `{"to":"w2"}`},
		{"forced move", "POST", "/v1/partitions/p2/move", `{"to":"w2","force":true}`},
		{"pin", "POST", "/v1/partitions/p1/pin", `{"worker":"w1"}`},
		{"pause", "POST", "/v1/rebalance", `{"paused":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{api.HeaderRequestID: "retry-" + strings.ReplaceAll(tc.name, " ", "-")}
			events := capture(t, c).events
			var first, again api.WriteResponse
			resp := do(t, hc, tc.method, c.Leader(t).URL+tc.path, tc.body, "", hdr)
			if resp.status != http.StatusOK {
				t.Fatalf("first: %d %s", resp.status, resp.body)
			}
			afterFirst := capture(t, c)
			if afterFirst.events == events {
				t.Fatalf("first %s appended no event", tc.name)
			}
			_ = json.Unmarshal(resp.body, &first)
			// The retry goes to a follower: the dedupe is the replicated
			// state's, not the node's.
			resp = do(t, hc, tc.method, c.Followers(t)[0].URL+tc.path, tc.body, "", hdr)
			if resp.status != http.StatusOK {
				t.Fatalf("retry: %d %s", resp.status, resp.body)
			}
			_ = json.Unmarshal(resp.body, &again)
			// A registration's answer has no duplicate flag; its index is
			// the incarnation, and must be the first's.
			if again.Index != first.Index || (tc.name != "register" && !again.Duplicate) {
				t.Fatalf("retry answered %+v, want index %d marked duplicate", again, first.Index)
			}
			unchanged(t, afterFirst, capture(t, c), false)
		})
	}
}

func jsonOf(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
